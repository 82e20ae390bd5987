"""Property tests (hypothesis): random datasets survive export -> import in every format; splits never move
under random additions; after augmentation on the training path boxes stay in the image and agree with
their masks (polygons and masks of any shape); undo / redo on the canvas walks back and forth through exactly
the states the edits went through. Modest ``max_examples`` so the file runs in well under a minute.

The augmenter's own box / rectangular-mask properties are in tests/augment/test_pipeline.py.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.data import ImportBatch, ImportItem, Workspace
from workbench.data.records import Annotation, ClassDef
from workbench.data.splits import split_targets
from workbench.data.transfer import export_dataset, import_source

SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=SUPPRESS)


def png_bytes(w: int, h: int, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- strategies
CLASS_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-éü猫"


def quarter(lo: float, hi: float):
    """Coordinates on a quarter-pixel grid (what annotation tools store), within [lo, hi]."""
    return st.integers(int(np.ceil(lo * 4)), int(np.floor(hi * 4))).map(lambda v: v / 4)


@st.composite
def a_box(draw, w: int, h: int) -> tuple[float, float, float, float]:
    x = draw(quarter(0, w - 1))
    y = draw(quarter(0, h - 1))
    return x, y, draw(quarter(0.5, w - x)), draw(quarter(0.5, h - y))


@st.composite
def a_polygon(draw, w: int, h: int) -> tuple[float, ...]:
    """A triangle or quadrilateral with some area (vertices on a quarter-pixel grid)."""
    while True:
        n = draw(st.integers(3, 5))
        pts = [(draw(quarter(0, w)), draw(quarter(0, h))) for _ in range(n)]
        flat = tuple(v for p in pts for v in p)
        xs, ys = flat[0::2], flat[1::2]
        area = 0.5 * abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n)))
        if area >= 2.0:
            return flat


@st.composite
def a_mask(draw, w: int, h: int) -> dict:
    """A random non-empty mask as uncompressed RLE (column-major, COCO's order)."""
    seed = draw(st.integers(0, 2**16))
    m = np.random.default_rng(seed).random((h, w)) < draw(st.sampled_from([0.05, 0.3, 0.7]))
    m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
    flat = m.T.reshape(-1)
    counts, cur, run = [], False, 0
    for v in flat:
        if bool(v) != cur:
            counts.append(run)
            cur, run = bool(v), 0
        run += 1
    counts.append(run)
    return {"size": [h, w], "counts": counts}


# what each format holds (round trips are exact for these; anomaly polygons come back as masks, YOLO
# multi-polygons as several instances, so those are not drawn)
FORMATS = {
    "coco-detection": ("coco", "detection", ("box",)),
    "coco-segmentation": ("coco", "segmentation", ("polygon", "multipolygon", "mask")),
    "yolo-detection": ("yolo", "detection", ("box",)),
    "yolo-segmentation": ("yolo", "segmentation", ("polygon",)),
    "voc": ("voc", "detection", ("box",)),
    "imagefolder": ("imagefolder", "classification", ("label",)),
    "anomaly-folder": ("anomaly-folder", "anomaly", ("anomaly",)),
}


@st.composite
def a_dataset(draw, dtype: str, kinds: tuple[str, ...]) -> ImportBatch:
    if dtype == "anomaly":
        names = ["good", "anomalous"]
    else:
        names = draw(
            st.lists(
                st.text(CLASS_ALPHABET, min_size=1, max_size=8), min_size=1, max_size=4, unique_by=str.lower
            )
        )
    n = draw(st.integers(1, 6))
    items = []
    base = draw(st.integers(0, 2**20))
    for i in range(n):
        w, h = draw(st.integers(8, 40)), draw(st.integers(8, 40))
        anns = []
        if dtype == "classification":
            anns.append(Annotation("label", draw(st.sampled_from(names))))
        elif dtype == "anomaly":
            label = draw(st.sampled_from(names))
            mask = draw(a_mask(w, h)) if label == "anomalous" and draw(st.booleans()) else None
            anns.append(Annotation("anomaly", label, mask=mask))
        else:
            for _ in range(draw(st.integers(0, 4))):
                kind = draw(st.sampled_from(kinds))
                label = draw(st.sampled_from(names))
                if kind == "box":
                    anns.append(Annotation("box", label, bbox=draw(a_box(w, h))))
                elif kind == "polygon":
                    anns.append(Annotation("polygon", label, polygons=(draw(a_polygon(w, h)),)))
                elif kind == "multipolygon":
                    anns.append(
                        Annotation("polygon", label, polygons=(draw(a_polygon(w, h)), draw(a_polygon(w, h))))
                    )
                else:
                    anns.append(Annotation("mask", label, mask=draw(a_mask(w, h))))
        items.append(
            ImportItem(
                f"im{i}.png",
                data=png_bytes(w, h, base + i),
                annotations=anns,
                split=draw(st.sampled_from(["train", "val", "test"])),
            )
        )
    return ImportBatch(items, classes=[ClassDef(c, "#123456") for c in names], type=dtype)


def content(ds) -> dict:
    """What a dataset says, keyed by image bytes: split and the annotations' contents."""
    return {
        e.blob: (e.split, sorted(json.dumps(a.content(), sort_keys=True) for a in e.truth()))
        for e in ds.examples()
    }


@pytest.mark.parametrize("name", list(FORMATS))
def test_random_datasets_round_trip_through_every_format(name):
    fmt, dtype, kinds = FORMATS[name]

    @SETTINGS
    @given(a_dataset(dtype, kinds))
    def round_trip(batch):
        with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws") as ws:
            ds = ws.create_dataset("orig", dtype)
            ds.import_batch(batch)
            export_dataset(ds, Path(tmp) / "out", fmt, status="new,annotated,reviewed")  # unlabelled too
            entry = Path(tmp) / "out" / ("annotations.json" if fmt == "coco" else "")
            back, _ = import_source(ws, "back", entry, fmt)
            assert content(back) == content(ds)
            assert [c.name for c in back.classes] == [c.name for c in ds.classes] or dtype == "classification"
            assert sorted(c.name for c in back.classes) == sorted(c.name for c in ds.classes)

    round_trip()


# ---------------------------------------------------------------------------------------------- splits
@SETTINGS
@given(st.lists(st.integers(1, 35), min_size=1, max_size=6), st.integers(0, 1000))
def test_splits_never_move_and_fill_to_their_targets(chunks, seed):
    from workbench.data import SplitSettings

    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws") as ws:
        ds = ws.create_dataset("d", "detection", splits=SplitSettings(seed=seed))
        before: dict[str, str] = {}
        n = 0
        for k, size in enumerate(chunks):
            items = [
                ImportItem(f"c{k}_{i}.png", data=png_bytes(4, 4, seed * 100_000 + n + i)) for i in range(size)
            ]
            counts = {s: ds.count(split=s) for s in ("val", "test")}
            ds.import_batch(ImportBatch(items))
            n += size
            now = {e.file_name: e.split for e in ds.examples()}
            assert {f: now[f] for f in before} == before  # nothing already there moved
            want_val, want_test = split_targets(n, ds.split_settings)
            need_val = max(0, want_val - counts["val"])
            need_test = max(0, want_test - counts["test"])
            new = [now[it.file_name] for it in items]
            assert new.count("val") == min(need_val, size)
            assert new.count("test") == min(need_test, size - new.count("val"))
            assert ds.count(split="val") <= max(want_val, counts["val"])
            assert ds.count(split="test") <= max(want_test, counts["test"])
            before = now


# ---------------------------------------------------------------------------------------------- augmentation
@st.composite
def a_training_example(draw, dtype: str):
    w, h = draw(st.integers(24, 72)), draw(st.integers(24, 72))
    anns = []
    for _ in range(draw(st.integers(1, 4))):
        label = draw(st.sampled_from(["a", "b"]))
        kind = "box" if dtype == "detection" else draw(st.sampled_from(["polygon", "mask", "box"]))
        if kind == "box":
            anns.append(Annotation("box", label, bbox=draw(a_box(w, h))))
        elif kind == "polygon":
            anns.append(Annotation("polygon", label, polygons=(draw(a_polygon(w, h)),)))
        else:
            anns.append(Annotation("mask", label, mask=draw(a_mask(w, h))))
    return w, h, anns


@pytest.mark.parametrize("dtype", ["detection", "segmentation"])
def test_augmented_training_targets_stay_in_the_image_and_boxes_fit_their_masks(dtype):
    pytest.importorskip("albumentations")
    import torch

    from workbench.augment import Augmenter, preset, preset_names
    from workbench.data.records import Example
    from workbench.train.data import VisionDataset

    @settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=SUPPRESS)
    @given(
        a_training_example(dtype),
        st.sampled_from(preset_names(dtype)),
        st.integers(0, 2**31 - 1),
        st.sampled_from([32, 48]),
    )
    def check(example, preset_name, seed, size):
        w, h, anns = example
        data = png_bytes(w, h, seed % 1000)
        ex = Example(1, "d", "blob", "x.png", w, h, "train", "annotated", annotations=tuple(anns))
        config = preset(preset_name)
        config["image_size"] = [size, size]
        vd = VisionDataset(
            [ex],
            dataset_type=dtype,
            class_names=["a", "b"],
            load_bytes=lambda _: data,
            image_size=size,
            augmenter=Augmenter(config, dtype),
            seed=seed,
        )
        for epoch in range(3):
            img, target = vd[(0, epoch)]
            assert img.shape == (3, size, size)
            boxes, labels = target["boxes"], target["labels"]
            assert boxes.shape == (len(labels), 4) and set(labels.tolist()) <= {1, 2}
            if len(boxes):
                assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
                assert (boxes[:, 2] <= size).all() and (boxes[:, 3] <= size).all()
                assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            if dtype == "segmentation":
                masks = target["masks"]
                assert masks.shape == (len(labels), size, size)
                for box, m in zip(boxes, masks, strict=True):
                    ys, xs = torch.nonzero(m, as_tuple=True)
                    assert len(xs), "an instance kept with an empty mask"
                    tight = torch.tensor(
                        [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32
                    )
                    assert torch.equal(box, tight)

    check()


# ---------------------------------------------------------------------------------------------- undo / redo
ACTION = st.tuples(
    st.sampled_from(["box", "polygon", "move", "relabel", "delete", "label"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


def _canvas(dtype: str):
    from workbench.widgets.canvas_state import CanvasState
    from workbench.widgets.sink import MemoryImage, MemorySink

    images = [MemoryImage(png_bytes(64, 48, i), 64, 48) for i in range(2)]
    sink = MemorySink(dtype, ["cat", "dog", "bird"], images)
    return CanvasState(sink, user="prop"), sink


def _apply(state, action) -> None:
    """One user edit, chosen by ``action`` among those that make sense on the open example."""
    kind, a, b = action
    truth = state.truth()
    w, h = state.image_size
    box = (float(a % (w - 8)), float(b % (h - 8)), 4.0 + a % 4, 4.0 + b % 4)
    names = state.class_names
    if state.type == "classification":
        state.set_class(names[a % len(names)])
    elif kind == "polygon" and state.type == "segmentation":
        x, y = box[0], box[1]
        state.select(None)
        state.commit_new_polygon([(x, y), (x + 6, y), (x + 3, y + 5)])
    elif kind in ("box", "polygon") or not truth:
        state.select(None)
        state.set_class(names[a % len(names)])
        state.commit_new_box(box)
    elif kind == "move":
        target = truth[a % len(truth)]
        if target.polygons is None:
            state.commit_edit(target, replace(target, bbox=box))
        else:
            dx = 1.0 if max(target.polygons[0][0::2]) + 1 <= w else -1.0
            moved = tuple(v + dx if i % 2 == 0 else v for i, v in enumerate(target.polygons[0]))
            state.commit_edit(target, replace(target, polygons=(moved,), bbox=None))
    elif kind in ("relabel", "label"):
        state.select(truth[a % len(truth)].id)
        state.set_class(names[b % len(names)])
    else:
        state.select(truth[a % len(truth)].id)
        state.delete_selected()


def _snapshot(state, sink) -> list[str]:
    """The open example's annotations, as the canvas shows them AND as the store holds them (must agree)."""
    shown = sorted(json.dumps(a.content(), sort_keys=True) for a in state.annotations)
    stored = sorted(
        json.dumps(a.content(), sort_keys=True) for a in sink.example(state.example.id).annotations
    )
    assert shown == stored
    return shown


@pytest.mark.parametrize("dtype", ["detection", "segmentation", "classification"])
def test_undo_redo_walks_back_and_forth_through_the_same_states(dtype):
    @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=SUPPRESS)
    @given(
        st.lists(ACTION, min_size=1, max_size=20),
        st.integers(0, 40),
        st.integers(0, 40),
        st.lists(ACTION, max_size=3),
    )
    def check(actions, undos, redos, more):
        state, sink = _canvas(dtype)
        states = [_snapshot(state, sink)]
        for act in actions:
            _apply(state, act)
            if _snapshot(state, sink) != states[-1]:
                states.append(_snapshot(state, sink))
        depth = len(states) - 1
        u = min(undos, depth + 3)  # undoing past the start does nothing
        for _ in range(u):
            state.undo()
        pos = max(0, depth - u)
        assert _snapshot(state, sink) == states[pos]
        for _ in range(min(redos, u + 3)):
            state.redo()
        pos = min(depth, pos + min(redos, u + 3))
        assert _snapshot(state, sink) == states[pos]
        if more:  # a new edit drops the redo tail; undoing it comes back here
            here = _snapshot(state, sink)
            _apply(state, more[0])
            changed = _snapshot(state, sink) != here
            state.redo()  # nothing to redo any more
            state.undo()
            assert _snapshot(state, sink) == (here if changed else states[max(0, pos - 1)])

    check()
