"""The COCO reader checks the images in a background thread while it reads the annotations (against the
sizes the records declare): when a file holds several problems, the error raised is still the one the
sequential order gave (a bad image first, then a declared size the image does not have, then annotations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import png_bytes
from workbench.data.formats import get_reader
from workbench.errors import ImageError, ImportFormatError


def _coco(root: Path, *, images: dict[str, bytes], declared: tuple[int, int] = (32, 24),
          bad_box: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (root / name).write_bytes(data)
    doc = {
        "images": [{"id": i + 1, "file_name": name, "width": declared[0], "height": declared[1]}
                   for i, name in enumerate(images)],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": k + 1, "image_id": k % len(images) + 1, "category_id": 1, "bbox": [1, 1, 5, 5]}
                        for k in range(200)],
    }
    if bad_box:  # the last annotation lies outside its image
        doc["annotations"][-1]["bbox"] = [30, 1, 20, 5]
    (root / "annotations.json").write_text(json.dumps(doc))
    return root / "annotations.json"


def _images(n: int, size: tuple[int, int] = (32, 24)) -> dict[str, bytes]:
    return {f"im{i:03d}.png": png_bytes(*size, seed=i) for i in range(n)}


def test_a_bad_image_is_reported_before_a_bad_annotation(tmp_path):
    images = _images(40)
    images["im007.png"] = images["im007.png"][:60]  # truncated
    src = _coco(tmp_path, images=images, bad_box=True)
    with pytest.raises(ImageError) as e:
        get_reader("coco").read(src)
    assert e.value.file == str(tmp_path / "im007.png")
    assert e.value.record == "image 8"


def test_a_declared_size_the_image_does_not_have_is_reported_before_a_bad_annotation(tmp_path):
    src = _coco(tmp_path, images=_images(40, (60, 24)), declared=(32, 24), bad_box=True)  # inside 60, not 32
    with pytest.raises(ImportFormatError) as e:
        get_reader("coco").read(src)
    assert "declares 32x24 but the image file is 60x24" in str(e.value)
    assert e.value.record == "image 1" and e.value.field == "width" and e.value.file == str(src)


def test_a_bad_annotation_alone_is_reported_once_the_images_are_checked(tmp_path):
    src = _coco(tmp_path, images=_images(40), bad_box=True)
    with pytest.raises(ImportFormatError) as e:
        get_reader("coco").read(src)
    assert e.value.record == "annotation 200" and e.value.field == "bbox" and "outside" in str(e.value)


def test_the_batch_read_with_the_background_check_has_every_image_checked(tmp_path):
    src = _coco(tmp_path, images=_images(40))
    batch = get_reader("coco").read(src)
    assert len(batch.items) == 40 and all(it.checked is not None for it in batch.items)
    assert all((it.checked.width, it.checked.height) == (32, 24) for it in batch.items)
    assert sum(len(it.annotations) for it in batch.items) == 200
