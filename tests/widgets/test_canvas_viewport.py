"""Canvas that fits the screen, and how annotations look (no browser): sizing maths, resize, class tags,
fill opacity, the brush size under the cursor, and the widget's view controls."""

from __future__ import annotations

import pytest

from workbench.data.records import Annotation
from workbench.errors import UnknownNameError, ValidationError
from workbench.widgets.geometry import ViewTransform
from workbench.widgets.scene import (
    LABEL_TAGS_MAX,
    TAG_FONT_PX,
    annotation_scene,
    interaction_scene,
    mask_alpha,
    tag_font,
)
from workbench.widgets.viewport import MIN_SIZE, Room, fit_canvas_size


# ---------------------------------------------------------------------------------------------- sizing
@pytest.mark.parametrize(
    ("room", "want"),
    [
        # 1366 x 768 laptop, compact header: the whole canvas fits under it, page at the top
        (Room(1346, 768, 220, 64, 20), (1346, 768 - 220 - 20 - 8)),
        # a tall header leaves under 60%: the canvas takes the window less toolbar and message line
        (Room(1346, 768, 420, 64, 20), (1346, 768 - 64 - 20 - 8)),
        # 1920 x 1080: wide and tall
        (Room(1900, 1080, 250, 64, 20), (1900, 1080 - 250 - 20 - 8)),
        # a phone-sized window: never below the minimum (the page scrolls instead)
        (Room(200, 300, 250, 64, 20), MIN_SIZE),
    ],
)
def test_canvas_size_from_the_room(room, want):
    assert fit_canvas_size(room) == want


def test_the_whole_canvas_is_on_screen_once_the_toolbar_is_at_the_top():
    for top in range(0, 800, 37):
        room = Room(1000, 768, top, 70, 22)
        w, h = fit_canvas_size(room)
        at_top = top + h + 22 <= 768  # no scroll
        scrolled = 70 + h + 22 <= 768  # the widget scrolled to the window's top
        assert at_top or scrolled, (top, h)


@pytest.mark.parametrize("type_", ["detection", "segmentation"])
def test_resize_refits_a_fitted_view_and_keeps_a_zoomed_one_centred(type_, mk):
    s, _ = mk(type_, w=400, h=300)
    s.take_dirty()
    s.resize(1200, 500)
    assert (s.settings.canvas_width, s.settings.canvas_height) == (1200, 500)
    assert s.view == ViewTransform.fit(400, 300, 1200, 500)
    assert s.take_dirty() >= {"image", "annotations", "interaction"}
    s.zoom_at(650, 260, 2.0)
    centre = s.view.to_image(600, 250)
    scale = s.view.scale
    s.resize(900, 700)
    assert s.view.scale == pytest.approx(scale)
    assert s.view.to_image(450, 350) == pytest.approx(centre)
    # a drawing after the resize lands where the new transform says
    s.set_tool("box")
    a, b = (400.0, 300.0), (480.0, 380.0)
    s.pointer_down(*a)
    s.pointer_move(*b)
    s.pointer_up(*b)
    (x0, y0), (x1, y1) = s.view.to_image(*a), s.view.to_image(*b)
    got = s.annotations[-1].bbox
    assert got == pytest.approx((x0, y0, x1 - x0, y1 - y0))


def test_resize_refuses_an_empty_canvas(mk):
    s, _ = mk("detection")
    with pytest.raises(ValidationError, match="0 x 10"):
        s.resize(0, 10)


# ---------------------------------------------------------------------------------------------- tags
def test_tag_rules():
    assert tag_font("hide", 500, 500) is None
    assert tag_font("show", 3, 3) == TAG_FONT_PX
    assert tag_font("auto", 200, 300) == TAG_FONT_PX  # big on screen: full size
    assert tag_font("auto", 40, 300) == 10.0  # shrinks with the box's smaller side
    assert tag_font("auto", 20, 300) == 8.0  # not below 8 px
    assert tag_font("auto", 15.9, 300) is None  # too small to carry a tag: none


def _boxes(n: int, size: float) -> dict[int, list[Annotation]]:
    per_row = 10
    return {
        1: [
            Annotation(
                "box", "cat", bbox=(5.0 + (i % per_row) * 38.0, 5.0 + (i // per_row) * 38.0, size, size)
            )
            for i in range(n)
        ]
    }


def test_sixty_boxes_zoomed_out_keep_their_objects_visible(mk):
    s, _ = mk("detection", w=400, h=300, annotations=_boxes(60, 30.0))
    s.resize(400, 300)  # scale 1: boxes are 30 px on screen
    tags = annotation_scene(s).texts
    assert len(tags) == 60 and {t.size for t in tags} == {8.0}
    s.zoom_at(0, 0, 0.5)  # 15 px on screen: tags would cover the objects, none drawn
    assert annotation_scene(s).texts == []
    s.zoom_at(0, 0, 8.0)  # 60 px: full size again
    assert {t.size for t in annotation_scene(s).texts} == {TAG_FONT_PX}
    s.set_tags("show")
    s.zoom_at(0, 0, 0.1)
    assert len(annotation_scene(s).texts) == 60
    s.set_tags("hide")
    assert annotation_scene(s).texts == []
    with pytest.raises(UnknownNameError, match="auto"):
        s.set_tags("sometimes")


def test_tags_sit_above_their_box_at_their_size(mk):
    s, _ = mk("detection", w=400, h=300, annotations=_boxes(1, 40.0))
    s.resize(400, 300)
    s.zoom_at(0, 0, 2.0)  # the box is 80 px on screen
    s.pan_by(0, 60)
    (t,) = annotation_scene(s).texts
    x, y, _w, _h = s.view.to_canvas_box(s.annotations[0].bbox)
    assert t.size == TAG_FONT_PX and (t.x, t.y) == pytest.approx((x, y - TAG_FONT_PX - 2.0))


def test_over_the_tag_limit_no_tags(mk):
    many = [
        Annotation("box", "cat", bbox=(float(i), float(i), 30.0, 30.0)) for i in range(LABEL_TAGS_MAX + 1)
    ]
    s, _ = mk("detection", w=400, h=300, annotations={1: many})
    s.set_tags("show")
    assert annotation_scene(s).texts == []


# ---------------------------------------------------------------------------------------------- opacity
def test_fill_opacity(mk):
    poly = Annotation("polygon", "cat", polygons=((10.0, 10.0, 100.0, 10.0, 50.0, 80.0),))
    s, _ = mk("segmentation", annotations={1: [poly]})
    (p,) = annotation_scene(s).polys
    assert p.style.fill_alpha == 0.15  # the default
    s.take_dirty()
    s.set_fill_opacity(0.6)
    assert s.take_dirty() >= {"annotations", "interaction"}
    assert annotation_scene(s).polys[0].style.fill_alpha == 0.6
    s.select(s.annotations[0].id)
    assert interaction_scene(s).polys[0].style.fill_alpha == pytest.approx(0.7)  # selected: stronger
    s.set_fill_opacity(0.0)  # outlines only, selected or not
    assert annotation_scene(s).polys[0].style.fill_alpha == 0.0
    assert interaction_scene(s).polys[0].style.fill_alpha == 0.0
    s.set_fill_opacity(7)
    assert s.fill_opacity == 1.0
    assert mask_alpha(0.15) == pytest.approx(110 / 255) and mask_alpha(1.0) == 1.0 and mask_alpha(0) == 0


def test_brush_size_under_the_cursor(mk):
    s, _ = mk("segmentation")
    s.set_tool("brush")
    s.pointer_move(200, 150)
    texts = interaction_scene(s).texts
    assert [t.text for t in texts] == [f"{s.brush_radius:.0f} px"]
    (circle,) = interaction_scene(s).circles
    assert circle.r[0] == pytest.approx(s.brush_radius * s.view.scale)
    assert texts[0].x > 200 and texts[0].y > 150  # beside the cursor, not under it
    s.set_brush_radius(20)
    assert interaction_scene(s).texts[0].text == "20 px"


# ---------------------------------------------------------------------------------------------- widget
pytest.importorskip("ipycanvas")


def test_widget_takes_the_room_the_browser_reports(sink_factory):
    from workbench.widgets.canvas import AnnotationCanvas

    c = AnnotationCanvas(sink_factory("detection"))
    assert c.fit_screen
    c.probe.room = {"width": 1346, "window_height": 768, "canvas_top": 220, "toolbar_height": 64, "below": 20}
    want = fit_canvas_size(Room(1346, 768, 220, 64, 20))
    assert (c.multicanvas.width, c.multicanvas.height) == want
    assert (c.multicanvas.layout.width, c.multicanvas.layout.height) == (f"{want[0]}px", f"{want[1]}px")
    assert (c.state.settings.canvas_width, c.state.settings.canvas_height) == want
    c.probe.room = {"width": "wide"}  # a malformed report changes nothing
    assert (c.multicanvas.width, c.multicanvas.height) == want
    fixed = AnnotationCanvas(sink_factory("detection"), width=800, height=600)
    fixed.probe.room = c.probe.room | {"width": 1346}
    assert (fixed.multicanvas.width, fixed.multicanvas.height) == (800, 600)  # a given size stays
    c.image_layer.display.close()
    fixed.close()


def test_view_controls_change_the_state(sink_factory):
    from workbench.widgets.canvas import AnnotationCanvas

    c = AnnotationCanvas(sink_factory("segmentation"), width=800, height=600)
    c.opacity_slider.value = 0.5
    assert c.state.fill_opacity == 0.5
    c.tags_toggle.value = "hide"
    assert c.state.tags == "hide"
    c.image_layer.display.close()


@pytest.mark.parametrize(
    ("type_", "controls"),
    [
        ("classification", set()),
        ("detection", {"wb-tags"}),
        ("segmentation", {"wb-tags", "wb-fill-opacity"}),
        ("anomaly", {"wb-tags", "wb-fill-opacity"}),
    ],
)
def test_view_controls_offered_per_type(type_, controls, sink_factory):
    from workbench.widgets.canvas import AnnotationCanvas

    def classes(w) -> set[str]:
        out = set(getattr(w, "_dom_classes", ()))
        for child in getattr(w, "children", ()):
            out |= classes(child)
        return out

    c = AnnotationCanvas(sink_factory(type_), width=800, height=600)
    assert classes(c) & {"wb-tags", "wb-fill-opacity"} == controls
    c.close()
