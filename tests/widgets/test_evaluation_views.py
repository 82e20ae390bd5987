"""Confusion matrix clicks, galleries (paging, thumbnails, open in canvas) and the AP / PR view."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from workbench.data.records import ClassDef
from workbench.errors import ImageError, NotFoundError, ValidationError
from workbench.evaluate.classification import confusion_matrix
from workbench.widgets.evaluation import (
    APView,
    ConfusionMatrixView,
    ConfusionState,
    cell_from_click,
    per_class_results,
)
from workbench.widgets.gallery import (
    ErrorGallery,
    GalleryItem,
    GalleryState,
    ThumbnailGallery,
    error_caption,
)
from workbench.widgets.gallery import _to_pil as _decode  # the decoder itself
from workbench.widgets.static import PLOTLY_MIME, PNG_MIME

NAMES = ["cat", "dog", "bird"]
TRUE = ["cat", "cat", "dog", "dog", "dog", "bird", "bird", "cat", "bird", "dog"]
PRED = ["cat", "dog", "dog", "cat", "dog", "bird", "dog", "cat", "bird", "cat"]
IDS = [101, 102, 103, 104, 105, 106, 107, 108, 109, 110]


def thumb(example_id: int):
    if example_id == 404:
        raise NotFoundError("example 404 is gone")
    if example_id == 500:
        return b"not an image"
    shade = (example_id * 37) % 255
    return Image.new("RGB", (64 + example_id % 7, 48), (shade, 80, 160))


def click(view: ConfusionMatrixView, row: int, col: int, *, with_index: bool = True) -> None:
    """What plotly.js sends when a heatmap cell is clicked (the frontend's points callback message)."""
    names = view.state.class_names
    view.figure_widget._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {
            "trace_indexes": [0],
            "point_indexes": [[row, col]] if with_index else [None],
            "xs": [names[col]],
            "ys": [names[row]],
        },
    }


# ---------------------------------------------------------------------------------------------- state
def test_confusion_from_labels_matches_evaluate_module():
    state = ConfusionState.from_labels(IDS, TRUE, PRED, NAMES)
    assert state.matrix == confusion_matrix(TRUE, PRED, NAMES).tolist()
    assert state.examples("cat", "dog") == [102]
    assert state.examples("dog", "cat") == [104, 110]
    assert state.examples("bird", "cat") == []
    assert sum(len(v) for v in state.cells.values()) == len(IDS)


def test_confusion_from_prediction_dicts_infers_classes():
    rows = [{"example_id": i, "true": t, "pred": p} for i, t, p in zip(IDS, TRUE, PRED, strict=True)]
    state = ConfusionState.from_predictions(rows)
    assert state.class_names == sorted(NAMES)


def test_confusion_from_run_prediction_rows():
    probs = {"cat": [0.7, 0.2, 0.1], "dog": [0.1, 0.8, 0.1], "bird": [0.2, 0.2, 0.6]}
    rows = [{"example_id": i, "probabilities": probs[p]} for i, p in zip(IDS, PRED, strict=True)]
    rows[0] = {"example_id": IDS[0], "probabilities": {"cat": 0.9, "dog": 0.05, "bird": 0.05}}
    truth = dict(zip(IDS, TRUE, strict=True))
    state = ConfusionState.from_prediction_rows(rows, truth, NAMES)
    assert state.matrix == confusion_matrix(TRUE, PRED, NAMES).tolist()
    with pytest.raises(ValidationError) as err:
        ConfusionState.from_prediction_rows(rows, {}, NAMES)
    assert err.value.record == IDS[0] and err.value.field == "truth"
    with pytest.raises(ValidationError) as err:
        ConfusionState.from_prediction_rows([{"example_id": 1, "probabilities": [0.5, 0.5]}], truth, NAMES)
    assert err.value.field == "probabilities"


@pytest.mark.parametrize(
    "rows, names, field",
    [
        ([{"example_id": 1, "true": "cat"}], NAMES, "pred"),
        ([(1, "cat", "zebra")], NAMES, "class"),
    ],
)
def test_confusion_rejects_bad_rows(rows, names, field):
    with pytest.raises(ValidationError) as err:
        ConfusionState.from_predictions(rows, names)
    assert err.value.field == field


def test_confusion_state_validates_shape_and_cells():
    with pytest.raises(ValidationError):
        ConfusionState(["a", "b"], [[1, 2]])
    with pytest.raises(ValidationError):
        ConfusionState(["a", "a"], [[1, 2], [3, 4]])
    with pytest.raises(ValidationError):
        ConfusionState(["a", "b"], [[1, 2], [3, 4]], {("a", "zebra"): [1]})
    with pytest.raises(ValidationError):
        ConfusionState.from_labels([1, 2], ["a"], ["a", "b"])


@pytest.mark.parametrize(
    "xs, ys, inds, expected",
    [
        (["dog"], ["cat"], [[0, 1]], ("cat", "dog")),  # [row, col] from plotly.js wins
        (["bird"], ["bird"], [[2, 2]], ("bird", "bird")),
        (["dog"], ["cat"], [None], ("cat", "dog")),  # no index: the labels
        (["dog"], ["cat"], [], ("cat", "dog")),
        ([], [], [[7, 7]], None),  # out of range and no labels
        (["zebra"], ["cat"], [None], None),
    ],
)
def test_cell_from_click(xs, ys, inds, expected):
    assert cell_from_click(xs, ys, inds, NAMES) == expected


# ---------------------------------------------------------------------------------------------- clicks
@pytest.mark.parametrize("row, col", [(0, 1), (1, 0), (2, 2), (2, 0)])
@pytest.mark.parametrize("with_index", [True, False])
def test_click_on_cell_calls_back_and_shows_its_examples(row, col, with_index):
    selected = []
    view = ConfusionMatrixView(
        ConfusionState.from_labels(IDS, TRUE, PRED, NAMES),
        thumb,
        on_select=lambda t, p: selected.append((t, p)),
    )
    click(view, row, col, with_index=with_index)
    true, pred = NAMES[row], NAMES[col]
    assert selected == [(true, pred)]
    expected = [i for i, t, p in zip(IDS, TRUE, PRED, strict=True) if (t, p) == (true, pred)]
    assert view.gallery.example_ids == expected
    shown = [c for c in view.gallery.grid.children]
    assert len(shown) == len(expected)
    for tile, eid in zip(shown, expected, strict=True):
        assert f"wb-example-{eid}" in tile._dom_classes
    assert f"true {true} → predicted {pred}: {len(expected)} examples" in view.selection.value


def test_confusion_view_figure_and_hooks():
    view = ConfusionMatrixView(ConfusionState.from_labels(IDS, TRUE, PRED, NAMES), thumb)
    assert "wb-confusion" in view._dom_classes
    assert [list(r) for r in view.figure_widget.data[0].z] == view.state.matrix
    bundle = view._repr_mimebundle_()
    assert bundle[PLOTLY_MIME]["data"][0]["z"] == view.state.matrix


def test_open_in_canvas_from_confusion_gallery():
    opened = []
    view = ConfusionMatrixView(
        ConfusionState.from_labels(IDS, TRUE, PRED, NAMES), thumb, on_open=opened.append
    )
    view.select("dog", "cat")
    buttons = [
        w
        for tile in view.gallery.grid.children
        for w in tile.children
        if "wb-open-in-canvas" in getattr(w, "_dom_classes", ())
    ]
    assert len(buttons) == 2
    buttons[1].click()
    assert opened == [110]


# ---------------------------------------------------------------------------------------------- gallery
@pytest.mark.parametrize(
    "n, page_size, moves, page, summary",
    [
        (0, 5, [], 0, "no examples"),
        (12, 5, [], 0, "1–5 of 12"),
        (12, 5, [1], 1, "6–10 of 12"),
        (12, 5, [1, 1, 1], 2, "11–12 of 12"),
        (12, 5, [1, -1, -1], 0, "1–5 of 12"),
        (5, 5, [1], 0, "1–5 of 5"),
    ],
)
def test_gallery_state_paging(n, page_size, moves, page, summary):
    state = GalleryState(page_size=page_size)
    state.set_items(GalleryItem(i) for i in range(n))
    for m in moves:
        state.go(m)
    assert state.page == page
    assert state.summary() == summary
    assert len(state.page_items()) == min(page_size, max(0, n - page * page_size))


def test_gallery_pages_and_loads_only_the_page():
    asked = []

    def fn(eid):
        asked.append(eid)
        return thumb(eid)

    g = ThumbnailGallery(fn, page_size=4)
    g.show(range(10), title="all")
    assert asked == [0, 1, 2, 3] and g.prev_button.disabled and not g.next_button.disabled
    g.next_button.click()
    assert asked == [0, 1, 2, 3, 4, 5, 6, 7]
    assert "5–8 of 10" in g.header.value
    g.prev_button.click()
    assert asked == [0, 1, 2, 3, 4, 5, 6, 7]  # cached
    assert "wb-gallery" in g._dom_classes


def test_gallery_thumbnail_kinds_and_errors():
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buf, format="PNG")
    import numpy as np

    sources = {
        1: buf.getvalue(),
        2: np.zeros((10, 12, 3), np.uint8),
        3: Image.new("L", (5, 5)),
        404: None,
        500: None,
    }
    g = ThumbnailGallery(lambda eid: thumb(eid) if eid in (404, 500) else sources[eid], thumb_size=32)
    g.show([1, 2, 3, 404])
    assert g.thumbnail(1).size == (20, 10)  # small images are not enlarged
    assert g.thumbnail(404).size == (32, 32)  # placeholder for a missing example
    assert len(g.grid.children) == 4
    assert g.thumbnail(500).size == (32, 32)  # undecodable bytes: a placeholder too, not a crash
    with pytest.raises(ImageError) as err:
        _decode(b"not an image", 500)
    assert err.value.record == 500
    g2 = ThumbnailGallery(lambda eid: "nope")
    with pytest.raises(ValidationError):
        g2.show([1])


def test_error_gallery_captions_and_open():
    errors = [
        {"example_id": 7, "reason": "high_loss", "score": 0.912, "pred": "dog"},
        {"example_id": 3, "reason": "missed_box", "score": 0.5},
    ]
    opened = []
    g = ErrorGallery(errors, thumb, on_open=opened.append)
    assert g.example_ids == [7, 3]
    assert [it.caption for it in g.state.items] == [
        "high loss · score 0.912 · pred dog",
        "missed box · score 0.5",
    ]
    assert "wb-error-gallery" in g._dom_classes and "wb-gallery" in g._dom_classes
    tile = g.grid.children[0]
    button = next(w for w in tile.children if "wb-open-in-canvas" in w._dom_classes)
    button.click()
    assert opened == [7]
    with pytest.raises(ValidationError):
        ErrorGallery([{"reason": "x"}], thumb)
    assert error_caption({"reason": "low_confidence"}) == "low confidence"


def test_error_gallery_takes_mined_examples():
    from workbench.evaluate.mined import MinedExample

    mined = [
        MinedExample(
            5, 0.97, ["likely_label_error", "confident_mistake"], {"true": "cat", "predicted": "dog"}, 0.95
        ),
        MinedExample(6, 0.6, ["low_confidence"]),
    ]
    g = ErrorGallery(mined, thumb)
    first, second = g.state.items
    assert first.example_id == 5 and first.flagged and not second.flagged
    assert first.caption == "likely label error · score 0.97 · true cat · predicted dog"
    assert "2px solid #e00000" in g.grid.children[0].layout.border


def test_gallery_static_picture_is_a_png_contact_sheet():
    g = ThumbnailGallery(thumb, columns=3, thumb_size=40)
    g.show([GalleryItem(1, "a"), GalleryItem(2, "b", flagged=True), GalleryItem(3), GalleryItem(4)])
    bundle = g._repr_mimebundle_()
    img = Image.open(io.BytesIO(base64.b64decode(bundle[PNG_MIME])))
    assert img.format == "PNG"
    assert img.width > 3 * 40 and img.height > 2 * 40  # 3 columns, 2 rows
    empty = ThumbnailGallery(thumb)._repr_mimebundle_()
    assert PNG_MIME in empty


# ---------------------------------------------------------------------------------------------- AP / PR
COCO_LIKE = {
    "per_class": {
        "cat": {"AP": 0.5, "AP50": 0.8},
        "dog": {"AP": 0.25, "AP50": 0.6},
        "bird": {"AP": -1.0, "AP50": -1.0},
    },
    "pr_curves": {
        "all": {
            "recall": [i / 100 for i in range(101)],
            "precision": [0.7] * 101,
            "precision50": [0.9] * 101,
        },
        "cat": {
            "recall": [i / 100 for i in range(101)],
            "precision": [0.8] * 101,
            "precision50": [1.0] * 101,
        },
        "dog": {
            "recall": [i / 100 for i in range(101)],
            "precision": [0.4] * 101,
            "precision50": [0.6] * 101,
        },
    },
}


@pytest.mark.parametrize(
    "metric, ap, prec", [("AP", [0.5, 0.25, None], 0.8), ("AP50", [0.8, 0.6, None], 1.0)]
)
def test_ap_view(metric, ap, prec):
    classes = [ClassDef("cat", "#ff0000"), ClassDef("dog", "#00ff00"), ClassDef("bird", "#0000ff")]
    view = APView(COCO_LIKE, classes, metric_name=metric)
    bars, pr = view.figures
    assert list(bars.data[0].y) == ap
    assert [t.name.split(" ")[0] for t in pr.data] == ["cat", "dog"]  # "all" is not a class
    assert pr.data[0].y[0] == prec and len(pr.data[0].x) == 101
    assert "wb-ap" in view._dom_classes
    bundle = view._repr_mimebundle_()
    assert PLOTLY_MIME in bundle and len(bundle[PLOTLY_MIME]["data"]) == 3


def test_per_class_results_reads_a_real_coco_result():
    pytest.importorskip("pycocotools")
    from workbench.evaluate.coco import coco_metrics
    from workbench.evaluate.synthetic import make_coco_pair

    gt, dt = make_coco_pair(n_images=8, boxes_per_image=3, n_classes=3, seed=1)
    result = coco_metrics(gt, dt, per_class=True)
    ap, pr, recall = per_class_results(result)
    assert ap == {k: v["AP"] for k, v in result.per_class.items()}
    assert set(pr) == set(result.pr_curves) - {"all"}
    assert recall is not None and len(recall) == 101
    view = APView(result)
    assert len(view.figures[1].data) == len(pr)


def test_per_class_results_rejects_missing_parts():
    with pytest.raises(ValidationError):
        per_class_results({"stats": {}})
    with pytest.raises(ValidationError):
        per_class_results({"per_class": {"cat": 0.5}, "pr_curves": {"cat": {"recall": []}}})
