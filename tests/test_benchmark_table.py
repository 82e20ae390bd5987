"""The combined benchmark table (benchmarks/run_all.py): goals decide "met?", the printed tables parse."""

from __future__ import annotations

import pytest

from benchmarks.rows import Row, read_rows, table, write_rows
from benchmarks.run_all import parse_canvas, parse_store, parse_training


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


TRAINING = """case                       train imgs  bare img/s  trainer img/s   ratio  data share bare  data share trainer
small-cnn / digits @32           1437       512.3          480.1   0.937             3.1%                3.3%
"""
CANVAS = """ boxes     open    scene  ann layer   select  zoom (3 layers)
  1000     32.4     3.00      20.11     0.94             4.66
Hit-test, 1,000 boxes: 19.6 us per click (median)
          sink       add box      move box  change class        delete          undo
  sqlite store          0.33          0.58          0.34          0.20          0.26
"""
STORE = """store benchmark: 10,000 images, 100,000 boxes (generated in 3.1 s)
reference: json.load + pycocotools createIndex = 0.42 s
import (read + validate COCO)                         3.50s         8.3x
stats, first after the import (+ duplicate search)     1650ms   goal < 1000 ms (issue 2)
stats after one edit (p50 / max of 20)              20 / 35 ms  goal < 200 ms (issue 8)
one annotation edit committed (p50 / p99)          0.08 / 0.47 ms  goal p99 < 5 ms
"""


def test_printed_tables_parse():
    (tr,) = parse_training(TRAINING)
    assert tr.name.endswith("small-cnn / digits @32") and tr.ratio == pytest.approx(0.937) and tr.met is False
    canvas = {r.name: r for r in parse_canvas(CANVAS)}
    assert (
        canvas["canvas redraw after an edit, 2,000-px image, 1,000 boxes"].met is False
    )  # 20 ms > one frame
    assert canvas["canvas hit-test, 1,000 boxes"].met is True
    assert canvas["canvas edit -> SQLite commit (slowest edit kind)"].figure == "0.58 ms"
    store = {r.name.split(",")[0]: r for r in parse_store(STORE)}
    assert store["store import (read + validate COCO)"].ratio == pytest.approx(8.3)
    assert store["store stats"].met is False and store["store stats after one edit"].met is True
    assert store["store one edit committed"].ratio == pytest.approx(0.47 / 5)
    assert parse_store("something else entirely") == []
