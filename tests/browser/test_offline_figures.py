"""Figures of a loop's report and executed notebooks draw with every non-local request blocked."""

from __future__ import annotations

import pytest

from tests.browser import new_context, page_errors, wait_js
from tests.loop.test_loop_progress import figure_loop

pytestmark = [pytest.mark.browser]


def _drawn(browser, url: str, blocked: list[str]) -> list[dict]:
    context = new_context(browser, {"width": 1200, "height": 900})
    try:
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                      else (blocked.append(route.request.url), route.abort())[1])
        page = context.new_page()
        page.goto(url)
        wait_js(page, "() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout_ms=30000)
        return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => ({
            traces: el.data.length, points: el.data[0].y.length,
            marks: el.querySelectorAll('.scatterlayer .trace path, .barlayer .point path').length}))""")
    finally:
        errors = page_errors(context)
        context.close()
        assert not [e for e in errors if "Plotly" in e], errors


def test_report_and_executed_notebook_draw_offline(browser, tmp_path):
    from nbconvert import HTMLExporter

    out = figure_loop(tmp_path)
    blocked: list[str] = []
    plots = _drawn(browser, (out / "report.html").as_uri(), blocked)
    assert [(p["traces"], p["points"]) for p in plots] == [(1, 4), (1, 2)]
    assert all(p["marks"] >= 1 for p in plots), plots  # drawn, not only holding data
    # the executed notebook as a page (nbconvert's own template, which asks CDNs for require.js / MathJax)
    body, _ = HTMLExporter().from_filename(str(out / "02_train.ipynb"))
    page = tmp_path / "02_train.html"
    page.write_text(body, encoding="utf-8")
    plots = _drawn(browser, page.as_uri(), blocked)
    assert [(p["traces"], p["points"]) for p in plots] == [(1, 4), (1, 2)]
    assert all(p["marks"] >= 1 for p in plots), plots
    assert blocked and not any("plot.ly" in u for u in blocked), blocked  # requests were blocked, none for plotly
