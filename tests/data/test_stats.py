"""``stats`` counted in SQL agrees with the pure-Python quality report over the same examples."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.data import Annotation
from workbench.data.quality import quality_report
from workbench.data.stats import dataset_stats
from workbench.data.transfer import add_sample

SAMPLES = ["digits", "shapes-classification", "shapes-detection", "shapes-segmentation", "shapes-anomaly"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_sql_stats_equal_python_report(ws, sample):
    ds, ids = add_sample(ws, "d", sample, count=60, seed=2)
    ex = ds.examples()
    # an unannotated copy, a proposal and a directory make it less trivial
    ds.copy_without_annotations(ids[:2], directory="copies")
    if ds.type in ("detection", "segmentation"):
        ds.add_annotation(ids[3], Annotation("box", ds.classes[0].name, bbox=(1, 1, 5, 5), score=0.4, proposal=True))
    ex = ds.examples()
    want = quality_report(ex, ds.classes, ds.type, ds.load_bytes).to_dict()
    got = dataset_stats(ds)
    for key in ("classes", "warnings", "box_sizes", "unannotated", "annotated", "can_train", "balance"):
        assert got[key] == want[key], key
    assert got["near_duplicates"]["exact"] == want["near_duplicates"]["exact"]
    assert got["examples"] == 62 and sum(got["splits"].values()) == 62
    sub = dataset_stats(ds, directory="copies")
    assert sub["examples"] == 2 and sub["unannotated"] == ds.example_ids(directory="copies")


def test_stats_json_cli_shape(capsys, tmp_path):
    home = str(tmp_path / "ws")
    assert main(["--home", home, "sample", "d", "shapes-detection", "--count", "30"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "stats", "d", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert {"examples", "annotations", "splits", "classes", "warnings"} <= set(st)
    assert st["splits"] == {"train": 24, "val": 3, "test": 3}
    assert set(st["classes"]) == {"circle", "square", "triangle"}
    assert all({"train", "val", "test", "total"} <= set(v) for v in st["classes"].values())
    assert st["annotations"] == sum(v["total"] for v in st["classes"].values())


def test_stats_cache_follows_changes(ws):
    ds, ids = add_sample(ws, "d", "shapes-detection", count=20, seed=2)
    first = dataset_stats(ds)
    keys = [json.loads(r[0]) for r in ws.conn.execute("SELECT key FROM stats_cache")]
    assert sorted(str(k[0]) for k in keys) == ["None", "near_duplicates"]  # the stats, and the duplicates apart
    assert dataset_stats(ds) == first
    ds.add_annotation(ids[0], Annotation("box", "circle", bbox=(1, 1, 5, 5)))
    assert dataset_stats(ds)["annotations"] == first["annotations"] + 1
    ds.rename_class("circle", "disc")
    assert "disc" in dataset_stats(ds)["classes"]
    assert dataset_stats(ds, use_cache=False) == dataset_stats(ds)
