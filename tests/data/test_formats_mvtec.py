"""MVTec AD folders read by the anomaly-folder format: splits from the folders, defect type kept, ground-truth
masks as regions, a root of several categories, and bad trees refused with nothing changed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data.test_formats import image_bytes
from workbench.data import Workspace
from workbench.data.formats import get_reader
from workbench.data.formats.rle import rle_to_array
from workbench.data.transfer import import_source
from workbench.errors import ImportFormatError, ValidationError

W, H = 24, 16


def mask_png(x0: int, y0: int, x1: int, y1: int, size: tuple[int, int] = (W, H)) -> bytes:
    arr = np.zeros((size[1], size[0]), dtype=np.uint8)
    arr[y0:y1, x0:x1] = 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def category(root: Path, *, masks: bool = True) -> Path:
    files = {
        "train/good/000.png": image_bytes(W, H, 1),
        "train/good/001.png": image_bytes(W, H, 2),
        "test/good/000.png": image_bytes(W, H, 3),
        "test/crack/000.png": image_bytes(W, H, 4),
        "test/crack/001.png": image_bytes(W, H, 5),
        "test/scratch/000.png": image_bytes(W, H, 6),
    }
    if masks:
        files.update({
            "ground_truth/crack/000_mask.png": mask_png(2, 3, 10, 7),
            "ground_truth/crack/001_mask.png": mask_png(0, 0, 1, 1),
            "ground_truth/scratch/000_mask.png": mask_png(5, 5, 20, 15),
        })
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_reads_a_category(tmp_path: Path) -> None:
    batch = get_reader("anomaly-folder").read(category(tmp_path / "bottle"))
    got = [(it.record, it.split, a.label, a.attributes) for it in batch.items for a in it.annotations]
    assert got == [
        ("train/good/000.png", "train", "good", {}),
        ("train/good/001.png", "train", "good", {}),
        ("test/crack/000.png", "test", "anomalous", {"defect": "crack"}),
        ("test/crack/001.png", "test", "anomalous", {"defect": "crack"}),
        ("test/good/000.png", "test", "good", {}),
        ("test/scratch/000.png", "test", "anomalous", {"defect": "scratch"}),
    ]
    regions = {it.record: rle_to_array(it.annotations[0].mask) for it in batch.items if it.annotations[0].mask}
    expected = np.zeros((H, W), dtype=bool)
    expected[3:7, 2:10] = True
    assert (regions["test/crack/000.png"] == expected).all()
    assert regions["test/crack/001.png"].sum() == 1 and regions["test/scratch/000.png"].sum() == 150
    assert batch.type == "anomaly" and [c.name for c in batch.classes] == ["good", "anomalous"]


def test_root_of_categories_and_missing_masks(tmp_path: Path) -> None:
    root = tmp_path / "mvtec"
    category(root / "bottle")
    category(root / "cable", masks=False)
    batch = get_reader("anomaly-folder").read(root)
    assert len(batch.items) == 12
    cats = {(a.attributes["category"], a.attributes.get("defect")) for it in batch.items for a in it.annotations}
    assert ("cable", "scratch") in cats and ("bottle", None) in cats
    assert batch.report.notes == ["3 anomalous image without a ground_truth mask (imported without a region)"]
    with Workspace(tmp_path / "ws") as ws:
        ds, ids = import_source(ws, "m", root, "anomaly-folder")
        stored = [e.annotations[0].attributes for e in ds.examples() if e.annotations[0].label == "anomalous"]
        assert len(ids) == 12 and {s["defect"] for s in stored} == {"crack", "scratch"}
        assert sorted({e.split for e in ds.examples()}) == ["test", "train"]


def test_plain_anomaly_folder_still_reads(tmp_path: Path) -> None:
    for rel in ("train/good/a.png", "train/anomalous/b.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(image_bytes(W, H, len(rel)))
    batch = get_reader("anomaly-folder").read(tmp_path)
    assert sorted(a.label for it in batch.items for a in it.annotations) == ["anomalous", "good"]
    assert all(not a.attributes for it in batch.items for a in it.annotations)


@pytest.mark.parametrize("change,parts", [
    (lambda r: (r / "ground_truth/crack/000_mask.png").write_bytes(mask_png(0, 0, 2, 2, size=(8, 8))),
     ("000_mask.png", "test/crack/000.png", "field 'mask'", "8x8")),
    (lambda r: (r / "ground_truth/crack/009_mask.png").write_bytes(mask_png(0, 0, 2, 2)),
     ("009_mask.png", "field 'mask'", "no test image")),
    (lambda r: (r / "ground_truth/crack/002_mask.jpg").write_bytes(image_bytes(W, H, 9, "JPEG")),
     ("002_mask.jpg", "PNG")),
    (lambda r: ((r / "train/crack").mkdir(), (r / "train/crack/x.png").write_bytes(image_bytes(W, H, 9))),
     ("train", "field 'folder'", "good images only")),
    (lambda r: ((r / "extra").mkdir(), (r / "extra/x.png").write_bytes(image_bytes(W, H, 9))),
     ("extra", "field 'folder'", "unexpected folder")),
    (lambda r: (r / "test/crack/001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
     ("test/crack/001.png",)),
])
def test_bad_trees_are_refused_and_change_nothing(tmp_path: Path, change, parts: tuple[str, ...]) -> None:
    root = category(tmp_path / "src")
    change(root)
    with Workspace(tmp_path / "ws") as ws:
        ws.create_dataset("m", "anomaly")
        with pytest.raises(ValidationError) as e:  # ImportFormatError, or ImageError for the broken image
            import_source(ws, "m", root, "anomaly-folder")
        assert ws.dataset("m").count() == 0
    for part in parts:
        assert part in str(e.value), (part, str(e.value))


def _signature(batch) -> list:
    import hashlib
    import json

    return sorted((hashlib.sha256(it.read_bytes()).hexdigest(), it.split or "",
                   json.dumps([a.content() for a in it.annotations], sort_keys=True)) for it in batch.items)


@pytest.mark.parametrize("categories", [False, True])
def test_mvtec_writer_round_trip(tmp_path: Path, categories: bool) -> None:
    from tests.data.test_formats import to_examples
    from workbench.data.formats import get_writer

    root = tmp_path / "src"
    if categories:
        category(root / "bottle")
        category(root / "cable")
    else:
        category(root)
    batch = get_reader("mvtec").read(root)
    examples, blobs = to_examples(batch)
    files = get_writer("mvtec").write(tmp_path / "out", examples, batch.classes, "anomaly", blobs.__getitem__)
    back = get_reader("mvtec").read(tmp_path / "out")
    assert _signature(back) == _signature(batch)
    rels = sorted(f.relative_to(tmp_path / "out").as_posix() for f in files)
    prefix = "bottle/" if categories else ""
    # names are made unique across the export (000.png is in every folder): 000_<example id>.png
    assert sum(r.startswith(f"{prefix}ground_truth/crack/") and r.endswith("_mask.png") for r in rels) == 2
    assert sum(r.startswith(f"{prefix}test/scratch/") for r in rels) == 1
    assert sum(r.startswith(f"{prefix}train/good/") for r in rels) == 2


def test_mvtec_writer_refuses_anomalous_training_examples(tmp_path: Path) -> None:
    from tests.data.test_formats import to_examples
    from workbench.data.formats import get_writer

    batch = get_reader("mvtec").read(category(tmp_path / "src"))
    batch.items[2].split = "train"  # test/crack/000.png
    examples, blobs = to_examples(batch)
    with pytest.raises(ValidationError, match="example 3: field 'split': anomalous example in the train split"):
        get_writer("mvtec").write(tmp_path / "out", examples, batch.classes, "anomaly", blobs.__getitem__)
    assert not (tmp_path / "out").exists()


def test_mvtec_format_refuses_a_plain_folder(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    with pytest.raises(ImportFormatError, match="not an MVTec AD folder"):
        get_reader("mvtec").read(tmp_path)
