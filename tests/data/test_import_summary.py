"""Every import says what it did: examples, annotations per kind, classes, splits, and the reader's counters of
what it skipped, clipped or kept only in attributes -- returned by import_source, printed by the CLI, --json."""

from __future__ import annotations

import json

from tests.data.test_decode_once import coco_folder
from tests.data.test_import_splits import roboflow_coco
from workbench.cli import main
from workbench.data.transfer import import_source


def test_import_source_returns_the_summary_and_still_unpacks(ws, tmp_path):
    src = tmp_path / "rf"
    roboflow_coco(src, {"train": 10, "valid": 3, "test": 2})
    result = import_source(ws, "d", src, "coco")
    ds, ids = result
    assert ds.name == "d" and len(ids) == 15
    s = result.summary
    assert (s.examples, s.total, s.classes, s.dataset_type) == (15, 15, 2, "detection")
    assert s.annotations == {"box": 15}
    assert s.new_classes == ["things", "car"]
    assert s.splits == {"train": 10, "val": 3, "test": 2}
    assert any("train/_annotations.coco.json as train" in n and "valid/_annotations.coco.json as val" in n for n in s.report["notes"])
    text = str(s)
    assert "imported 15 examples into 'd'" in text and "train 10 / val 3 / test 2" in text
    assert repr(result) == text
    # a second import into the same dataset: no new classes, totals add up, splits drawn by hash
    again = import_source(ws, "d", coco_folder(tmp_path / "more", 20), "coco").summary
    assert again.new_classes == [] and again.total == 35 and again.splits_from == {"given": 0, "drawn": 20}


def test_cli_prints_the_reader_counters_and_json(tmp_path, capsys):
    src = coco_folder(tmp_path / "src", 6)
    data = json.loads((src / "annotations.json").read_text())
    data["images"].append({"id": 99, "file_name": "gone.jpg", "width": 96, "height": 64})
    data["annotations"][0]["bbox"] = [80, 4, 40, 10]  # sticks out of the 96 px wide image
    (src / "annotations.json").write_text(json.dumps(data))
    home = str(tmp_path / "ws")
    assert main(["--home", home, "import", "d", str(src), "--format", "coco", "--skip-missing", "--clip-boxes"]) == 0
    out = capsys.readouterr().out
    assert "imported 6 examples" in out and "annotations: box 6" in out
    assert "skipped: 1" in out and "clipped: 1" in out
    assert main(["--home", home, "import", "e", str(src), "--format", "coco", "--skip-missing", "--clip-boxes",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["examples"] == 6 and summary["annotations"] == {"box": 6}
    assert sum(summary["report"]["skipped"].values()) == 1 and sum(summary["report"]["clipped"].values()) == 1
    assert summary["splits"]["train"] + summary["splits"]["val"] + summary["splits"]["test"] == 6
