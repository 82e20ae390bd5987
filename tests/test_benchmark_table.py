"""The combined benchmark table (benchmarks/run_all.py): goals decide "met?", rows are checked when read,
and the store, canvas and training benchmarks, run at their smallest, write the rows run_all collects."""

from __future__ import annotations

import math
import re

import pytest

from benchmarks.rows import Row, read_rows, table, write_rows
from benchmarks.run_all import Bench, run
from workbench.errors import ValidationError


@pytest.mark.parametrize(
    ("ratio", "goal", "met"),
    [
        (0.96, ">= 0.95", True),
        (0.949, ">= 0.95", False),
        (1.2, "<= 1.5", True),
        (1.6, "<= 1.5", False),
        (0.0, "== 0", True),
        (1.0, "== 0", False),
        (0.5, None, None),
        (None, "<= 1", None),
    ],
)
def test_goal_decides_met(ratio, goal, met):
    assert Row("x", "1 s", "1 s", ratio, goal).met is met


def test_rows_round_trip_and_render(tmp_path):
    rows = [Row("a | b", "1 s", "2 s", 0.5, "<= 1", "n"), Row("c", "3", "-", None)]
    write_rows(tmp_path / "r.json", rows)
    assert read_rows(tmp_path / "r.json") == rows
    md = table(rows, markdown=True).splitlines()
    assert (
        md[0] == "| what | figure | reference | ratio | goal | met? |"
        and "a \\| b" in md[2]
        and md[2].endswith("yes |")
    )
    assert table(rows).splitlines()[3].split()[-1] == "-"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("not json", "rows.json: not JSON"),
        ('{"name": "x"}', "rows.json: expected a list of rows, got dict"),
        ("[1]", "rows.json: record 0: expected an object"),
        ('[{"name": "x", "figure": "1 s", "ratio": 1}]', "record x: field 'reference': missing"),
        ('[{"name": "x", "figure": "1 s", "reference": "-", "ratio": "fast"}]', "field 'ratio'"),
        ('[{"name": "x", "figure": "1 s", "reference": "-", "ratio": 1, "goal": "< 1"}]', "field 'goal'"),
        ('[{"name": "x", "figure": 2, "reference": "-", "ratio": 1}]', "record x: field 'figure'"),
    ],
)
def test_read_rows_names_file_row_and_field(tmp_path, text, where):
    (tmp_path / "rows.json").write_text(text)
    with pytest.raises(ValidationError, match=f"^{tmp_path}.*{where}".replace("\\", "\\\\")):
        read_rows(tmp_path / "rows.json")


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ("raise SystemExit(3)", "the benchmark failed"),  # a crash shows as a row, not a traceback
        ("pass", "no figures read"),  # ran, wrote no rows
        ("open(sys.argv[-1], 'w').write('[]')", "no figures read"),
        ("open(sys.argv[-1], 'w').write('{')", "no figures read"),
    ],
)
def test_run_turns_a_benchmark_without_rows_into_a_row(tmp_path, body, expect):
    script = tmp_path / "bench_fake.py"
    script.write_text(f"import sys\n{body}\n")
    (tmp_path / "fake.json").write_text("[]")  # left by an earlier run: must not be read as this run's
    (row,) = run("fake", Bench(str(script), [], []), True, tmp_path)
    assert row.name == f"fake: {expect}" and row.met is None


# ------------------------------------------------------------------- the scripts, at their smallest
TARGET = "<= 1"
CANVAS = {
    **{
        f"canvas {what}, 2,000-px image, {n} boxes": TARGET
        for n in ("10", "100", "1,000")
        for what in ("redraw after an edit", "zoom (3 layers)")
    },
    "canvas hit-test, 1,000 boxes": TARGET,
    "canvas edit -> SQLite commit (slowest edit kind)": TARGET,
}
SCALE = "40 images / 80 boxes"
STORE = {
    f"store import (read + validate COCO), {SCALE}": None,
    f"store import (store: hash, phash, write, commit), {SCALE}": None,
    f"store stats, first after the import, {SCALE}": TARGET,
    f"store stats after one edit, {SCALE}": TARGET,
    f"store stats after adding 20 new images, {SCALE}": TARGET,
    f"store stats recomputed from nothing, {SCALE}": None,
    f"store open one example, {SCALE}": TARGET,
    f"store one edit committed, {SCALE}": TARGET,
}
TRAINING = {"Trainer vs bare torch loop, small-cnn / digits @32": ">= 0.95"}
BLOB_STORE = {
    "store 4,000 images of 2,000 B, CPU per image: table rows over files; kept as rows (at or under SMALL_BYTES)":
        "<= 0.5",
    "read back 4,000 images of 2,000 B, wall per image: table rows over files": "<= 1.25",
    "store 1,220 images of 65,536 B, CPU per image: table rows over files; kept as files (over SMALL_BYTES)": None,
    "read back 1,220 images of 65,536 B, wall per image: table rows over files": None,
}


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("bench_canvas.py", ["--repeat", "1"], CANVAS),
        ("bench_store.py", ["--images", "40", "--boxes-per-image", "2", "--edits", "20"], STORE),
        ("bench_blob_store.py", ["--sizes", "2000", "65536", "--repeat", "1"], BLOB_STORE),
        pytest.param(
            "bench_training.py",
            ["--epochs", "2", "--repeats", "1", "--examples", "20", "--only", "small-cnn"],
            TRAINING,
            marks=pytest.mark.slow,
        ),
    ],
)
def test_benchmark_writes_its_rows(tmp_path, script, args, expected):
    """Through run_all: the script gets --json, prints its table, and writes one row per figure."""
    rows = run("b", Bench(script, [], args), True, tmp_path)
    log = (tmp_path / "b.log").read_text()
    assert [r.name for r in rows] == list(expected), log
    assert read_rows(tmp_path / "b.json") == rows
    for r in rows:
        assert r.goal == expected[r.name], r
        if r.goal is not None or r.ratio is not None:  # a figure with no reference has no ratio
            assert isinstance(r.ratio, float) and math.isfinite(r.ratio) and r.ratio > 0, r
        assert re.match(r"[\d.]+ (/ [\d.]+ )?(s|ms|us|img/s)\b", r.figure), r  # numbers and a unit
        assert r.reference, r
        if r.goal == TARGET:
            assert r.reference.startswith("target < "), r
    printed = {
        "bench_canvas.py": "\nHit-test, 1,000 boxes: ",
        "bench_store.py": "\none annotation edit committed (p50 / p99) ",
        "bench_training.py": "\nsmall-cnn / digits @32 ",
        "bench_blob_store.py": "2000 B x  4000: write cpu us/image files ",
    }
    assert printed[script] in log, log  # the human table is still printed


def test_import_scale_photo_set_is_a_coco_set_of_distinct_photos(tmp_path):
    """``bench_import_scale.py --photos``: the COCO file pycocotools reads, every box inside its image, every
    file a JPEG of the size asked and no two alike (the store would keep one of two equal files)."""
    import contextlib
    import hashlib
    import io

    from PIL import Image
    from pycocotools.coco import COCO

    from benchmarks.bench_import_scale import _size, make_coco_photos

    ann = make_coco_photos(tmp_path / "set", 7, 3, (64, 48))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann))
    assert len(coco.imgs) == 7 and len(coco.anns) == 21
    digests = set()
    for img in coco.imgs.values():
        path = tmp_path / "set" / "images" / img["file_name"]
        with Image.open(path) as im:
            assert (im.format, im.size) == ("JPEG", (64, 48)) == ("JPEG", (img["width"], img["height"]))
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 7
    for a in coco.anns.values():
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 64.01 and y + h <= 48.01
    assert _size("640X480") == (640, 480)
    for bad in ("640", "axb", "8x8", "640x480x3"):
        with pytest.raises(SystemExit, match="--photos"):
            _size(bad)
