"""Labelling sessions with the KEYBOARD ONLY in the annotate dashboard (Voilà, headless Chromium), one per
dataset type, each checked row by row in the store (label, geometry within a pixel, status, author).

The server runs with an empty ``WORKBENCH_USER``: the page asks for the annotator's name, typed once; every
row the sessions write must carry it. Nothing is clicked on the canvas except in the one check that proves
the focus comes back after a toolbar click (polygon vertices are placed with the mouse, a toolbar button is
clicked, then Enter must close the polygon). Choosing the dataset in the picker is setup, not labelling.

Samples are 128 x 128 (digits 8 x 8), fitted into the 800 x 600 canvas; image coordinates of the expected
shapes are computed here, independently of the widget's transform.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import (
    WAIT_MS,
    new_context,
    page_errors,
    screenshot,
    wait_canvas_drawn,
    wait_js,
    wait_until,
)
from workbench import Workspace
from workbench.data.records import Annotation
from workbench.data.transfer import add_sample

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DASHBOARD_ENV = {  # no name from the server: the dashboard asks; the canvas size the checks assume
    "WORKBENCH_USER": "",
    "WORKBENCH_CANVAS_SIZE": "800x600",
}
NAME = "Ana Keys <b>"  # typed into the name field; must reach the store as typed and show escaped

CANVAS_W, CANVAS_H = 800, 600
DATASETS = {  # alphabetical: the dataset picker lists (and first shows) them in this order
    "a-digits": ("digits", 8),
    "b-detect": ("shapes-detection", 4),
    "c-segment": ("shapes-segmentation", 3),
    "d-inspect": ("shapes-anomaly", 3),
}
CIRCLE = (20.0, 20.0, 30.0, 30.0)
SQUARE = (70.0, 60.0, 30.0, 30.0)
TRIANGLE = (30.0, 30.0, 60.0, 30.0, 45.0, 60.0)


@pytest.fixture(scope="module")
def workbench_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("keyboard-home")
    with Workspace(home) as ws:
        for name, (sample, count) in DATASETS.items():
            ds, ids = add_sample(ws, name, sample, count=count, seed=0)
            clear = ids if name in ("a-digits", "d-inspect") else ids[:2]
            for eid in clear:
                ds.replace_annotations(eid, [])
                ds.set_status(eid, "new")
            if name == "b-detect":  # a model's proposals on the first image
                ds.replace_annotations(
                    ids[0],
                    [
                        Annotation("box", "circle", bbox=CIRCLE, proposal=True, score=0.9),
                        Annotation("box", "square", bbox=SQUARE, proposal=True, score=0.8),
                    ],
                    author="run:test",
                    proposals=True,
                )
            if name == "c-segment":
                ds.replace_annotations(
                    ids[0],
                    [Annotation("polygon", "circle", polygons=(TRIANGLE,), proposal=True, score=0.9)],
                    author="run:test",
                    proposals=True,
                )
    return home


@pytest.fixture(scope="module")
def store(workbench_home):
    ws = Workspace(workbench_home)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def page(dashboards, browser):
    context = new_context(browser, {"width": 1300, "height": 1000})
    page = context.new_page()
    page.goto(dashboards.url + "voila/render/annotate.ipynb", timeout=WAIT_MS)
    field = page.locator(".wb-user-name input")
    field.wait_for(timeout=WAIT_MS)
    field.focus()
    page.keyboard.type(NAME)
    page.keyboard.press("Enter")
    wait_canvas_drawn(page)
    who = page.inner_text(".wb-user")
    assert NAME in who  # shown as text (escaped), not as HTML
    assert page.locator(".wb-user b b").count() == 0
    yield page
    errors = page_errors(context)
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


# ---------------------------------------------------------------------------------------------- helpers
def fit(w: int, h: int) -> tuple[float, float, float]:
    s = min(CANVAS_W / w, CANVAS_H / h, 64.0)
    return s, (CANVAS_W - w * s) / 2, (CANVAS_H - h * s) / 2


def to_image(p, view) -> tuple[float, float]:
    s, ox, oy = view
    return (p[0] - ox) / s, (p[1] - oy) / s


def close(got, want, tol: float = 1.0) -> bool:
    return len(got) == len(want) and all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))


def rows(ds, eid: int) -> list[Annotation]:
    return list(ds.example(eid).annotations)


def keys(page, *names: str) -> None:
    for k in names:
        page.keyboard.press(k)


def focused_on_canvas(page) -> None:
    wait_js(page, "() => document.activeElement && document.activeElement.matches('canvas.wb-canvas')")


def at(page, position: int, total: int) -> None:
    page.wait_for_function(
        "t => (document.querySelector('.wb-title') || {}).textContent?.includes(t)",
        arg=f"— {position} / {total}",
        timeout=WAIT_MS,
    )


def show(page, name: str) -> None:
    page.select_option(".wb-dataset-picker select", label=name)
    page.wait_for_function(
        "n => (document.querySelector('.wb-app h3') || {}).textContent?.includes('Workbench: ' + n + ' (')",
        arg=name,
        timeout=WAIT_MS,
    )
    wait_canvas_drawn(page)
    focused_on_canvas(page)  # the new canvas takes the keyboard by itself


# ---------------------------------------------------------------------------------------------- sessions
def test_classification_on_digits(page, store):
    ds = store.dataset("a-digits")
    ids = ds.example_ids()
    n = len(ids)
    focused_on_canvas(page)  # the dashboard starts with the keyboard on the canvas
    at(page, 1, n)

    def labels(i):
        return [a.label for a in rows(ds, ids[i]) if not a.proposal]

    keys(page, "3")  # the key IS the class name: "3" stores "3" (not the third class "2"); moves on
    wait_until(lambda: labels(0) == ["3"], what="'3' on image 1")
    at(page, 2, n)
    keys(page, "7")
    wait_until(lambda: labels(1) == ["7"], what="'7' on image 2")
    keys(page, "PageDown")  # browse past image 3: it stays new
    at(page, 4, n)
    keys(page, "0")  # "0" is class "0", not a zoom reset
    wait_until(lambda: labels(3) == ["0"], what="'0' on image 4")
    at(page, 5, n)
    keys(page, "Control+z")  # undo right after moving on: back on image 4, label gone, new again
    wait_until(lambda: labels(3) == [] and ds.example(ids[3]).status == "new", what="undo of '0'")
    at(page, 4, n)
    keys(page, "9")  # class "9" has a key
    wait_until(lambda: labels(3) == ["9"], what="'9' on image 4")
    at(page, 5, n)
    keys(page, "PageUp", "PageUp", "Enter")  # image 3 has no class: "done" refuses and says why
    wait_js(page, "() => document.querySelector('.wb-message').textContent.includes('class first')")
    keys(page, "u")  # next image still new, after image 3: image 5
    at(page, 5, n)
    keys(page, "5")
    wait_until(lambda: labels(4) == ["5"], what="'5' on image 5")
    keys(page, "ArrowLeft", "Shift+Enter")  # back to image 5 and set it back to new
    wait_until(lambda: ds.example(ids[4]).status == "new", what="image 5 back to new")
    keys(page, "g")  # the image-number field takes the keyboard: type 8, Enter, and back on the canvas
    wait_js(page, "() => document.activeElement && document.activeElement.closest('.wb-goto')")
    page.keyboard.type("8")
    keys(page, "Enter")
    at(page, 8, n)
    focused_on_canvas(page)
    screenshot(page, "keys-01-digits")

    want = {0: (["3"], "annotated"), 1: (["7"], "annotated"), 2: ([], "new"), 3: (["9"], "annotated"),
            4: (["5"], "new")}
    for i in range(n):
        ex = ds.example(ids[i])
        got_labels, status = want.get(i, ([], "new"))
        assert ([a.label for a in ex.annotations], ex.status) == (got_labels, status), i
        assert all(a.author == NAME and a.kind == "label" for a in ex.annotations), i
    wait_js(page, "() => document.querySelector('.wb-progress').textContent.includes("
                  "'new 5 · annotated 3 · reviewed 0')")


def test_detection_proposals_by_keyboard(page, store):
    ds = store.dataset("b-detect")
    ids = ds.example_ids()
    before = {i: ds.example(i).status for i in ids[2:]}
    show(page, "b-detect")
    at(page, 1, len(ids))

    keys(page, "Tab", "a")  # select the first proposal (circle) on purpose, accept it
    wait_until(lambda: any(not a.proposal for a in rows(ds, ids[0])), what="the accepted circle")
    keys(page, "ArrowRight", "ArrowRight", "ArrowRight", "Shift+ArrowDown", "Control+ArrowRight")
    wait_until(
        lambda: any(a.label == "circle" and not a.proposal and close(a.bbox, (23, 30, 31, 30))
                    for a in rows(ds, ids[0])),
        what="the circle nudged (3, 10) and widened by 1",
    )
    keys(page, "Tab", "3")  # the square proposal, selected on purpose: "3" makes it a triangle (accepts it)
    wait_until(lambda: all(not a.proposal for a in rows(ds, ids[0])), what="the relabelled proposal")
    keys(page, "Escape", "2")  # nothing selected: "2" is only the class of the next box
    wait_js(page, "() => getComputedStyle(document.querySelector('.wb-class-square')).borderTopStyle === 'solid'")
    keys(page, "c")  # the type-ahead class picker takes the keyboard ...
    wait_js(page, "() => document.activeElement && document.activeElement.closest('.wb-class-picker')")
    page.keyboard.type("triangle")  # (the browser's list suggests the names as one types)
    keys(page, "Enter")  # ... picked; the keyboard is back on the canvas
    focused_on_canvas(page)
    wait_js(page, "() => getComputedStyle(document.querySelector('.wb-class-triangle')).borderTopStyle === 'solid'")
    keys(page, "Shift+?")
    wait_js(page, "() => { const s = document.querySelector('.wb-shortcuts');"
                  " return s && s.offsetParent !== null && s.textContent.includes('next image still new'); }")
    screenshot(page, "keys-02-shortcut-sheet")
    keys(page, "Escape")
    wait_js(page, "() => document.querySelector('.wb-shortcuts').offsetParent === null")
    keys(page, "Enter")  # done: image 1, then image 2
    at(page, 2, len(ids))
    keys(page, "Enter")  # image 2 has nothing: a confirmed negative
    wait_until(lambda: ds.example(ids[1]).status == "annotated", what="image 2 done")
    at(page, 3, len(ids))
    keys(page, "ArrowLeft", "Control+z")  # nothing selected: back to image 2; undo its "done"
    wait_until(lambda: ds.example(ids[1]).status == "new", what="undo of done on image 2")
    keys(page, "Enter")  # and done again
    wait_until(lambda: ds.example(ids[1]).status == "annotated", what="image 2 done again")
    screenshot(page, "keys-03-detection")

    got = sorted((a.label, a.bbox, a.proposal, a.author) for a in rows(ds, ids[0]))
    assert [g[0] for g in got] == ["circle", "triangle"] and not any(g[2] for g in got)
    assert close(got[0][1], (23, 30, 31, 30)) and close(got[1][1], SQUARE)
    assert all(g[3] == NAME for g in got)
    assert ds.example(ids[0]).status == "annotated"
    assert rows(ds, ids[1]) == [] and ds.example(ids[1]).status == "annotated"
    assert {i: ds.example(i).status for i in ids[2:]} == before  # browsed past, never written


def test_segmentation_and_focus_after_a_toolbar_click(page, store):
    ds = store.dataset("c-segment")
    ids = ds.example_ids()
    show(page, "c-segment")
    at(page, 1, len(ids))
    keys(page, "Tab", "a", "Shift+ArrowRight")  # accept the polygon proposal, move it 10 px right
    moved = tuple(v + 10 if k % 2 == 0 else v for k, v in enumerate(TRIANGLE))
    wait_until(
        lambda: any(not a.proposal and a.polygons and close(a.polygons[0], moved) for a in rows(ds, ids[0])),
        what="the accepted polygon moved by 10 px",
    )
    keys(page, "Escape", "2")  # deselect; the next shape is a square

    # the one mouse use: vertices, then a toolbar click, then Enter must still reach the canvas
    box = page.locator("canvas.wb-canvas").bounding_box()
    pts = [(450.0, 380.0), (620.0, 400.0), (560.0, 560.0)]
    for x, y in pts:
        page.mouse.click(box["x"] + x, box["y"] + y)
    page.locator(".wb-zoom-reset").click()  # a toolbar button takes the focus ...
    focused_on_canvas(page)  # ... and gives it back
    keys(page, "Enter")  # closes the polygon
    view = fit(128, 128)
    want = [v for p in pts for v in to_image(p, view)]
    (poly,) = wait_until(
        lambda: [a for a in rows(ds, ids[0]) if a.label == "square"], what="the polygon closed by Enter"
    )
    assert poly.kind == "polygon" and close(poly.polygons[0], want), (poly.polygons, want)
    keys(page, "Enter")  # done with image 1
    at(page, 2, len(ids))
    screenshot(page, "keys-04-segmentation")
    anns = rows(ds, ids[0])
    assert sorted(a.label for a in anns) == ["circle", "square"]
    assert all(a.author == NAME and not a.proposal for a in anns)
    assert ds.example(ids[0]).status == "annotated" and ds.example(ids[1]).status == "new"


def test_anomaly_good_and_anomalous(page, store):
    ds = store.dataset("d-inspect")
    ids = ds.example_ids()
    show(page, "d-inspect")
    at(page, 1, len(ids))

    def label(i):
        got = [a.label for a in rows(ds, ids[i]) if a.kind == "anomaly" and not a.proposal]
        return got[0] if len(got) == 1 else None

    keys(page, "2")  # anomalous (the 2nd class)
    wait_until(lambda: label(0) == "anomalous", what="image 1 anomalous")
    keys(page, "Enter", "1")  # done, next; good
    wait_until(lambda: label(1) == "good", what="image 2 good")
    keys(page, "Shift+Enter")  # back to new ...
    wait_until(lambda: ds.example(ids[1]).status == "new", what="image 2 new")
    keys(page, "Control+z")  # ... undone
    wait_until(lambda: ds.example(ids[1]).status == "annotated", what="image 2 annotated again")
    keys(page, "Enter")
    at(page, 3, len(ids))
    screenshot(page, "keys-05-anomaly")
    # the class highlight shows the example's class: image 3 has none
    assert page.locator(".wb-class-good").evaluate("e => getComputedStyle(e).borderStyle") != "solid"
    for i, want in ((0, "anomalous"), (1, "good")):
        (a,) = rows(ds, ids[i])
        assert (a.label, a.author, ds.example(ids[i]).status) == (want, NAME, "annotated"), i
    assert rows(ds, ids[2]) == [] and ds.example(ids[2]).status == "new"
    assert re.search(r"2 / 3 annotated", page.inner_text(".wb-progress"))
