"""Keys that mean what they show, explicit status, keyboard-first editing -- state level, no browser.

The default canvas is 800 x 600 and the images 400 x 300: canvas point (cx, cy) is image point
(cx / 2, cy / 2) until a test zooms or pans.
"""

from __future__ import annotations

import pytest

from workbench.data.records import Annotation
from workbench.errors import ValidationError
from workbench.widgets.canvas_state import CanvasSettings, CanvasState
from workbench.widgets.keys import BINDINGS, KeyMap, class_keys, shortcut_sheet_html
from workbench.widgets.sink import MemoryImage, MemorySink

from .conftest import RecordingSink, image_bytes


def drag(s: CanvasState, a, b, steps: int = 4) -> None:
    s.pointer_down(*a)
    for k in range(1, steps + 1):
        s.pointer_move(a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
    s.pointer_up(*b)


def click(s: CanvasState, p) -> None:
    s.pointer_down(*p)
    s.pointer_up(*p)


def sink_with(type_: str, classes, n: int = 3, annotations=None, statuses=None) -> RecordingSink:
    images = [
        MemoryImage(
            image_bytes(400, 300, color=(10 * i, 40, 80)),
            400,
            300,
            file_name=f"im{i}.png",
            annotations=(annotations or {}).get(i, ()),
            status=(statuses or {}).get(i),
        )
        for i in range(1, n + 1)
    ]
    return RecordingSink(type_, classes, images)


def state(sink: RecordingSink, **kw) -> CanvasState:
    s = CanvasState(sink, user="ann", **kw)
    sink.take()
    return s


DIGITS = [str(d) for d in range(10)]  # the digits sample's class names, in its order


# ---------------------------------------------------------------------------------------------- 1. keys
def test_digit_class_names_key_equals_name():
    assert class_keys(DIGITS) == {d: d for d in DIGITS}
    km = KeyMap(DIGITS)
    assert all(km.resolve(d) == f"class:{d}" for d in DIGITS)
    assert km.resolve("f") == "reset_view"  # zoom reset moved off "0"
    shuffled = ["7", "3", "0"]  # order does not matter: the key is the name
    assert class_keys(shuffled) == {"7": "7", "3": "3", "0": "0"}


def test_digits_classification_key_stores_its_own_name():
    sink = sink_with("classification", DIGITS, n=12)
    s = state(sink)
    for k, d in enumerate(["3", "0", "9", "1"]):
        s.key_down(d)  # labels and moves on
        assert sink.truth(k + 1)[0].label == d and s.example.id == k + 2
    assert [w[0] for w in sink.take()] == ["add_annotation"] * 4


@pytest.mark.parametrize("n", [3, 9, 10, 12])
def test_non_digit_class_keys_are_1_to_9_then_0(n):
    names = [f"class {i}" for i in range(1, n + 1)]
    keys = class_keys(names)
    want = [*"123456789", "0"][: min(n, 10)]
    assert list(keys) == want and list(keys.values()) == names[: len(want)]
    km = KeyMap(names)
    if n >= 10:
        assert km.resolve("0") == "class:class 10"
    else:
        assert km.resolve("0") is None
    assert all(km.key_of_class(nm) is None for nm in names[10:])  # 11th and 12th: the class picker


def test_mixed_names_with_a_digit_are_not_digit_named():
    assert class_keys(["1", "cat", "2"]) == {"1": "1", "2": "cat", "3": "2"}  # not all digits: positions
    assert class_keys(["10", "2"]) == {"1": "10", "2": "2"}  # "10" is not a single digit


def test_twelve_classes_the_picker_reaches_11_and_12():
    names = [f"c{i}" for i in range(1, 13)]
    sink = sink_with("detection", names)
    s = state(sink)
    s.key_down("0")
    assert s.current_class == "c10"
    s.do("class:c12")  # what the type-ahead picker calls
    drag(s, (100, 100), (200, 150))
    assert sink.truth()[0].label == "c12"
    s.key_down("c")
    s.key_down("g")
    assert s.take_requests() == ["picker", "goto"]  # the view focuses the picker / number field


def test_class_key_never_relabels_the_shape_just_drawn():
    sink = sink_with("detection", ["circle", "square", "triangle"])
    s = state(sink)
    drag(s, (100, 100), (200, 150))
    (first,) = sink.truth()
    assert first.label == "circle" and s.selected_id == first.id and not s.deliberate
    sink.take()
    s.key_down("2")  # "square" for the NEXT box
    assert sink.take() == [] and sink.truth()[0].label == "circle" and s.current_class == "square"
    drag(s, (300, 300), (400, 400))
    assert sorted(a.label for a in sink.truth()) == ["circle", "square"]
    s.key_down("3")  # the second box was just drawn too: untouched
    assert sorted(a.label for a in sink.truth()) == ["circle", "square"]


@pytest.mark.parametrize("how", ["click", "tab"])
def test_class_key_relabels_a_deliberate_selection(how):
    sink = sink_with("detection", ["circle", "square"], annotations={1: [Annotation("box", "circle", bbox=(50, 50, 50, 25))]})
    s = state(sink)
    if how == "click":
        click(s, (150, 125))
    else:
        s.key_down("Tab")
    assert s.deliberate
    s.key_down("2")
    assert [w[0] for w in sink.take()] == ["update_annotation"] and sink.truth()[0].label == "square"
    s.key_down("Escape")
    assert s.selected_id is None
    s.key_down("1")
    assert sink.take() == [] and s.current_class == "circle"


def test_classification_advance_is_configurable():
    sink = sink_with("classification", ["cat", "dog"])
    s = state(sink, settings=CanvasSettings(advance_on_class=False))
    s.key_down("2")
    assert s.example.id == 1 and sink.truth(1)[0].label == "dog"
    s2 = state(sink_with("classification", ["cat", "dog"]))
    s2.key_down("2")
    assert s2.example.id == 2
    s2.key_down("z", ctrl=True)  # undo right after moving on: back to example 1, label gone, new again
    assert s2.example.id == 1 and s2.sink.truth(1) == [] and s2.sink.example(1).status == "new"


# ---------------------------------------------------------------------------------------------- 2. status
BROWSE = [("n",), ("ArrowRight",), ("PageDown",), ("PageUp",), ("ArrowLeft",), ("u",), ("N", True)]


@pytest.mark.parametrize("type_", ["classification", "detection", "segmentation", "anomaly"])
def test_browsing_never_changes_status(type_):
    classes = [] if type_ == "anomaly" else ["cat", "dog"]
    sink = sink_with(type_, classes, n=4)
    s = state(sink)
    for _ in range(3):
        for k in BROWSE:
            s.key_down(*k)
    s.next()
    s.previous()
    s.skip()
    s.jump("new")
    s.goto_number(4)
    s.goto(1)
    assert sink.take() == []
    assert [sink.example(i).status for i in range(1, 5)] == ["new"] * 4
    assert s.status_counts == {"new": 4, "annotated": 0, "reviewed": 0}


def test_done_is_undoable_and_back_to_new():
    sink = sink_with("detection", ["cat"])
    s = state(sink)
    s.key_down("Enter")  # done: a confirmed negative, then the next example
    assert sink.take() == [("set_status", 1, "annotated")] and s.example.id == 2
    assert s.status_counts == {"new": 2, "annotated": 1, "reviewed": 0}
    s.key_down("z", ctrl=True)  # undo goes back to example 1 and makes it new again
    assert s.example.id == 1 and sink.example(1).status == "new" and sink.take() == [("set_status", 1, "new")]
    s.key_down("Z", shift=True, ctrl=True)
    assert sink.example(1).status == "annotated"
    s.key_down("Enter", shift=True)  # back to new, itself undoable
    assert sink.example(1).status == "new"
    s.undo()
    assert sink.example(1).status == "annotated"
    assert s.progress_text == "1 / 3 annotated · new 2 · annotated 1 · reviewed 0"


def test_done_without_advancing_and_at_the_end():
    sink = sink_with("detection", ["cat"], n=2)
    s = state(sink, settings=CanvasSettings(advance_on_done=False))
    s.done()
    assert s.example.id == 1 and sink.example(1).status == "annotated" and "marked annotated" in s.message
    s.next()
    s.done()  # the last one: marked, stays
    assert s.example.id == 2 and sink.example(2).status == "annotated"


def test_undoing_the_first_shape_gives_back_new():
    sink = sink_with("detection", ["cat"])
    s = state(sink)
    drag(s, (100, 100), (200, 150))
    assert sink.example(1).status == "annotated"
    s.undo()
    assert sink.truth() == [] and sink.example(1).status == "new" and s.status_counts["new"] == 3
    s.redo()
    assert sink.example(1).status == "annotated" and len(sink.truth()) == 1


def test_jumps_next_new_and_image_number():
    sink = sink_with("detection", ["cat"], n=5, statuses={2: "annotated", 3: "reviewed", 5: "annotated"})
    s = state(sink)
    assert s.status_counts == {"new": 2, "annotated": 2, "reviewed": 1}
    s.key_down("u")
    assert s.example.id == 4
    s.key_down("u")  # wraps round
    assert s.example.id == 1
    assert s.jump("reviewed") and s.example.id == 3
    assert not s.jump("reviewed") and "no other" in s.message
    s.goto_number(5)
    assert s.example.id == 5
    with pytest.raises(ValidationError, match="1 to 5"):
        s.goto_number(6)
    assert sink.take() == []


def test_done_on_classification_needs_a_label():
    sink = sink_with("classification", ["cat", "dog"])
    s = state(sink, settings=CanvasSettings(advance_on_class=False))
    s.key_down("Enter")
    assert sink.take() == [] and "class first" in s.message
    s.key_down("1")
    assert "class first" not in s.message  # messages clear on the next action
    s.key_down("Enter")  # already annotated by the label: done just moves on
    assert [w[:2] for w in sink.take()] == [("add_annotation", 1)] and s.example.id == 2


# ---------------------------------------------------------------------------------------------- 3. editing
def _two_boxes() -> RecordingSink:
    return sink_with(
        "detection",
        ["cat", "dog"],
        annotations={1: [Annotation("box", "cat", bbox=(50, 50, 50, 25)), Annotation("box", "dog", bbox=(200, 100, 40, 40))]},
    )


def test_tab_cycles_shapes_both_ways():
    s = state(_two_boxes())
    a, b = (x.id for x in s.annotations)
    s.key_down("Tab")
    assert s.selected_id == a and s.deliberate and s.current_class == "cat"
    s.key_down("Tab")
    assert s.selected_id == b and s.current_class == "dog"
    s.key_down("Tab")
    assert s.selected_id == a
    s.key_down("Tab", shift=True)
    assert s.selected_id == b
    s.key_down("Escape")
    s.key_down("Tab", shift=True)
    assert s.selected_id == b


def test_arrows_nudge_a_selection_and_browse_without_one():
    sink = _two_boxes()
    s = state(sink)
    s.key_down("Tab")
    s.key_down("ArrowRight")
    s.key_down("ArrowDown", shift=True)
    s.key_down("ArrowLeft")
    s.key_down("ArrowUp")
    assert s.example.id == 1
    assert sink.truth()[0].bbox == (50.0, 59.0, 50.0, 25.0)
    assert [w[0] for w in sink.take()] == ["update_annotation"] * 4  # each press saved
    for _ in range(4):
        s.undo()
    assert sink.truth()[0].bbox == (50.0, 50.0, 50.0, 25.0)
    s.key_down("ArrowLeft", shift=True)
    for _ in range(10):
        s.key_down("ArrowLeft", shift=True)  # kept inside the image
    assert sink.truth()[0].bbox[0] == 0.0
    s.key_down("Escape")
    s.key_down("ArrowRight")  # nothing selected: browse
    assert s.example.id == 2


def test_ctrl_arrows_resize_the_selected_box():
    sink = _two_boxes()
    s = state(sink)
    s.key_down("Tab")
    s.key_down("ArrowRight", ctrl=True)
    s.key_down("ArrowDown", shift=True, ctrl=True)
    assert sink.truth()[0].bbox == (50.0, 50.0, 51.0, 35.0)
    s.key_down("ArrowUp", shift=True, ctrl=True)
    s.key_down("ArrowUp", shift=True, ctrl=True)
    s.key_down("ArrowUp", shift=True, ctrl=True)
    s.key_down("ArrowUp", shift=True, ctrl=True)  # never below the smallest box
    assert sink.truth()[0].bbox == (50.0, 50.0, 51.0, 1.0)
    s.key_down("Tab")
    for _ in range(30):
        s.key_down("ArrowRight", shift=True, ctrl=True)
    assert sink.truth()[1].bbox == (200.0, 100.0, 200.0, 40.0)  # clamped at the image's right edge


def test_nudge_a_polygon_and_resize_refused_for_it():
    sink = sink_with(
        "segmentation", ["cat"], annotations={1: [Annotation("polygon", "cat", polygons=((10, 10, 50, 10, 30, 40),))]}
    )
    s = state(sink)
    s.key_down("Tab")
    s.key_down("ArrowRight", shift=True)
    assert sink.truth()[0].polygons == ((20.0, 10.0, 60.0, 10.0, 40.0, 40.0),)
    s.key_down("ArrowRight", ctrl=True)
    assert "only boxes" in s.message


def test_tool_keys_and_space_pan():
    s = state(sink_with("segmentation", ["cat"]))
    for key, tool in [("b", "box"), ("p", "polygon"), ("r", "brush"), ("e", "eraser"), ("v", "select")]:
        s.key_down(key)
        assert s.tool == tool
    s.key_down("h")
    assert s.tool == "pan"
    d = state(sink_with("detection", ["cat"]))
    d.key_down("p")
    assert d.tool == "box" and "no polygon tool" in d.message
    x0 = d.view.offset_x
    d.key_down(" ")  # held: drags pan instead of drawing
    drag(d, (100, 100), (160, 100))
    assert d.view.offset_x == x0 + 60 and d.sink.truth() == []
    d.set_space_pan(False)  # the view reports the release
    drag(d, (100, 100), (200, 150))
    assert len(d.sink.truth()) == 1
    d.key_down("+")
    d.key_down("f")
    assert d.view.scale == 2.0


def test_drag_inside_the_selected_box_moves_it():
    sink = sink_with(
        "detection",
        ["cat"],
        annotations={1: [Annotation("box", "cat", bbox=(50, 50, 100, 100)), Annotation("box", "cat", bbox=(80, 80, 10, 10))]},
    )
    s = state(sink)
    big = s.annotations[0].id
    s.select(big)
    drag(s, (120, 120), (140, 130))  # starts on the small box inside the selected big one
    assert [a.bbox for a in sink.truth()] == [(60.0, 55.0, 100.0, 100.0), (80.0, 80.0, 10.0, 10.0)]
    assert len(sink.truth()) == 2


def test_shortcut_sheet_is_the_key_table():
    names = ["<b>cat</b>", "dog & co"]
    km = KeyMap(names)
    sheet = shortcut_sheet_html(km, tools=("box", "select"))
    for b in BINDINGS:
        if b.help and not (b.action.startswith("tool:") and b.action[5:] not in ("box", "select")) and not b.action.startswith("brush_"):
            assert b.help.replace("&", "&amp;") in sheet, b.help
    assert "polygon tool" not in sheet and "smaller brush" not in sheet  # only what this canvas has
    assert "&lt;b&gt;cat&lt;/b&gt;" in sheet and "<b>cat" not in sheet and "dog &amp; co" in sheet
    s = state(sink_with("detection", ["cat"]))
    s.key_down("?", shift=True)
    assert s.show_help
    s.key_down("Escape")
    assert not s.show_help


def test_every_action_of_the_sheet_runs_with_shapes():
    s = state(_two_boxes())
    s.key_down("Tab")
    for action in sorted(s.keymap.actions()):
        s.do(action)
    assert s.example is not None


def test_store_statuses_query(tmp_path):
    from workbench import Workspace
    from workbench.data import ImportBatch, ImportItem

    with Workspace(tmp_path / "ws") as ws:
        ds = ws.create_dataset("d", "detection", classes="cat")
        items = [ImportItem(file_name=f"im{i}.png", data=image_bytes(40, 30, color=(i, i, i)), split="train") for i in range(3)]
        ds.import_batch(ImportBatch(items=items))
        ids = ds.example_ids()
        ds.set_status(ids[1], "reviewed")
        assert ds.statuses() == {ids[0]: "new", ids[1]: "reviewed", ids[2]: "new"}
        assert ds.statuses(split="val") == {}
        s = CanvasState(ds, user="ann")
        for k in ("n", "n", "PageUp", "ArrowLeft", "u"):
            s.key_down(k)
        assert ds.statuses() == {ids[0]: "new", ids[1]: "reviewed", ids[2]: "new"}
        s.goto(ids[0])
        s.key_down("Enter")
        assert ds.statuses()[ids[0]] == "annotated" and s.status_counts == {"new": 1, "annotated": 1, "reviewed": 1}


def test_memory_sink_is_still_a_sink():
    sink = MemorySink("detection", ["cat"], [MemoryImage(image_bytes(), 400, 300)])
    assert sink.statuses() == {1: "new"}
