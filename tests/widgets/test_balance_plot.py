"""BalancePlot / DatasetOverview over real quality reports, following a changing dataset."""

from __future__ import annotations

import pytest

from workbench.data.quality import GUIDANCE, quality_report
from workbench.data.records import Annotation, ClassDef, Example
from workbench.errors import ValidationError
from workbench.widgets.balance import BalancePlot, DatasetOverview, as_report, duplicates_html, warnings_html
from workbench.widgets.static import PLOTLY_MIME

CLASSES = [ClassDef("cat", "#ff0000"), ClassDef("dog", "#00aa00")]
SPLITS = ("train", "val", "test")


def examples(n: int, dataset_type: str = "detection", *, tiny_every: int = 0) -> list[Example]:
    out = []
    for i in range(n):
        label = "cat" if i % 4 else "dog"
        if dataset_type == "classification":
            ann = Annotation("label", label)
        else:
            w = 2.0 if tiny_every and i % tiny_every == 0 else 40.0
            ann = Annotation("box", label, bbox=(1.0, 1.0, w, 30.0))
        out.append(
            Example(
                i + 1, "d", f"blob{i}", f"f{i}.png", 100, 100, SPLITS[i % 3], "annotated", annotations=(ann,)
            )
        )
    return out


class Dataset:
    """A dataset that grows; report() is what the widget re-reads."""

    def __init__(self, n: int, dataset_type: str = "detection", **kw) -> None:
        self.n, self.dataset_type, self.kw = n, dataset_type, kw
        self.classes = list(CLASSES)

    def report(self):
        return quality_report(examples(self.n, self.dataset_type, **self.kw), self.classes, self.dataset_type)


def bars(fig) -> dict[str, list]:
    return {t.name: list(t.y) for t in fig.data}


@pytest.mark.parametrize("n", [9, 40, 120])
def test_balance_plot_shows_the_report(n):
    ds = Dataset(n)
    plot = BalancePlot(ds.report, CLASSES)
    report = ds.report().to_dict()
    for split in SPLITS:
        assert bars(plot.figure_widget)[split] == [report["classes"][c][split] for c in ("cat", "dog")]
    assert sorted(s.y0 for s in plot.figure_widget.layout.shapes) == sorted(GUIDANCE.values())
    assert "wb-balance" in plot._dom_classes


def test_refresh_follows_the_dataset():
    ds = Dataset(12)
    plot = BalancePlot(ds.report, lambda: ds.classes)
    fw = plot.figure_widget
    ds.n = 60
    ds.classes = [*CLASSES, ClassDef("bird", "#0000ff")]  # a class added while annotating
    plot.refresh()
    assert plot.figure_widget is fw
    report = ds.report().to_dict()
    assert list(fw.data[0].x) == ["cat", "dog", "bird"]
    assert bars(fw)["train"] == [report["classes"][c]["train"] for c in ("cat", "dog", "bird")]
    assert list(fw.data[0].marker.color) == ["#ff0000", "#00aa00", "#0000ff"]
    # the synced state (what a browser connecting now would draw) followed too
    assert fw._widget_data[0]["y"] == bars(fw)["train"]


def test_mode_toggle_switches_barmode():
    plot = BalancePlot(Dataset(20).report(), CLASSES)
    plot.mode.value = "stack"
    assert plot.figure_widget.layout.barmode == "stack"
    plot.mode.value = "group"
    assert plot.figure_widget.layout.barmode == "group"


def test_overview_lists_warnings_boxes_and_duplicates():
    ds = Dataset(30, tiny_every=5)
    view = DatasetOverview(ds.report, CLASSES)
    report = ds.report().to_dict()
    codes = {w["code"] for w in report["warnings"]}
    assert "tiny_boxes" in codes
    for w in report["warnings"]:
        assert f"data-code='{w['code']}'" in view.warnings.value
    assert view.box_box.layout.display is None
    assert list(view.box_widget.data[0].y) == report["box_sizes"]["histogram"]["counts"]
    assert "30 / 30 examples annotated" in view.header.value
    assert "wb-overview" in view._dom_classes and "wb-refresh" in view.refresh_button._dom_classes


def test_overview_refresh_button_rereads_everything():
    ds = Dataset(6)
    view = DatasetOverview(ds.report, CLASSES)
    assert "not ready to train" in view.header.value
    ds.n = 40
    view.refresh_button.click()
    assert "not ready to train" not in view.header.value
    assert view.report["examples"] == 40
    assert sum(bars(view.balance.figure_widget)["train"]) == sum(
        c["train"] for c in view.report["classes"].values()
    )


def test_overview_hides_box_sizes_without_boxes():
    view = DatasetOverview(Dataset(20, "classification").report, CLASSES)
    assert view.box_box.layout.display == "none"
    bundle = view._repr_mimebundle_()
    assert bundle["text/html"].count("plotly-graph-div") == 1


def test_overview_static_bundle_holds_both_figures_and_the_text():
    view = DatasetOverview(Dataset(30, tiny_every=5).report, CLASSES)
    bundle = view._repr_mimebundle_()
    assert PLOTLY_MIME in bundle
    html = bundle["text/html"]
    assert html.count("plotly-graph-div") == 2
    assert "wb-warnings" in html and "wb-duplicates" in html


@pytest.mark.parametrize(
    "dups, expected",
    [
        (None, "not checked"),
        ({"checked": True, "exact": [], "pairs": []}, "no duplicates"),
        ({"checked": False, "exact": [], "pairs": []}, "only exact duplicates were checked"),
        ({"exact": [[3, 8]], "pairs": [], "cross_split": [[3, 8]]}, "#3, #8 <span style='color:#b00020'>"),
        (
            {"exact": [], "pairs": [{"a": 1, "b": 2, "distance": 3, "cross_split": True}]},
            "<td>#1</td><td>#2</td>",
        ),
    ],
)
def test_duplicates_html(dups, expected):
    assert expected in duplicates_html(dups)


def test_duplicates_html_truncates():
    pairs = [{"a": i, "b": i + 1, "distance": 1, "cross_split": False} for i in range(60)]
    html = duplicates_html({"exact": [], "pairs": pairs, "truncated": True}, max_rows=50)
    assert "60+ near-duplicate pairs" in html and "… and 10 more pairs" in html
    assert html.count("<tr>") == 51


def test_warnings_html_orders_by_severity_and_escapes():
    html = warnings_html(
        [
            {"code": "a", "severity": "info", "message": "note"},
            {"code": "b", "severity": "error", "message": "<b>bad</b>"},
        ]
    )
    assert html.index("data-code='b'") < html.index("data-code='a'")
    assert "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "no problems" in warnings_html([])


def test_as_report_accepts_object_or_dict_and_rejects_others():
    r = Dataset(10).report()
    assert as_report(r) == as_report(r.to_dict())
    with pytest.raises(ValidationError):
        as_report({"warnings": []})
    with pytest.raises(ValidationError):
        BalancePlot(lambda: [1, 2], CLASSES)
