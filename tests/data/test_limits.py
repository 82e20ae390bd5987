"""Size limits: classes per dataset and shapes per image are refused early, with a located error, and
nothing is written."""

from __future__ import annotations

import time

import pytest

from tests.helpers import png_bytes
from workbench.data import Annotation, ImportBatch, ImportItem, limits
from workbench.data.records import ClassDef
from workbench.data.transfer import import_source
from workbench.errors import LimitError, ValidationError
from workbench.widgets.sink import MemoryImage, MemorySink


def _boxes(n):
    return [Annotation("box", "cat", bbox=(i % 50, i % 40, 1.0, 1.0)) for i in range(n)]


def test_an_image_with_too_many_boxes_is_refused_at_once_and_nothing_is_written(ws):
    ds = ws.create_dataset("d", "detection", classes="cat")
    batch = ImportBatch(items=[ImportItem("ok.png", data=png_bytes(64, 64), annotations=_boxes(3)),
                               ImportItem("big.png", data=png_bytes(64, 64, seed=1), record="img-7",
                                          annotations=_boxes(200_000))])
    t = time.perf_counter()
    with pytest.raises(LimitError) as err:
        ds.import_batch(batch)
    assert time.perf_counter() - t < 2.0  # refused before any image is read or row written
    e = err.value
    assert isinstance(e, ValidationError) and e.record == "img-7" and e.field == "annotations"
    assert "200,000" in str(e) and f"{limits.MAX_SHAPES_PER_EXAMPLE:,}" in str(e)
    assert ds.count() == 0 and ws.blobs.all() == set()


def test_a_source_with_too_many_classes_is_refused(ws, tmp_path):
    ds = ws.create_dataset("d", "detection", classes="cat")
    many = [ClassDef(f"c{i}", "#ff0000") for i in range(50_000)]
    t = time.perf_counter()
    with pytest.raises(LimitError, match="50,001 classes"):
        ds.import_batch(ImportBatch(items=[ImportItem("a.png", data=png_bytes())], classes=many))
    with pytest.raises(LimitError, match="classes"):
        ws.create_dataset("e", "detection", classes=[c.name for c in many])
    assert time.perf_counter() - t < 5.0
    assert [c.name for c in ds.classes] == ["cat"] and not ws.has_dataset("e")
    import json

    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}], "annotations": [],
            "categories": [{"id": i, "name": f"c{i}"} for i in range(1, 20_001)]}
    (tmp_path / "a.png").write_bytes(png_bytes())
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    with pytest.raises(LimitError, match="20,000 classes"):
        import_source(ws, "new", tmp_path / "coco.json", "coco", images_dir=tmp_path)
    assert not ws.has_dataset("new")


def test_edits_past_the_limits_are_refused(ws, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SHAPES_PER_EXAMPLE", 3)
    monkeypatch.setattr(limits, "MAX_CLASSES_PER_DATASET", 2)
    ds = ws.create_dataset("d", "detection", classes="cat")
    (ex,) = ds.import_batch(ImportBatch(items=[ImportItem("a.png", data=png_bytes(64, 64), annotations=_boxes(3))]))
    with pytest.raises(LimitError, match="at most 3"):
        ds.add_annotation(ex, Annotation("box", "cat", bbox=(1, 1, 2, 2)))
    with pytest.raises(LimitError):
        ds.replace_annotations(ex, _boxes(2), proposals=True)
    ds.add_class("dog")
    with pytest.raises(LimitError, match="3 classes"):
        ds.add_class("bird")
    assert len(ds.example(ex).annotations) == 3 and len(ds.classes) == 2
    sink = MemorySink("detection", ["cat", "dog"], [MemoryImage(png_bytes(64, 64), 64, 64, annotations=_boxes(3))])
    with pytest.raises(LimitError):
        sink.add_annotation(1, Annotation("box", "cat", bbox=(1, 1, 2, 2)))
    with pytest.raises(LimitError):
        sink.add_class("bird")
