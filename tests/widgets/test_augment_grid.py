"""The augmentation grid: state edits (toggles, params, re-roll, save), seeds, flags, and the view."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from workbench.augment.pipeline import AugmentedSample, draw_seed
from workbench.augment.presets import default_preset, preset
from workbench.data.records import Annotation, ClassDef, Example
from workbench.data.samples import make_sample
from workbench.errors import UnknownNameError, ValidationError
from workbench.widgets.augment_grid import AugmentationGrid
from workbench.widgets.augment_state import (
    AugmentGridState,
    Draw,
    GridExample,
    sample_annotations,
    slider_specs,
)
from workbench.widgets.static import PNG_MIME

SAMPLES = {
    "classification": "shapes-classification",
    "detection": "shapes-detection",
    "segmentation": "shapes-segmentation",
    "anomaly": "shapes-anomaly",
}


def grid_examples(dataset_type: str, n: int = 2, size: int = 64) -> tuple[list[GridExample], list[ClassDef]]:
    batch = make_sample(SAMPLES[dataset_type], count=n, size=size)
    out = []
    for i, item in enumerate(batch.items):
        ex = Example(
            i + 1,
            "d",
            f"blob{i}",
            item.file_name,
            size,
            size,
            "train",
            "annotated",
            annotations=tuple(item.annotations),
        )
        out.append(GridExample.from_example(ex, item.data, dataset_type))
    return out, list(batch.classes)


class FakeSampler:
    """Same signature as augment.pipeline.sample; flips the image, and drops / clips by the seed."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict, int]] = []

    def __call__(self, config, dataset_type, image, boxes=None, labels=None, masks=None, *, seed):
        self.calls.append((config, seed))
        n = 0 if boxes is None else len(boxes)
        dropped = 1 if n and seed % 3 == 0 else 0
        clipped = 1 if n > dropped and seed % 3 == 1 else 0
        kept = list(range(dropped, n))
        out_boxes = np.asarray(boxes, dtype=float)[kept] if n else np.zeros((0, 4))
        return AugmentedSample(
            image=image[:, ::-1].copy(),
            boxes=out_boxes,
            labels=[labels[i] for i in kept] if labels else [],
            masks=masks,
            kept=kept,
            params=[{"index": 0, "name": "HorizontalFlip", "params": {}}],
            seed=seed,
            dropped=dropped,
            clipped=clipped,
        )


# ---------------------------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("dataset_type", list(SAMPLES))
def test_grid_example_from_example(dataset_type):
    batch = make_sample(SAMPLES[dataset_type], count=3, size=64, seed=2)
    for i, item in enumerate(batch.items):
        ex = Example(
            i, "d", "b", item.file_name, 64, 64, "train", "annotated", annotations=tuple(item.annotations)
        )
        g = GridExample.from_example(ex, item.data, dataset_type)
        assert g.image.shape == (64, 64, 3) and g.example_id == i
        if dataset_type == "detection":
            assert len(g.boxes) == len(g.labels) == len(item.annotations)
            assert g.masks is None
        elif dataset_type == "segmentation":
            assert len(g.masks) == len(g.labels) == len(item.annotations)
            assert all(m.shape == (64, 64) and m.any() for m in g.masks)
        else:
            assert g.label == item.annotations[0].label
            has_region = any(a.polygons for a in item.annotations)
            assert (g.masks is not None) == has_region


def test_grid_example_leaves_out_proposals_and_clips_boxes():
    img = np.zeros((20, 30, 3), np.uint8)
    ex = Example(
        1,
        "d",
        "b",
        "f",
        30,
        20,
        "train",
        "annotated",
        annotations=(
            Annotation("box", "cat", bbox=(25, 5, 10, 5)),
            Annotation("box", "dog", bbox=(1, 1, 5, 5), proposal=True, score=0.9),
        ),
    )
    g = GridExample.from_example(ex, img, "detection")
    assert g.labels == ["cat"] and g.boxes.tolist() == [[25, 5, 5, 5]]
    with pytest.raises(UnknownNameError):
        GridExample.from_example(ex, img, "tracking")


# ---------------------------------------------------------------------------------------------- state
def make_state(dataset_type="detection", **kw) -> tuple[AugmentGridState, FakeSampler]:
    exs, _ = grid_examples(dataset_type)
    sampler = FakeSampler()
    return AugmentGridState(
        preset(default_preset(dataset_type)), dataset_type, exs, sampler=sampler, **kw
    ), sampler


@pytest.mark.parametrize("index", [0, 1, 2])
def test_toggle_changes_the_config(index):
    state, _ = make_state()
    before = state.config["transforms"][index]["enabled"]
    state.toggle(index, not before)
    assert state.config["transforms"][index]["enabled"] is (not before)
    assert state.dirty
    others = [t["enabled"] for i, t in enumerate(state.config["transforms"]) if i != index]
    assert others == [t["enabled"] for i, t in enumerate(state.saved_config["transforms"]) if i != index]
    state.toggle(index, before)
    assert not state.dirty


@pytest.mark.parametrize(
    "name, param, value, ok",
    [
        ("HorizontalFlip", "p", 0.9, True),
        ("Affine", "rotate", [-30, 30], True),
        ("Affine", "rotate", [30, -30], False),
        ("Affine", "p", 1.5, False),
        ("Affine", "zoom", 1.0, False),
    ],
)
def test_set_param(name, param, value, ok):
    state, _ = make_state()
    index = next(i for i, t in enumerate(state.config["transforms"]) if t["name"] == name)
    if ok:
        state.set_param(index, param, tuple(value) if isinstance(value, list) else value)
        assert state.config["transforms"][index]["params"][param] == value
    else:
        with pytest.raises(ValidationError) as err:
            state.set_param(index, param, value)
        assert f"transforms[{index}]" in (err.value.field or "")
        assert not state.dirty


def test_seeds_are_training_seeds_and_reroll_changes_them():
    state, _ = make_state(draws=3, base_seed=7, first_epoch=1)
    ids = [ex.example_id for ex in state.examples]
    assert state.seeds() == [[draw_seed(7, e, i) for e in (1, 2, 3)] for i in ids]
    before = state.seeds()
    new = state.reroll()
    assert new != 7 and state.base_seed == new
    after = state.seeds()
    assert all(a != b for ra, rb in zip(before, after, strict=True) for a, b in zip(ra, rb, strict=True))
    other, _ = make_state(draws=3, base_seed=7)
    other.reroll()
    assert other.seeds() == after  # re-roll is deterministic
    state.reroll()
    assert state.seeds() != after


def test_draws_use_the_current_config_and_seeds():
    state, sampler = make_state(draws=2)
    rows = state.draw_all()
    assert [len(r) for r in rows] == [2, 2]
    assert [seed for _, seed in sampler.calls] == [s for row in state.seeds() for s in row]
    state.toggle(0, False)
    sampler.calls.clear()
    state.draw_all()
    assert all(cfg["transforms"][0]["enabled"] is False for cfg, _ in sampler.calls)


@pytest.mark.parametrize(
    "dropped, clipped, flagged, text",
    [
        (0, 0, False, ""),
        (2, 0, True, "2 dropped"),
        (0, 1, True, "1 clipped"),
        (1, 1, True, "1 dropped, 1 clipped"),
    ],
)
def test_draw_flags(dropped, clipped, flagged, text):
    s = AugmentedSample(
        np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4)), [], None, [], [], 1, dropped, clipped
    )
    d = Draw(1, 1, 1, s)
    assert d.flagged is flagged and d.flag_text == text
    assert d.caption.startswith("⚠") is flagged


def test_real_pipeline_flags_dropped_and_clipped_boxes():
    """Boxes at the border pushed out by a large shift: the draws that lost them are flagged."""
    img = np.full((64, 64, 3), 128, np.uint8)
    ex = GridExample(1, img, np.array([[0.0, 0.0, 20.0, 20.0], [44.0, 44.0, 20.0, 20.0]]), ["cat", "dog"])
    config = {
        "version": 1,
        "transforms": [
            {
                "name": "Affine",
                "enabled": True,
                "params": {
                    "translate_percent": [-0.45, 0.45],
                    "scale": [1, 1],
                    "rotate": [0, 0],
                    "shear": [0, 0],
                    "p": 1.0,
                },
            }
        ],
    }
    state = AugmentGridState(config, "detection", [ex], draws=8)
    rows = state.draw_all()
    draws = rows[0]
    assert any(d.flagged for d in draws)
    for d in draws:
        assert d.flagged == bool(d.sample.dropped or d.sample.clipped)
        assert len(d.sample.labels) == 2 - d.sample.dropped


def test_state_rejects_bad_arguments():
    exs, _ = grid_examples("detection", n=1)
    with pytest.raises(ValidationError):
        AugmentGridState(preset(default_preset("detection")), "detection", exs, draws=0)
    with pytest.raises(UnknownNameError):
        AugmentGridState(preset(default_preset("detection")), "video", exs)
    with pytest.raises(ValidationError):
        AugmentGridState({"version": 2}, "detection", exs)


def test_slider_specs_cover_probabilities_and_ranges():
    config = preset(default_preset("detection"))
    specs = slider_specs(config)
    names = {(s.transform, s.param) for s in specs}
    assert ("HorizontalFlip", "p") in names and ("Affine", "rotate") in names
    assert all(s.kind in ("prob", "number", "range", "int_range") for s in specs)
    assert not any(s.param == "rotate_method" for s in specs)  # choices keep their value
    for s in specs:
        assert s.lo < s.hi and 0 < s.step <= s.hi - s.lo


@pytest.mark.parametrize("dataset_type", list(SAMPLES))
def test_sample_annotations_per_type(dataset_type):
    exs, _ = grid_examples(dataset_type, n=1)
    ex = exs[0]
    s = AugmentedSample(
        ex.image,
        ex.boxes if ex.boxes is not None else np.zeros((0, 4)),
        ex.labels,
        ex.masks,
        list(range(len(ex.labels))),
        [],
        0,
    )
    anns = sample_annotations(s, dataset_type, ex.label)
    kinds = {a.kind for a in anns}
    if dataset_type == "detection":
        assert kinds == {"box"} and len(anns) == len(ex.labels)
    elif dataset_type == "segmentation":
        assert kinds == {"mask"} and len(anns) == len(ex.labels)
    else:
        assert anns[0].label == ex.label


# ---------------------------------------------------------------------------------------------- view
def make_grid(dataset_type="detection", **kw) -> tuple[AugmentationGrid, FakeSampler, list]:
    exs, classes = grid_examples(dataset_type)
    sampler = FakeSampler()
    saved: list = []
    grid = AugmentationGrid(
        preset(default_preset(dataset_type)),
        dataset_type,
        exs,
        classes,
        draws=3,
        on_save=saved.append,
        sampler=sampler,
        cell_size=96,
        **kw,
    )
    return grid, sampler, saved


def test_checkbox_toggles_transform_and_redraws():
    grid, sampler, _ = make_grid()
    renders, image = grid.renders, grid.image.value
    box = grid.toggles[0]
    assert "wb-aug-toggle" in box._dom_classes
    box.value = not box.value
    assert grid.state.config["transforms"][0]["enabled"] is box.value
    assert grid.renders == renders + 1
    assert sampler.calls[-1][0]["transforms"][0]["enabled"] is box.value
    assert "unsaved" in grid.status.value and not grid.save_button.disabled
    assert grid.image.value[:3] == image[:3] == b"\xff\xd8\xff"  # JPEG on the wire


def test_slider_sets_param():
    grid, _, _ = make_grid()
    index = next(i for i, t in enumerate(grid.state.config["transforms"]) if t["name"] == "Affine")
    grid.sliders[(index, "rotate")].value = (-20.0, 25.0)
    assert grid.state.config["transforms"][index]["params"]["rotate"] == [-20.0, 25.0]
    grid.sliders[(index, "p")].value = 0.85
    assert grid.state.config["transforms"][index]["params"]["p"] == 0.85


def test_refused_value_shows_error_and_resets_control():
    grid, _, _ = make_grid()
    index = next(i for i, t in enumerate(grid.state.config["transforms"]) if t["name"] == "Affine")
    before = grid.state.config
    grid.set_param(index, "p", 3.0)
    assert grid.state.config == before
    assert "transforms[" in grid.status.value
    assert grid.sliders[(index, "p")].value == before["transforms"][index]["params"]["p"]


def test_reroll_button_changes_seeds_and_picture():
    grid, sampler, _ = make_grid()
    seeds = [s for row in grid.state.seeds() for s in row]
    captions = grid.captions.value
    assert "wb-reroll" in grid.reroll_button._dom_classes
    grid.reroll_button.click()
    new = [s for row in grid.state.seeds() for s in row]
    assert set(new).isdisjoint(seeds)
    assert [s for _, s in sampler.calls[-len(new) :]] == new
    assert grid.captions.value != captions


def test_flagged_draws_marked_in_captions_and_status():
    grid, _, _ = make_grid()
    flagged = [d for row in grid.rows for d in row if d.flagged]
    assert flagged  # the fake sampler drops or clips on two seeds in three
    assert grid.captions.value.count("wb-flagged") == len(flagged)
    assert f"{len(flagged)} draws lost or clipped boxes" in grid.status.value


def test_save_button_hands_config_back():
    grid, _, saved = make_grid()
    assert grid.save_button.disabled
    grid.toggles[1].value = not grid.toggles[1].value
    grid.save_button.click()
    assert saved == [grid.state.config]
    assert grid.save_button.disabled and not grid.state.dirty


@pytest.mark.parametrize("dataset_type", list(SAMPLES))
def test_static_picture_is_the_grid_png(dataset_type):
    grid, _, _ = make_grid(dataset_type)
    bundle = grid._repr_mimebundle_()
    img = Image.open(io.BytesIO(base64.b64decode(bundle[PNG_MIME])))
    assert img.format == "PNG"
    assert img.width >= 4 * 96  # the original + 3 draws per row
    assert img.height >= 2 * 96  # two examples
    assert "wb-aug-grid" in grid.image._dom_classes
