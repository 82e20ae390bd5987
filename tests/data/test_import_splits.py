"""Splits from the source: --split, Roboflow train/valid/test folders (COCO and YOLO), COCO instances_<split>.json,
copies of one source image (Roboflow ``.rf.`` names, same bytes, near duplicates) never straddling train and
val / test, and ``stats`` saying so as an error when a source's own split makes them straddle.

The Roboflow exports are built here the way Roboflow lays them out (``<stem>_jpg.rf.<32 hex>.jpg`` names,
``_annotations.coco.json`` in each split folder, ``data.yaml`` with ``../train/images`` entries).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import box_batch
from workbench.cli import main
from workbench.data import Workspace
from workbench.data.split_groups import source_stem
from workbench.data.splits import SplitSettings, assign_splits, split_key
from workbench.data.stats import dataset_stats
from workbench.data.transfer import import_source


def jpeg(seed: int, w: int = 64, h: int = 48, quality: int = 90) -> bytes:
    """A noise photo: unrelated seeds give unrelated perceptual hashes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(h // 8, w // 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def rf_name(stem: int, copy: int) -> str:
    return f"IMG_{stem:04d}_jpg.rf.{hashlib.md5(f'{stem}-{copy}'.encode()).hexdigest()}.jpg"


def roboflow_coco(root: Path, counts: dict[str, int], *, copies: int = 1, shared: tuple[int, ...] = ()) -> dict:
    """train/ valid/ test/ each with _annotations.coco.json; ``copies`` augmented copies per train stem;
    ``shared`` stems also appear in valid/ (a source that leaks). Returns {file name: folder}."""
    where = {}
    seed = 0
    stem = 0
    for folder, n in counts.items():
        d = root / folder
        d.mkdir(parents=True)
        images, anns = [], []
        stems = list(range(stem, stem + n))
        stem += n
        if folder == "valid":
            stems = stems[: n - len(shared)] + list(shared)
        for s in stems:
            for c in range(copies if folder == "train" else 1):
                name = rf_name(s, c if folder == "train" else 100 + c)
                seed += 1
                (d / name).write_bytes(jpeg(seed))
                iid = len(images)
                images.append({"id": iid, "file_name": name, "width": 64, "height": 48})
                anns.append({"id": len(anns), "image_id": iid, "category_id": 1, "bbox": [4, 5, 20, 10],
                             "area": 200, "iscrowd": 0, "segmentation": []})
                where[name] = folder
        (d / "_annotations.coco.json").write_text(json.dumps({
            "info": {"description": "roboflow-style"}, "images": images, "annotations": anns,
            "categories": [{"id": 0, "name": "things", "supercategory": "none"},
                           {"id": 1, "name": "car", "supercategory": "things"}]}))
    (root / "README.roboflow.txt").write_text("exported the way Roboflow exports COCO\n")
    return where


def splits_by_name(ws: Workspace, name: str = "d") -> dict[str, str]:
    return {e.file_name: e.split for e in ws.dataset(name).examples()}


SPLIT_OF_FOLDER = {"train": "train", "valid": "val", "test": "test"}


def test_roboflow_coco_keeps_every_split_exactly(ws, tmp_path):
    src = tmp_path / "rf"
    where = roboflow_coco(src, {"train": 20, "valid": 6, "test": 3})
    result = import_source(ws, "d", src, "coco")
    got = splits_by_name(ws)
    assert got == {n: SPLIT_OF_FOLDER[f] for n, f in where.items()}
    assert result.summary.splits == {"train": 20, "val": 6, "test": 3}
    assert result.summary.splits_from == {"given": 29, "drawn": 0}
    # the hash split alone would not have kept them (what the import did before)
    ds = ws.dataset("d")
    keys = [split_key(0, e.blob, e.file_name) for e in ds.examples()]
    drawn = assign_splits(keys, current_val=0, current_test=0, total_after=29, settings=SplitSettings())
    assert Counter(drawn) != Counter(got.values())


def test_coco_instances_split_files(ws, tmp_path):
    src = tmp_path / "mm"
    roboflow_coco(tmp_path / "parts", {"train": 8, "valid": 3})
    (src / "annotations").mkdir(parents=True)
    for folder, split in (("train", "train2017"), ("valid", "val2017")):
        part = tmp_path / "parts" / folder
        (src / "annotations" / f"instances_{split}.json").write_text((part / "_annotations.coco.json").read_text())
        (src / "images" / split).mkdir(parents=True)
        for p in part.glob("*.jpg"):
            (src / "images" / split / p.name).write_bytes(p.read_bytes())
    import_source(ws, "d", src, "coco")
    assert Counter(splits_by_name(ws).values()) == {"train": 8, "val": 3}


def test_coco_instances_of_no_known_split_are_drawn(ws, tmp_path):
    """CVAT writes annotations/instances_default.json + images/default/: no split given, so drawn by hash."""
    roboflow_coco(tmp_path / "parts", {"train": 30})
    src = tmp_path / "cvat"
    (src / "annotations").mkdir(parents=True)
    part = tmp_path / "parts" / "train"
    (src / "annotations" / "instances_default.json").write_text((part / "_annotations.coco.json").read_text())
    (src / "images" / "default").mkdir(parents=True)
    for p in part.glob("*.jpg"):
        (src / "images" / "default" / p.name).write_bytes(p.read_bytes())
    result = import_source(ws, "d", src, "coco")
    assert result.summary.splits == {"train": 24, "val": 3, "test": 3}
    assert any("instances_default.json as no split" in n for n in result.summary.report["notes"])


def roboflow_yolo(root: Path, counts: dict[str, int], *, data_yaml: bool) -> None:
    seed = 1000
    for folder, n in counts.items():
        (root / folder / "images").mkdir(parents=True)
        (root / folder / "labels").mkdir(parents=True)
        for _i in range(n):
            seed += 1
            name = rf_name(seed, 0)
            (root / folder / "images" / name).write_bytes(jpeg(seed))
            (root / folder / "labels" / (name[:-4] + ".txt")).write_text("0 0.5 0.5 0.25 0.25\n")
    if data_yaml:
        (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
                                        "nc: 1\nnames: ['car']\n")


@pytest.mark.parametrize("data_yaml", [True, False], ids=["data.yaml", "split-folders"])
def test_roboflow_yolo_keeps_every_split_exactly(ws, tmp_path, data_yaml):
    roboflow_yolo(tmp_path / "rf", {"train": 14, "valid": 4, "test": 2}, data_yaml=data_yaml)
    result = import_source(ws, "d", tmp_path / "rf", "yolo", type="detection")
    assert Counter(splits_by_name(ws).values()) == {"train": 14, "val": 4, "test": 2}
    assert result.summary.splits == {"train": 14, "val": 4, "test": 2}


def test_split_flag_puts_everything_there_and_it_stays(ws, tmp_path, capsys):
    src = tmp_path / "rf"
    roboflow_coco(src, {"train": 12, "valid": 2, "test": 2})
    home = str(tmp_path / "cli")
    assert main(["--home", home, "import", "d", str(src), "--format", "coco", "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "val 16" in out and "train 0" in out
    with Workspace(home) as w:
        first = {e.id for e in w.dataset("d").examples()}
        assert {e.split for e in w.dataset("d").examples()} == {"val"}
        w.dataset("d").import_batch(box_batch(60, classes=("car",), size=(64, 48)))
        after = {e.id: e.split for e in w.dataset("d").examples()}
        assert all(after[i] == "val" for i in first)
        assert Counter(after.values())["train"] >= 40  # the new ones drawn: val is already over its target
    assert main(["--home", home, "import", "e", str(src), "--format", "coco", "--split", "nope"]) != 0


def test_roboflow_copies_never_straddle_the_hash_split(ws, tmp_path):
    """Forty source images, three augmented copies each, no source split: every stem in one split."""
    src = tmp_path / "flat"
    where = roboflow_coco(src, {"train": 40}, copies=3)
    coco = src / "train" / "_annotations.coco.json"
    ds_ids = import_source(ws, "d", coco, "coco").ids
    assert len(ds_ids) == 120
    by_stem: dict[str, set[str]] = {}
    for name, split in splits_by_name(ws).items():
        by_stem.setdefault(source_stem(name) or name, set()).add(split)
    assert len(by_stem) == 40 and all(len(s) == 1 for s in by_stem.values())
    counts = Counter(splits_by_name(ws).values())
    assert counts["val"] == 12 and counts["test"] == 12  # the targets are met, in whole groups of 3
    # the ungrouped hash split would have put copies of one stem on both sides
    exs = ws.dataset("d").examples()
    drawn = assign_splits([split_key(0, e.blob, e.file_name) for e in exs], current_val=0, current_test=0,
                          total_after=120, settings=SplitSettings())
    plain: dict[str, set[str]] = {}
    for e, s in zip(exs, drawn, strict=True):
        plain.setdefault(source_stem(e.file_name) or "", set()).add(s)
    assert any(len(s) > 1 for s in plain.values())
    assert len(where) == 120


def test_same_bytes_and_near_duplicates_follow_their_split(ws, tmp_path):
    """Copies added later (same bytes under another name, a re-encoded JPEG) join the split of the
    example already there, so nothing moves and nothing straddles."""
    from workbench.data import ImportBatch, ImportItem
    from workbench.data.records import ClassDef

    items = [ImportItem(f"p{i}.jpg", data=jpeg(5000 + i, 128, 96)) for i in range(40)]
    ds = ws.create_dataset("d", "detection", classes="car")
    ds.import_batch(ImportBatch(items, [ClassDef("car", "#ff0000")]))
    before = {e.file_name: e.split for e in ds.examples()}
    held = [n for n, s in before.items() if s != "train"]
    assert held
    again = []
    for name in held:
        i = int(name[1:-4])
        again.append(ImportItem(f"copy_{name}", data=jpeg(5000 + i, 128, 96)))  # the same bytes
        again.append(ImportItem(f"requality_{name}", data=jpeg(5000 + i, 128, 96, quality=60)))  # near duplicate
    ds.import_batch(ImportBatch(again, []))
    after = {e.file_name: e.split for e in ds.examples()}
    assert all(after[n] == s for n, s in before.items())  # stable
    for name in held:
        assert after[f"copy_{name}"] == after[f"requality_{name}"] == before[name]


def test_stats_reports_copies_a_source_split_puts_on_both_sides(ws, tmp_path):
    src = tmp_path / "rf"
    roboflow_coco(src, {"train": 12, "valid": 4, "test": 2}, shared=(0, 1))  # stems 0 and 1 also in valid/
    import_source(ws, "d", src, "coco")
    st = dataset_stats(ws.dataset("d"))
    errors = [w for w in st["warnings"] if w["code"] == "copies_across_splits"]
    assert errors and errors[0]["severity"] == "error" and errors[0]["count"] == 2
    assert not st["can_train"]
    names = {e.id: e.file_name for e in ws.dataset("d").examples()}
    assert sorted(source_stem(names[g[0]]) for g in st["copies_across_splits"]) == ["img_0000_jpg", "img_0001_jpg"]


def test_stats_is_quiet_when_nothing_straddles(ws, tmp_path):
    src = tmp_path / "rf"
    roboflow_coco(src, {"train": 12, "valid": 4, "test": 2})
    import_source(ws, "d", src, "coco")
    st = dataset_stats(ws.dataset("d"))
    assert st["copies_across_splits"] == []
    assert "copies_across_splits" not in {w["code"] for w in st["warnings"]}


@pytest.mark.parametrize("name,stem", [
    ("IMG_0001_jpg.rf.0123456789abcdef0123456789abcdef.jpg", "img_0001_jpg"),
    ("sub/dir/a.b.rf.deadbeef.png", "a.b"),
    ("plain.jpg", None),
    ("x.rf.notHex.jpg", None),
])
def test_source_stem(name, stem):
    assert source_stem(name) == stem


REALWORLD = Path(__file__).parent / "realworld" / "splits" / "datumaro_roboflow"


def test_datumaro_roboflow_coco_keeps_its_splits(ws):
    """datumaro's Roboflow COCO test asset (train/ val/ with _annotations.coco.json): every image in its
    folder's split, boxes as the files give them (read here independently with json)."""
    src = REALWORLD / "coco"
    want_split, want_boxes = {}, {}
    for folder, split in (("train", "train"), ("val", "val")):
        data = json.loads((src / folder / "_annotations.coco.json").read_text())
        for im in data["images"]:
            want_split[im["file_name"]] = split
            want_boxes[im["file_name"]] = sorted(tuple(a["bbox"]) for a in data["annotations"]
                                                 if a["image_id"] == im["id"])
    result = import_source(ws, "d", src, "coco")
    assert result.summary.splits == {"train": 2, "val": 1, "test": 0}
    exs = ws.dataset("d").examples()
    assert {e.file_name: e.split for e in exs} == want_split
    assert {e.file_name: sorted(a.bbox for a in e.annotations) for e in exs} == want_boxes


def test_datumaro_roboflow_voc_flat_layout_keeps_its_splits_and_boxes(ws):
    """datumaro's Roboflow VOC test asset: train/ and val/ folders, each XML beside its JPEG (no Annotations/,
    no JPEGImages/). Every image in its folder's split, every box as the XML says (read here independently
    with ElementTree: x = xmin, w = xmax - xmin, as datumaro reads VOC)."""
    import xml.etree.ElementTree as ET

    src = REALWORLD / "voc"
    want_split, want_boxes = {}, {}
    for folder, split in (("train", "train"), ("val", "val")):
        for xml_path in sorted((src / folder).glob("*.xml")):
            doc = ET.parse(xml_path).getroot()
            name = doc.findtext("filename")
            want_split[name] = split
            boxes = []
            for obj in doc.iter("object"):
                b = {t: float(obj.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")}
                boxes.append((obj.findtext("name"), (b["xmin"], b["ymin"], b["xmax"] - b["xmin"], b["ymax"] - b["ymin"])))
            want_boxes[name] = sorted(boxes)
    result = import_source(ws, "d", src, "voc")
    assert result.summary.splits == {"train": 2, "val": 1, "test": 0}
    exs = ws.dataset("d").examples()
    assert {e.file_name: e.split for e in exs} == want_split
    assert {e.file_name: sorted((a.label, a.bbox) for a in e.annotations) for e in exs} == want_boxes


def test_when_every_image_is_a_near_duplicate_val_and_test_are_still_filled_and_it_is_said(ws, tmp_path):
    """Thirty frames of one scene (one pixel differs): one group of near duplicates. Whole groups cannot
    fill val and test, so the group gives up members, and the import summary says so."""
    root = tmp_path / "frames"
    root.mkdir()
    base = np.asarray(Image.open(io.BytesIO(jpeg(7, 128, 96))))
    images, anns = [], []
    for i in range(30):
        arr = base.copy()
        arr[i % 96, (i * 7) % 128] = (i * 8) % 255
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        (root / f"f{i:02d}.png").write_bytes(buf.getvalue())
        images.append({"id": i + 1, "file_name": f"f{i:02d}.png", "width": 128, "height": 96})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 9, 9], "area": 81})
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "car"}]}))
    result = import_source(ws, "d", root, "coco")
    assert result.summary.splits == {"train": 24, "val": 3, "test": 3}
    assert any("too large to keep in one split" in n for n in result.summary.report["notes"])
    st = dataset_stats(ws.dataset("d"))
    assert [w["severity"] for w in st["warnings"] if w["code"] == "copies_across_splits"] == ["error"]


def test_copy_groups_at_scale_use_the_banded_search():
    """Many new hashes (more than the direct comparison allows) are grouped by the banded search; the
    groups equal those of comparing every pair."""
    from workbench.data import split_groups
    from workbench.data.split_groups import Member, copy_groups

    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, size=3000).astype(np.uint64)
    values = np.concatenate([base, base[:500] ^ flips[:500]])  # 500 near duplicates, one bit apart
    members = [Member(f"x{i}.png", f"b{i}", f"{int(v):016x}", None) for i, v in enumerate(values)]
    old = split_groups._BRUTE_CELLS
    try:
        split_groups._BRUTE_CELLS = 10**12
        direct = copy_groups(members)
        split_groups._BRUTE_CELLS = 0
        banded = copy_groups(members)
    finally:
        split_groups._BRUTE_CELLS = old
    assert direct == banded
    assert sum(1 for i, g in enumerate(banded) if g != i) >= 500


def test_straddling_groups_vectorised_equals_the_plain_join():
    from workbench.data.split_groups import held_and_train, join_straddling

    rng = np.random.default_rng(5)
    ids = rng.permutation(5000)
    groups, k = [], 0
    while k < len(ids):
        n = int(rng.integers(1, 6)) if rng.random() < 0.99 else 2000
        groups.append(ids[k : k + n].tolist())
        k += n
    split_of = {int(e): str(rng.choice(["val", "test"])) for e in ids if rng.random() < 0.05}
    assert held_and_train(groups, split_of) == join_straddling(groups, split_of)
    assert held_and_train([], {}) == []
