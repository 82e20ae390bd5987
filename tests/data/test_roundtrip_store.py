"""Store-level round trips: import -> export -> import gives the same image bytes and annotations."""

from __future__ import annotations

import json

import pytest
from pycocotools.coco import COCO

from workbench.data.transfer import add_sample, export_dataset, import_source

CASES = [
    ("coco", "shapes-detection", "annotations.json"),
    ("coco", "shapes-segmentation", "annotations.json"),
    ("yolo", "shapes-detection", "data.yaml"),
    ("voc", "shapes-detection", ""),
    ("imagefolder", "digits", ""),
    ("anomaly-folder", "shapes-anomaly", ""),
]


def content(ds):
    out = {}
    for e in ds.examples():
        key = (e.blob, e.file_name)
        out.setdefault(key, []).append(
            (e.split, sorted(json.dumps(a.content(), sort_keys=True) for a in e.truth())))
    return {k: sorted(v) for k, v in out.items()}


LOSSY = {("anomaly-folder", "shapes-anomaly")}  # regions are stored as masks: polygons come back as masks


@pytest.mark.parametrize("fmt,sample,entry", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_import_export_import_identical(ws, tmp_path, fmt, sample, entry):
    ds, _ = add_sample(ws, "orig", sample, count=40, seed=3)
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    export_dataset(ds, out1, fmt)
    ds2, _ = import_source(ws, "imported", out1 / entry if entry else out1, fmt)
    assert [c.name for c in ds2.classes] == [c.name for c in ds.classes]
    export_dataset(ds2, out2, fmt)
    ds3, _ = import_source(ws, "again", out2 / entry if entry else out2, fmt)
    assert content(ds3) == content(ds2)  # import -> export -> import: identical
    if (fmt, sample) not in LOSSY:
        assert content(ds2) == content(ds)
    else:
        assert content(ds2).keys() == content(ds).keys()
    files1 = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    files2 = sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    assert files1 == files2
    for rel in files1:  # images byte-identical (annotation files carry the new example ids)
        if rel.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
            assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    if fmt == "coco":
        COCO(str(out1 / "annotations.json"))


def test_export_limited_to_split_and_directory(ws, tmp_path):
    ds, ids = add_sample(ws, "d", "shapes-detection", count=50, seed=1)
    export_dataset(ds, tmp_path / "val", "coco", split="val")
    gt = json.loads((tmp_path / "val" / "annotations.json").read_text())
    assert len(gt["images"]) == ds.count(split="val") == 5
    ds.mirror("few", ids[:7])
    export_dataset(ds, tmp_path / "few", "coco", directory="few")
    gt = json.loads((tmp_path / "few" / "annotations.json").read_text())
    assert len(gt["images"]) == 7


def test_failed_import_of_new_dataset_leaves_nothing(ws, tmp_path):
    ds, _ = add_sample(ws, "d", "shapes-detection", count=10, seed=1)
    export_dataset(ds, tmp_path / "x", "coco")
    p = tmp_path / "x" / "annotations.json"
    gt = json.loads(p.read_text())
    gt["annotations"][3]["bbox"][0] = float("nan") if False else -50.0
    p.write_text(json.dumps(gt))
    before = (ws.datasets(), ws.blobs.all())
    with pytest.raises(Exception, match="annotations.json"):
        import_source(ws, "new", p, "coco")
    assert (ws.datasets(), ws.blobs.all()) == before
