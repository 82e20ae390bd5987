"""The pure figure builders: traces, counts, shapes and colours from plain data."""

from __future__ import annotations

import math

import pytest

from workbench.data.quality import GUIDANCE
from workbench.data.records import ClassDef
from workbench.errors import ValidationError
from workbench.widgets.figures import (
    CURVE_TRACES,
    CurveSeries,
    ap_bars_figure,
    balance_figure,
    box_size_figure,
    box_size_flags,
    class_colors,
    confusion_figure,
    curves_figure,
    pr_curves_figure,
    rgba,
)

CLASSES = [ClassDef("cat", "#ff0000"), ClassDef("dog", "#00aa00"), ClassDef("bird", "#0000ff")]
REPORT = {
    "classes": {
        "dog": {"train": 250, "val": 30, "test": 20, "total": 300},
        "cat": {"train": 8, "val": 1, "test": 0, "total": 9},
        "bird": {"train": 1200, "val": 100, "test": 100, "total": 1400},
        "fish": {"train": 3, "val": 0, "test": 0, "total": 3},  # annotated but not a defined class
    },
    "warnings": [],
}


# ---------------------------------------------------------------------------------------------- balance
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_balance_bar_heights_equal_report_counts(split):
    fig = balance_figure(REPORT, CLASSES)
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    trace = bars[split]
    assert list(trace.x) == ["cat", "dog", "bird", "fish"]  # defined classes first, in their order
    assert list(trace.y) == [REPORT["classes"][c][split] for c in trace.x]


def test_balance_bars_use_class_colours_and_totals_marker():
    fig = balance_figure(REPORT, CLASSES)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["train", "val", "test"]
    for t in bars:
        assert list(t.marker.color)[:3] == ["#ff0000", "#00aa00", "#0000ff"]
    assert len({t.marker.pattern.shape for t in bars}) == 3  # splits told apart
    total = next(t for t in fig.data if t.name == "total")
    assert list(total.y) == [9, 300, 1400, 3]


def test_guidance_lines_at_10_300_1000():
    fig = balance_figure(REPORT, CLASSES, guidance=GUIDANCE)
    lines = sorted(s.y0 for s in fig.layout.shapes if s.type == "line")
    assert lines == [10, 300, 1000]
    assert all(s.y0 == s.y1 for s in fig.layout.shapes)
    labels = {a.text: a.y for a in fig.layout.annotations}
    for name, value in GUIDANCE.items():
        # plotly places annotations on a log axis at log10 of the value
        assert labels[f"{name}: {value} per class"] == pytest.approx(math.log10(value))
    assert fig.layout.yaxis.type == "log"
    assert 10 ** fig.layout.yaxis.range[1] > 1400  # the largest class fits


def test_guidance_defaults_to_quality_module():
    fig = balance_figure(REPORT, CLASSES)
    assert sorted(s.y0 for s in fig.layout.shapes) == sorted(GUIDANCE.values())


def test_guidance_labels_on_a_linear_axis():
    fig = balance_figure(REPORT, CLASSES, guidance=GUIDANCE, log_y=False)
    assert sorted(a.y for a in fig.layout.annotations) == [10, 300, 1000]
    assert fig.layout.yaxis.type is None


@pytest.mark.parametrize("barmode", ["group", "stack"])
def test_barmode(barmode):
    assert balance_figure(REPORT, CLASSES, barmode=barmode).layout.barmode == barmode


@pytest.mark.parametrize(
    "report, field",
    [
        ({}, "classes"),
        ({"classes": []}, "classes"),
        ({"classes": {"cat": 3}}, "classes"),
        ({"classes": {"cat": {"train": -1}}}, "train"),
        ({"classes": {"cat": {"train": 1.5}}}, "train"),
        ({"classes": {"cat": {"train": True}}}, "train"),
    ],
)
def test_balance_rejects_bad_reports(report, field):
    with pytest.raises(ValidationError) as err:
        balance_figure(report, CLASSES, guidance=GUIDANCE)
    assert err.value.field == field


def test_balance_rejects_unknown_barmode():
    with pytest.raises(ValidationError):
        balance_figure(REPORT, CLASSES, barmode="overlay")


# ---------------------------------------------------------------------------------------------- box sizes
BOX_SIZES = {
    "count": 60,
    "histogram": {
        "edges": [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0],
        "counts": [3, 4, 5, 10, 12, 10, 6, 4, 4, 2],
    },
    "tiny": {"count": 7, "examples": [1, 2, 3]},
    "huge": {"count": 2, "examples": [9]},
    "thresholds": {"tiny_px": 4, "tiny_fraction": 0.01, "huge_fraction": 0.9},
}


def test_box_size_histogram_counts_and_flags():
    fig = box_size_figure(BOX_SIZES)
    bar = fig.data[0]
    assert list(bar.y) == BOX_SIZES["histogram"]["counts"]
    assert len(bar.x) == 10 and bar.x[0] == "0–0.01"
    labels, counts, flags = box_size_flags(BOX_SIZES)
    assert flags[0] == "too small" and flags[-1] == "too large"
    assert flags[1:-1] == [""] * 8
    colors = list(bar.marker.color)
    assert colors[0] == colors[-1] != colors[1]
    note = fig.layout.annotations[0].text
    assert "too small: 7 boxes on 3 examples" in note and "too large: 2 boxes on 1 examples" in note


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"histogram": {"edges": [0, 1]}},
        {"histogram": {"edges": [0, 0.5, 1], "counts": [1]}},
        {"histogram": {"edges": [0, 1], "counts": [-2]}},
    ],
)
def test_box_size_rejects_bad_histograms(bad):
    with pytest.raises(ValidationError):
        box_size_figure(bad)


# ---------------------------------------------------------------------------------------------- curves
def _series(**kw) -> CurveSeries:
    base = dict(
        epochs=[1, 2, 3, 4],
        loss=[1.0, 0.7, 0.5, 0.4],
        val_loss=[1.1, 0.8, 0.85, 0.9],
        metric_name="accuracy",
        metric=[0.5, 0.7, 0.72, 0.71],
        lr=[1e-3, 1e-3, 1e-4, 1e-4],
        steps=[1, 2, 3],
        step_loss=[1.2, 1.0, 0.9],
        best_epoch=3,
        overfit=[(3, 4)],
    )
    base.update(kw)
    return CurveSeries(**base)


def test_curves_traces_in_fixed_order_with_data():
    s = _series()
    fig = curves_figure(s)
    assert [t.name for t in fig.data] == [
        "loss",
        "val loss",
        "accuracy",
        "best",
        "learning rate",
        "step loss",
    ]
    assert len(fig.data) == len(CURVE_TRACES)
    assert list(fig.data[0].y) == s.loss and list(fig.data[1].y) == s.val_loss
    assert fig.data[2].yaxis == "y2"  # the metric on the right axis
    assert fig.data[4].xaxis == "x2" and fig.layout.yaxis3.type == "log"
    assert list(fig.data[5].x) == s.steps


@pytest.mark.parametrize(
    "best, marker_y",
    [(2, 0.8), (3, 0.85), (None, None)],
)
def test_best_epoch_marker(best, marker_y):
    fig = curves_figure(_series(best_epoch=best))
    star = fig.data[3]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    if best is None:
        assert len(star.x) == 0 and not lines
    else:
        assert list(star.x) == [best] and list(star.y) == [marker_y]
        assert [(s.x0, s.x1) for s in lines] == [(best, best)]


@pytest.mark.parametrize("regions", [[], [(3, 4)], [(1, 2), (3, 4)]])
def test_overfit_regions_shaded(regions):
    fig = curves_figure(_series(overfit=regions))
    rects = [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"]
    assert rects == regions
    for s in fig.layout.shapes:
        assert s.xref == "x" and s.yref == "y domain"


def test_empty_curves_figure_has_every_trace():
    fig = curves_figure(CurveSeries())
    assert len(fig.data) == len(CURVE_TRACES)
    assert all(len(t.x or ()) == 0 for t in fig.data)


# ---------------------------------------------------------------------------------------------- evaluation
MATRIX = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
NAMES = ["1", "2", "3"]  # numeric-looking names must stay categories


def test_confusion_z_equals_input():
    fig = confusion_figure(MATRIX, NAMES)
    hm = fig.data[0]
    assert [list(r) for r in hm.z] == MATRIX
    assert list(hm.x) == NAMES and list(hm.y) == NAMES
    assert [list(r) for r in hm.text] == [[str(v) for v in r] for r in MATRIX]
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.type == "category"
    assert fig.layout.yaxis.autorange == "reversed"  # first true class on top


def test_confusion_normalized_rows_sum_to_one_and_keep_counts_as_text():
    fig = confusion_figure(MATRIX, NAMES, normalize=True)
    for row, counts in zip(fig.data[0].z, MATRIX, strict=True):
        assert math.isclose(sum(row), 1.0)
        assert list(row) == pytest.approx([c / sum(counts) for c in counts])
    assert [list(r) for r in fig.data[0].text] == [[str(v) for v in r] for r in MATRIX]


@pytest.mark.parametrize("matrix", [[[1, 2], [3, 4]], [[1, 2, 3], [1, 2, 3], [1, 2]], []])
def test_confusion_rejects_wrong_shape(matrix):
    with pytest.raises(ValidationError):
        confusion_figure(matrix, NAMES)


def test_ap_bars_heights_colours_and_missing():
    fig = ap_bars_figure({"cat": 0.5, "dog": -1.0, "bird": None, "fish": 0.25}, CLASSES)
    bar = fig.data[0]
    assert list(bar.y) == [0.5, None, None, 0.25]
    assert list(bar.text) == ["0.500", "n/a", "n/a", "0.250"]
    assert list(bar.marker.color)[:3] == ["#ff0000", "#00aa00", "#0000ff"]


def test_pr_curves_101_points_and_gaps():
    prec = {"cat": [1.0] * 50 + [0.5] * 51, "dog": [-1.0] * 101}
    fig = pr_curves_figure(prec, CLASSES, ap={"cat": 0.75, "dog": -1})
    cat, dog = fig.data
    assert len(cat.x) == 101 and cat.x[0] == 0.0 and cat.x[-1] == 1.0
    assert list(cat.y) == prec["cat"]
    assert all(v is None for v in dog.y)
    assert cat.name == "cat (AP 0.750)" and dog.name == "dog"
    assert cat.line.color == "#ff0000"


def test_pr_curves_reject_recall_length_mismatch():
    with pytest.raises(ValidationError) as err:
        pr_curves_figure({"cat": [1.0, 0.5]}, recall=[0.0, 0.5, 1.0])
    assert err.value.record == "cat"


def test_class_colors_fill_missing_from_palette():
    colors = class_colors(CLASSES, ["cat", "zebra"])
    assert colors["cat"] == "#ff0000" and colors["zebra"].startswith("#") and len(colors["zebra"]) == 7
    assert class_colors({"a": "#123456"}, ["a"]) == {"a": "#123456"}
    assert rgba("#ff8000", 0.5) == "rgba(255,128,0,0.5)"
    with pytest.raises(ValidationError):
        rgba("red", 1)
