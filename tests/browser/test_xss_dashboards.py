"""Stored XSS, in the served dashboards, in headless Chromium: every name in the store is markup that sets
``window.__xss`` (tests/hostile_names.py: dataset, class, file name, author, directory, snapshot message,
run id, and the error that training an empty dataset raises). The annotate dashboard (every tab, a failed
training) and the review dashboard render them; no script of theirs runs, no dialog opens, and the names
show as the text they are. A probe inserted unescaped on purpose proves the page would run such a handler.
"""

from __future__ import annotations

import pytest

from tests import hostile_names as H
from tests.browser import WAIT_MS, new_context, page_errors, screenshot, wait_canvas_drawn, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api").expect

# A handler that is allowed to run: inserted raw, it must fire (src=x fails to load, as the payloads' do),
# which also means every earlier failed image has had the time to fire its own.
PROBE_JS = """() => new Promise(done => {
  document.body.insertAdjacentHTML('beforeend', '<img src=x-probe onerror="window.__probe=1" style="display:none">');
  const t = setInterval(() => { if (window.__probe === 1) { clearInterval(t); done(true); } }, 50);
  setTimeout(() => { clearInterval(t); done(false); }, 20000);
})"""


@pytest.fixture(scope="module")
def workbench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("xss-home")
    H.build(home)
    return home


@pytest.fixture(scope="module")
def context(dashboards, browser):
    ctx = new_context(browser, {"width": 1300, "height": 1100})
    ctx.dialogs = []  # every alert / confirm / prompt any page opened

    def on_page(page):
        page.on("dialog", lambda d: (ctx.dialogs.append(d.message), d.dismiss()))

    ctx.on("page", on_page)
    yield ctx
    errors = page_errors(ctx)
    ctx.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"


def assert_no_script_ran(page, context, name: str) -> None:
    assert page.evaluate(PROBE_JS), "the probe handler did not run: this check would see nothing"
    leaked = page.evaluate("() => window.__xss")
    if leaked is not None:
        screenshot(page, f"xss-{name}")
    assert leaked is None, f"a name's script ran in the {name} page (payload {leaked})"
    assert context.dialogs == []
    assert page.evaluate("() => document.querySelectorAll('svg[onload], img[onerror=\"window.__xss=1\"]').length") == 0


def test_annotate_dashboard_shows_hostile_names_as_text(dashboards, context):
    page = context.new_page()
    page.goto(dashboards.url + "voila/render/annotate.ipynb", timeout=WAIT_MS)
    expect(page.locator(".wb-app h3")).to_contain_text("(classification)", timeout=WAIT_MS)
    assert_no_script_ran(page, context, "annotate")
    expect(page.locator(".wb-app h3")).to_contain_text(H.DATASET)  # the name, as text
    wait_canvas_drawn(page)
    expect(page.locator(".wb-app .wb-title")).to_contain_text(H.FILE_NAME, timeout=WAIT_MS)
    for tab, ready in (("Dataset", ".wb-overview .wb-balance-plot"), ("Augment", ".wb-app .wb-reroll")):
        page.locator(".wb-app .lm-TabBar-tab", has_text=tab).click()
        wait_js(page, f"() => !!document.querySelector({ready!r})")
        if tab == "Dataset":  # read while shown: leaving the tab closes its view
            expect(page.locator(".wb-overview-header")).to_contain_text(H.DATASET, timeout=WAIT_MS)
    # the empty dataset: Train fails with an error that quotes its name
    page.select_option(".wb-dataset-picker select", label=H.EMPTY_DATASET)
    expect(page.locator(".wb-app h3")).to_contain_text(H.EMPTY_DATASET, timeout=WAIT_MS)
    page.locator(".wb-app .lm-TabBar-tab", has_text="Train").click()
    page.locator(".wb-app .wb-train").click()
    status = page.locator(".wb-app .wb-train-status")
    expect(status).to_contain_text("training failed", timeout=WAIT_MS)
    expect(status).to_contain_text(H.EMPTY_DATASET)
    assert_no_script_ran(page, context, "annotate")
    page.close()


def test_review_dashboard_shows_hostile_names_as_text(dashboards, context):
    page = context.new_page()
    page.goto(dashboards.url + "voila/render/review.ipynb", timeout=WAIT_MS)
    expect(page.locator(".wb-review")).to_contain_text("test accuracy", timeout=WAIT_MS)
    assert_no_script_ran(page, context, "review")
    expect(page.locator(".wb-review")).to_contain_text(H.RUN_ID)
    wait_js(page, "() => document.querySelectorAll('.wb-review .wb-gallery-item').length > 0")
    wait_js(page, "() => !!document.querySelector('.wb-review .wb-confusion-plot')")
    shown = page.inner_text(".wb-review .wb-confusion-plot")
    assert all(c in shown for c in H.CLASSES), shown  # class names as text (tick labels), not markup
    wait_canvas_drawn(page, ".wb-review canvas.wb-canvas")
    assert_no_script_ran(page, context, "review")
    page.close()
