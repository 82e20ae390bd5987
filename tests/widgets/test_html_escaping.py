"""Names are never HTML: every view over a store whose names are markup (tests/hostile_names.py) is built,
and every HTML value in its widget tree, every static HTML it leaves for reports, and every plotly title and
hover template is scanned: no name appears unescaped, no element carries an event handler. The same store
in real Chromium: tests/browser/test_xss_dashboards.py."""

from __future__ import annotations

from html.parser import HTMLParser

import ipywidgets as widgets
import pytest

from tests import hostile_names as H
from workbench import Workspace
from workbench.text import escape_html, escape_plotly


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def problems_in(html: str, where: str) -> list[str]:
    """Names that appear raw, and elements with an on* attribute or a tag only a name could have made."""
    found = [f"{where}: raw name {n!r}" for n in H.NAMES if n in html]
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        if tag in ("img", "svg", "iframe", "object", "embed", "u") or any(a.lower().startswith("on") for a, _ in attrs):
            found.append(f"{where}: element <{tag} {attrs}>")
    return found


def walk(root):
    """Every widget reachable from ``root`` through its traits (children, tabs, panes, views...) and the
    attributes our views keep widgets in."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        yield w
        values = [getattr(w, name, None) for name in w.keys] if isinstance(w, widgets.Widget) else []
        values += list(vars(w).values())
        for v in values:
            items = v if isinstance(v, (list, tuple)) else v.values() if isinstance(v, dict) else [v]
            stack.extend(x for x in items if isinstance(x, widgets.Widget))


def scan(root, label: str) -> list[str]:
    found: list[str] = []
    for w in walk(root):
        name = f"{label}/{type(w).__name__}"
        if isinstance(w, (widgets.HTML, widgets.HTMLMath)):
            found += problems_in(w.value, name)
        if hasattr(w, "_static_bundle"):
            found += problems_in(str(w._static_bundle().get("text/html", "")), name + " (static)")
        layout = getattr(w, "layout", None)
        if hasattr(layout, "title") and getattr(layout.title, "text", None):  # a plotly FigureWidget
            found += problems_in(layout.title.text, name + " (title)")
            for tr in getattr(w, "data", ()):
                for attr in ("name", "hovertemplate", "customdata"):
                    found += problems_in(str(getattr(tr, attr, "") or ""), f"{name} (trace {attr})")
            for axis in ("xaxis", "yaxis"):
                ticks = getattr(getattr(layout, axis, None), "ticktext", None)
                found += problems_in(" ".join(ticks or ()), f"{name} ({axis} labels)")
                if getattr(getattr(layout, axis, None), "type", None) == "category" and w.data and not ticks:
                    found.append(f"{name}: {axis} shows names as plotly markup (no escaped tick labels)")
    return found


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    run = H.build(home)
    ws = Workspace(home)
    yield ws, run
    ws.close()


def test_every_view_escapes_every_name(store):
    from workbench.widgets import WorkbenchApp
    from workbench.widgets.app import Picker, ReviewView, error_gallery, evaluation_views, overview
    from workbench.widgets.curves import TrainingCurves

    ws, run = store
    ds = ws.dataset(H.DATASET)
    app = WorkbenchApp(ds, user=H.USER)
    _ = app.overview, app.grid, app.curves
    app.show_evaluation(run)
    failed = WorkbenchApp(ws.dataset(H.EMPTY_DATASET), user=H.USER)
    failed.start_training(wait=True)
    assert "training failed" in failed.train_status.value and escape_html(H.EMPTY_DATASET) in failed.train_status.value
    review = ReviewView(ws, run, user=H.USER)
    assert escape_html(H.RUN_ID) in review.children[0].value
    views = {
        "app": app,
        "failed-training": failed,
        "review": review,
        "picker": Picker([H.DATASET, (H.RUN_ID, str(run))], lambda v: overview(ds), description="Dataset"),
        "overview-of-directory": overview(ds, H.DIRECTORY),
        "gallery": error_gallery(ds, run),
        "curves": TrainingCurves(title=f"{H.DATASET}: {H.USER}"),
    }
    for i, v in enumerate(evaluation_views(ds, run)):
        views[f"evaluation-{i}"] = v
    found = [p for label, v in views.items() for p in scan(v, label)]
    assert found == [], "\n".join(found)
    assert sum(1 for v in views.values() for _ in walk(v)) > 100  # the walk reached the trees


def test_the_helpers_escape_what_html_and_plotly_read():
    assert escape_html(H.DATASET) == "&lt;img src=x onerror=window.__xss=1&gt;"
    assert escape_html("a'b\"c&") == "a&#x27;b&quot;c&amp;"
    assert escape_plotly("100% %{x} \"q\"") == "100&#37; &#37;{x} &#34;q&#34;"
    assert problems_in(H.DATASET, "x") and problems_in("<b onclick=f()>a</b>", "y")
