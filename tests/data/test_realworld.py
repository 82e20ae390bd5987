"""Real annotation files written by other tools (tests/data/realworld/, see each PROVENANCE): one test per file.

Each file is read by Workbench and by a small independent reader written here (stdlib XML/JSON, PIL for
image sizes, its own coordinate arithmetic); class counts, geometry (to 1e-6 px) and attributes must agree.
Files that are wrong in a way Workbench refuses are checked for a typed error naming file, record and field.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from workbench.data import Workspace
from workbench.data.formats import get_reader
from workbench.data.transfer import import_source
from workbench.errors import ImportFormatError

CORPUS = Path(__file__).parent / "realworld"


def geometry(batch) -> list[tuple]:
    """Sorted (image, kind, label, rounded coordinates) of every annotation in a batch."""
    out = []
    for it in batch.items:
        for a in it.annotations:
            coords = a.bbox if a.kind == "box" else (a.polygons[0] if a.kind == "polygon" else ())
            out.append((it.file_name, it.split or "", a.kind, a.label, tuple(round(v, 6) for v in coords)))
    return sorted(out)


def label_counts(batch) -> Counter:
    return Counter(a.label for it in batch.items for a in it.annotations)


def test_every_corpus_folder_has_provenance() -> None:
    subs = [d for d in CORPUS.iterdir() if d.is_dir()]
    assert len(subs) >= 5
    for d in subs:  # every source names its repository, commit and licence
        text = (d / "PROVENANCE").read_text()
        assert re.search(r"https://github\.com/[\w.-]+/[\w.-]+", text), d.name
        assert re.search(r"Commit:\s+[0-9a-f]{40}\b", text) and re.search(r"Licen[cs]e:", text), d.name
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024


# ------------------------------------------------------------------------------------------------ CVAT
def cvat_oracle(xml_path: Path) -> tuple[list[tuple], list[dict]]:
    """(geometry as in geometry(), attributes of each box/polygon in document order) by plain ElementTree."""
    root = ET.parse(xml_path).getroot()
    split_of = {"Train": "train", "Validation": "val", "Test": "test"}
    types = {a.findtext("name"): a.findtext("input_type")
             for a in root.iter("attribute") if a.findtext("name")}
    geo, attrs = [], []
    for img in root.iter("image"):
        for el in img:
            if el.tag == "box":
                x0, y0, x1, y1 = (float(el.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
                coords = (x0, y0, x1 - x0, y1 - y0)
                kind = "box"
            elif el.tag == "polygon":
                coords = tuple(float(v) for pair in el.get("points").split(";") for v in pair.split(","))
                kind = "polygon"
            else:
                continue
            geo.append((img.get("name"), split_of.get(img.get("subset"), ""), kind, el.get("label"),
                        tuple(round(v, 6) for v in coords)))
            a = {}
            if el.get("occluded") == "1":
                a["occluded"] = True
            if el.get("z_order") not in (None, "0"):
                a["z_order"] = int(el.get("z_order"))
            for at in el.findall("attribute"):
                t = types[at.get("name")]
                a[at.get("name")] = (at.text == "true" if t == "checkbox" else
                                     float(at.text) if t == "number" else at.text)
            attrs.append(a)
    return sorted(geo), attrs


def test_datumaro_cvat_project_export(tmp_path: Path) -> None:
    src = CORPUS / "datumaro-cvat" / "export_project"
    with pytest.raises(ImportFormatError) as e:  # polylines and points are not held: refused by default
        get_reader("cvat").read(src)
    assert "annotations.xml" in str(e.value) and "record image 0 (img0.jpg)" in str(e.value)
    assert "field 'polyline'" in str(e.value) and "--skip-unsupported" in str(e.value)

    batch = get_reader("cvat").read(src, skip_unsupported=True)
    geo, attrs = cvat_oracle(src / "annotations.xml")
    assert geometry(batch) == geo
    assert [a.attributes for it in batch.items for a in it.annotations] == attrs
    assert attrs[0] == {"occluded": True, "z_order": 1, "a1": True, "a2": "v3", "a3": "0003", "a4": 2.4}
    assert [(c.name, c.color) for c in batch.classes] == [("label1", batch.classes[0].color), ("label2",
                                                                                             batch.classes[1].color)]
    assert batch.classes[0].origin["attributes"]["a2"] == {"input_type": "radio", "default_value": "v1",
                                                           "values": ["v1", "v2", "v3"]}
    assert Counter(it.split for it in batch.items) == {"train": 2, "val": 2, "test": 2}
    assert batch.report.skipped == {"polyline (not supported; --skip-unsupported)": 3,
                                    "points (not supported; --skip-unsupported)": 3}
    # Through the store: all six images (same name in three subsets), attributes kept.
    with Workspace(tmp_path / "ws") as ws:
        ds, ids = import_source(ws, "cv", src, "cvat", skip_unsupported=True)
        assert len(ids) == 6 and {e.split for e in ds.examples()} == {"train", "val", "test"}
        stored = sorted((e.origin["subset"], a.attributes.get("a2", "")) for e in ds.examples() for a in e.annotations)
        assert stored.count(("Test", "v3")) == 1 and len(stored) == 6


def test_datumaro_cvat_task_export_with_empty_labels_is_refused(tmp_path: Path) -> None:
    src = CORPUS / "datumaro-cvat" / "export_task" / "train.xml"
    with pytest.raises(ImportFormatError) as e:
        get_reader("cvat").read(src, skip_unsupported=True)
    msg = str(e.value)
    assert "train.xml" in msg and "record image 1 (img1.jpg) polygon 0" in msg and "field 'label'" in msg
    assert "label '' is not one of the labels in meta (label1, label2)" in msg
    with Workspace(tmp_path / "ws") as ws, pytest.raises(ImportFormatError):
        import_source(ws, "cv", src, "cvat", skip_unsupported=True)
    with Workspace(tmp_path / "ws") as ws:
        assert ws.datasets() == []


# ------------------------------------------------------------------------------------------------ YOLO
def yolo_oracle(pairs: list[tuple[Path, Path, str | None]], names: list[str] | None) -> list[tuple]:
    """Geometry from (image, label file, split) triples, by hand."""
    out = []
    for img, txt, split in pairs:
        W, H = Image.open(img).size
        for line in txt.read_text().splitlines():
            if not line.strip():
                continue
            c, cx, cy, w, h = line.split()
            cx, cy, w, h = float(cx) * W, float(cy) * H, float(w) * W, float(h) * H
            x0, y0, x1, y1 = max(cx - w / 2, 0), max(cy - h / 2, 0), min(cx + w / 2, W), min(cy + h / 2, H)
            label = names[int(c)] if names else c
            out.append((img.name, split or "", "box", label, tuple(round(v, 6) for v in (x0, y0, x1 - x0, y1 - y0))))
    return sorted(out)


def test_datumaro_yolo_strict_darknet_layout() -> None:
    src = CORPUS / "datumaro-yolo" / "strict"
    names = (src / "obj.names").read_text().split()
    batch = get_reader("yolo").read(src)
    assert [c.name for c in batch.classes] == names == [f"label_{i}" for i in range(10)]
    pairs = [(src / "obj_train_data" / "1.jpg", src / "obj_train_data" / "1.txt", "train")]
    assert geometry(batch) == yolo_oracle(pairs, names)
    assert label_counts(batch) == {"label_2": 1, "label_4": 1}
    assert [(it.status, it.origin) for it in batch.items] == [("annotated", {"file_name": "obj_train_data/1.jpg"})]
    assert get_reader("yolo").read(src / "obj.data").items[0].path == batch.items[0].path


def test_datumaro_yolo_labels_layout_with_obj_names() -> None:
    src = CORPUS / "datumaro-yolo" / "labels"
    names = (src / "obj.names").read_text().split()
    batch = get_reader("yolo").read(src)
    pairs = [(src / "images" / s / "1.jpg", src / "labels" / s / "1.txt", s) for s in ("train", "val")]
    assert geometry(batch) == yolo_oracle(pairs, names)
    assert [c.name for c in batch.classes] == names


def test_datumaro_relaxed_yolo_labels_beside_images() -> None:
    src = CORPUS / "datumaro-yolo" / "relaxed_yolo"
    batch = get_reader("yolo").read(src)
    pairs = [(src / f"{i}.jpg", src / f"{i}.txt", None) for i in (1, 2)]
    assert geometry(batch) == yolo_oracle(pairs, None)
    assert [c.name for c in batch.classes] == ["0", "1", "2", "3", "4"]  # no names file: ids as names


def test_datumaro_roboflow_yaml_naming_a_missing_folder() -> None:
    src = CORPUS / "datumaro-yolo" / "roboflow_yolo"
    with pytest.raises(ImportFormatError) as e:
        get_reader("yolo").read(src)
    msg = str(e.value)
    assert "data.yaml" in msg and "record val" in msg and "'../valid/images' not found" in msg
    assert "leaves the import folder" not in msg


def test_label_studio_converter_yolo_folder_with_classes_txt() -> None:
    src = CORPUS / "label-studio-yolo"
    names = (src / "classes.txt").read_text().split()
    batch = get_reader("yolo").read(src)
    pairs = [(src / "images" / f"img_{i}.jpg", src / "labels" / f"img_{i}.txt", None) for i in (1, 5)]
    assert geometry(batch) == yolo_oracle(pairs, names)
    assert label_counts(batch) == Counter(names[int(line.split()[0])] for _, t, _ in pairs
                                          for line in t.read_text().splitlines() if line.strip())


# ------------------------------------------------------------------------------------------------ labelme
def labelme_oracle(folder: Path) -> list[tuple]:
    out = []
    for j in sorted(folder.glob("*.json")):
        doc = json.loads(j.read_text())
        for s in doc["shapes"]:
            pts = s["points"]
            if s["shape_type"] == "rectangle":
                (ax, ay), (bx, by) = pts
                coords, kind = (min(ax, bx), min(ay, by), abs(bx - ax), abs(by - ay)), "box"
            elif s["shape_type"] == "polygon":
                coords, kind = tuple(v for p in pts for v in p), "polygon"
            else:
                continue
            out.append((doc["imagePath"], "", kind, s["label"], tuple(round(v, 6) for v in coords)))
    return sorted(out)


def _area(flat: tuple) -> float:
    xs, ys = flat[0::2], flat[1::2]
    return abs(sum(xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs)))) / 2


def test_labelme_instance_segmentation_example() -> None:
    src = CORPUS / "labelme" / "instance_segmentation"
    batch = get_reader("labelme").read(src)
    assert batch.type == "segmentation"
    ours, theirs = geometry(batch), labelme_oracle(src)
    assert Counter(g[3] for g in ours) == Counter(g[3] for g in theirs)
    sizes = {it.file_name: Image.open(src / it.file_name).size for it in batch.items}
    outside = [g for g in theirs if min(g[4]) < 0 or max(g[4][0::2]) > sizes[g[0]][0]
               or max(g[4][1::2]) > sizes[g[0]][1]]
    assert [g for g in theirs if g not in outside] == [g for g in ours if g in theirs]
    # Vertices a hair past the border (labelme lets a click land there) are clipped, counted, area kept.
    assert 1 <= len(outside) == batch.report.total_clipped
    for g in outside:
        mine = next(o for o in ours if o[:4] == g[:4] and o not in theirs)
        W, H = sizes[g[0]]
        assert min(mine[4]) >= 0 and max(mine[4][0::2]) <= W and max(mine[4][1::2]) <= H
        assert abs(_area(mine[4]) - _area(g[4])) <= 0.01 * _area(g[4])
    assert all(it.status == "annotated" for it in batch.items)
    # labelme's __ignore__ regions are crowd regions, nothing else is
    crowd = Counter(a.label for it in batch.items for a in it.annotations if a.iscrowd)
    assert crowd == {"__ignore__": Counter(g[3] for g in theirs)["__ignore__"]} and crowd["__ignore__"] >= 1


def test_labelme_bbox_detection_example(tmp_path: Path) -> None:
    for j in (CORPUS / "labelme" / "bbox_detection").glob("*.json"):
        shutil.copy(j, tmp_path / j.name)
        shutil.copy(CORPUS / "labelme" / "instance_segmentation" / f"{j.stem}.jpg", tmp_path / f"{j.stem}.jpg")
    batch = get_reader("labelme").read(tmp_path)
    assert batch.type == "detection"
    assert geometry(batch) == labelme_oracle(tmp_path)
    assert label_counts(batch) == Counter(g[3] for g in labelme_oracle(tmp_path))


def test_labelme_primitives_example() -> None:
    src = CORPUS / "labelme" / "primitives"
    with pytest.raises(ImportFormatError, match=r"primitives.json: record shapes\[1\]: field 'shape_type'"
                                                r".*'circle'.*--skip-unsupported"):
        get_reader("labelme").read(src)
    batch = get_reader("labelme").read(src, skip_unsupported=True)
    assert [g for g in geometry(batch) if g[2] != "mask"] == labelme_oracle(src)
    assert batch.report.skipped == {f"{t} shape (not supported; --skip-unsupported)": 1
                                    for t in ("circle", "line", "point", "linestrip")}
    # The mask shape: its PNG patch placed at its first point, as labelme's shapes_to_label places it.
    doc = json.loads((src / "primitives.json").read_text())
    shape = next(s for s in doc["shapes"] if s["shape_type"] == "mask")
    import base64
    import io

    import numpy as np

    patch = np.asarray(Image.open(io.BytesIO(base64.b64decode(shape["mask"])))).astype(bool)
    (x1, y1), _ = [[int(round(v)) for v in p] for p in shape["points"]]
    mask = next(a for a in batch.items[0].annotations if a.kind == "mask")
    assert mask.label == shape["label"] and mask.area == patch.sum()
    assert mask.bbox[:2] == (x1 + np.nonzero(patch.any(0))[0][0], y1 + np.nonzero(patch.any(1))[0][0])


def test_labelme_classification_example_keeps_flags() -> None:
    batch = get_reader("labelme").read(CORPUS / "labelme" / "classification")
    flags = {it.file_name: it.origin["flags"] for it in batch.items}
    assert flags == {f"{n}.jpg": json.loads((CORPUS / "labelme" / "classification" / f"{n}.json").read_text())["flags"]
                     for n in ("0001", "0002")}
    assert all(it.annotations == [] for it in batch.items)


# ------------------------------------------------------------------------------------------------ Label Studio
def _blank_images(export: Path, folder: Path) -> None:
    for task in json.loads(export.read_text()):
        r = task["annotations"][0]["result"][0]
        Image.new("RGB", (r["original_width"], r["original_height"])).save(
            folder / task["data"]["image"].strip("/"), format="PNG")


def ls_oracle(export: Path, folder: Path) -> list[tuple]:
    out = []
    for task in json.loads(export.read_text()):
        name = task["data"]["image"].strip("/")
        W, H = Image.open(folder / name).size
        ann = task["annotations"][-1]
        for r in ann["result"]:
            v = r["value"]
            if r["type"] == "rectanglelabels":
                x, y, w, h = v["x"] * W / 100, v["y"] * H / 100, v["width"] * W / 100, v["height"] * H / 100
                t = math.radians(v.get("rotation", 0))
                if t == 0:
                    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
                    out.append((name, "", "box", v["rectanglelabels"][0],
                                tuple(round(c, 6) for c in (x0, y0, x1 - x0, y1 - y0))))
                else:
                    pts = [(x + dx * math.cos(t) - dy * math.sin(t), y + dx * math.sin(t) + dy * math.cos(t))
                           for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
                    out.append((name, "", "polygon", v["rectanglelabels"][0],
                                tuple(round(c, 6) for p in pts for c in p)))
            else:
                out.append((name, "", "polygon", v["polygonlabels"][0],
                            tuple(round(c * (W if i % 2 == 0 else H) / 100, 6)
                                  for i, c in enumerate(x for p in v["points"] for x in p))))
    return sorted(out)


@pytest.mark.parametrize("name", ["data.json", "data_polygons.json", "data_obb.json"])
def test_label_studio_converter_exports(tmp_path: Path, name: str) -> None:
    export = tmp_path / name
    shutil.copy(CORPUS / "label-studio" / name, export)
    _blank_images(export, tmp_path)
    batch = get_reader("label-studio").read(export)
    ours = geometry(batch)
    theirs = ls_oracle(export, tmp_path)
    if name == "data_obb.json":  # rotated boxes stick out of the image: compare the in-image ones exactly
        assert len(ours) == len(theirs)
        inside = [g for g in theirs if g[2] == "box" or min(g[4]) >= 0]
        assert all(g in ours for g in inside) and len(inside) >= 3
    else:
        assert ours == theirs
    tasks = json.loads(export.read_text())
    assert [it.origin["id"] for it in batch.items] == [t["id"] for t in tasks]
    if name == "data.json":  # task 1 has two annotations: the last one is imported, the other counted
        assert batch.report.skipped == {
            "second annotation of a task (the ground truth, else the last, is imported)": 1}
        assert batch.items[0].origin["annotation_id"] == tasks[0]["annotations"][-1]["id"]


# ------------------------------------------------------------------------------------------------ CLI, across formats
@pytest.mark.parametrize("out_fmt", ["cvat", "labelme", "label-studio"])
def test_cli_import_export_reimport(tmp_path: Path, capsys, out_fmt: str) -> None:
    from workbench.cli import main

    home = ["--home", str(tmp_path / "ws")]
    src = CORPUS / "datumaro-cvat" / "export_project"
    assert main([*home, "import", "a", str(src), "--format", "cvat"]) == 2
    assert "--skip-unsupported" in capsys.readouterr().err
    assert main([*home, "import", "a", str(src), "--format", "cvat", "--skip-unsupported"]) == 0
    assert main([*home, "export", "a", str(tmp_path / "out"), "--format", out_fmt]) == 0
    assert main([*home, "import", "b", str(tmp_path / "out"), "--format", out_fmt]) == 0
    capsys.readouterr()
    with Workspace(tmp_path / "ws") as ws:
        def content(name: str) -> list:
            return sorted((e.split, e.width, [a.content() for a in e.annotations] if out_fmt == "cvat" else
                           [(a.kind, a.label, a.bbox) for a in e.annotations]) for e in ws.dataset(name).examples())
        assert content("a") == content("b") and len(content("a")) == 6
