"""Hostile input, end to end: every case of the corpus (tests/reliability/hostile.py: the 115 reader cases of
tests/data/test_formats_bad_input.py and the classes they lacked) is imported the way the CLI does it, all in
one process held to 1 GiB of address space with a per-case alarm. Each must be refused with a typed,
one-line error naming the place, import nothing, write nothing outside the workspace, run no code, and stay
within a few seconds and a few hundred MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from tests.data.test_formats_bad_input import CASES as READER_CASES
from tests.data.test_formats_bad_input import png
from tests.reliability.hostile import MARKER, NEW_CASES, all_cases
from tests.reliability.killing import ROOT
from workbench.data import Workspace
from workbench.data.formats import READERS
from workbench.data.transfer import export_dataset, import_source

LIMIT_BYTES = 1 << 30  # RLIMIT_AS of the importing process
PER_CASE_S = 20  # alarm: a case still running is a hang
MAX_SECONDS = 10.0  # what a case may take (measured: under 4 s on a loaded 2-core machine)
MAX_GROWTH_MB = 400  # peak RSS over the RSS before the case (measured: 143 MB at most)
CASES = {c.id: (table, c) for table, c in all_cases()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    subprocess.run(
        [sys.executable, "-m", "tests.reliability.hostile", "build", str(work)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.hostile",
            "import",
            str(work / "out.json"),
            str(work),
            str(LIMIT_BYTES),
            str(PER_CASE_S),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        errors="replace",
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((work / "out.json").read_text())
    process = results.pop("_process")
    counts = Counter(r["category"] for r in results.values())
    print(
        f"\n{len(results)} hostile inputs refused ({sum(r['table'] == 'new' for r in results.values())} new), "
        f"peak RSS {process['peak_rss_mb']} MB (started at {process['start_rss_mb']} MB, limit "
        f"{process['limit_mb']} MB), slowest {max(r['seconds'] for r in results.values()):.2f} s"
    )
    for cat, n in counts.most_common():
        print(f"  {cat}: {n}")
    return results, process


def test_the_corpus_covers_every_reader_and_the_missing_classes():
    assert len(NEW_CASES) >= 50 and len(CASES) == len(NEW_CASES) + len(READER_CASES)
    built_formats = {c.build.__qualname__.split(".")[0] for c in NEW_CASES}
    assert {"coco", "yolo", "voc", "folder"} <= built_formats
    ids = " ".join(CASES)
    for fmt in READERS:
        assert fmt.split("-")[0] in ids, f"no hostile case for the {fmt} reader"
    for needle in (
        "fifo",
        "symlink-loop",
        "too-long",
        "surrogate",
        "digit",
        "encoding",
        "xinclude",
        "python-tag",
        "alias-bomb",
        "ztxt",
        "postscript",
        "zip-slip",
        "sparse",
        "frames-over-pixel-limit",
    ):
        assert needle in ids


@pytest.mark.parametrize("case_id", list(CASES))
def test_hostile_input_is_refused_cleanly(corpus, case_id):
    results, _ = corpus
    table, case = CASES[case_id]
    r = results[case_id]
    assert r["error"] != "_Alarm", f"still running after {PER_CASE_S} s (a hang)"
    assert r["typed"] and r["expected"], f"{r['error']} instead of {case.error.__name__}: {r['message']}"
    msg = r["message"]
    assert "\n" not in msg and len(msg) < 2000
    for part in case.parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    assert r["store_unchanged"], "the failed import changed the workspace"
    assert r["nothing_written_outside"], "files outside the workspace changed"
    assert not r["code_ran"]
    assert r["seconds"] < MAX_SECONDS
    assert r["rss_growth_mb"] < MAX_GROWTH_MB


def test_the_importing_process_stayed_small(corpus):
    _, process = corpus
    assert process["peak_rss_mb"] < 600


UNICODE_NAMES = ["猫 ü.png", "ñandú—1.png", "שלום.png", "📷 photo.png", "e\u0301cole.png", "café.JPG"]


def test_unicode_names_import_and_round_trip(tmp_path):
    """Not hostile: names in any script, combining marks and emoji import, export and import back, and a PNG
    named .JPG is taken for what its bytes are."""
    src = tmp_path / "src"
    src.mkdir()
    images, anns = [], []
    for i, name in enumerate(UNICODE_NAMES, 1):
        (src / name).write_bytes(png(seed=i))
        images.append({"id": i, "file_name": name, "width": 32, "height": 24})
        anns.append({"id": i, "image_id": i, "category_id": 1, "bbox": [1, 2, 5, 6]})
    doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "chat noir 猫"}]}
    (src / "annotations.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with Workspace(tmp_path / "ws") as ws:
        ds, ids = import_source(ws, "ünïcode", src, "coco")
        assert sorted(e.file_name for e in ds.examples()) == sorted(UNICODE_NAMES)
        export_dataset(ds, tmp_path / "out", "coco")
        ds2, _ = import_source(ws, "again", tmp_path / "out", "coco")

        def key(d):
            return sorted((e.blob, [a.content()["bbox"] for a in e.annotations]) for e in d.examples())

        assert key(ds2) == key(ds) and ds2.classes[0].name == "chat noir 猫"
        exported = {
            e["file_name"] for e in json.loads((tmp_path / "out" / "annotations.json").read_text())["images"]
        }
        assert "café.png" in exported  # the suffix follows the bytes


def test_the_cli_reports_a_hostile_input_in_one_line(tmp_path, capsys):
    from tests.data.test_formats_bad_input import XXE, voc
    from workbench.cli import main

    _, src, _ = voc(XXE)(tmp_path)
    code = main(
        ["--home", str(tmp_path / "ws"), "import", "d", str(src), "--format", "voc", "--type", "detection"]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "DTD" in err and "Traceback" not in err
    with Workspace(tmp_path / "ws") as ws:
        assert ws.datasets() == []
