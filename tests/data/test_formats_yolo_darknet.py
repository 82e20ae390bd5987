"""YOLO beyond the Ultralytics layout: Darknet / CVAT "YOLO 1.1" (obj.data, obj.names, train.txt), names files,
label files beside images, data.yaml split lists; unlabeled images; border tolerance and --clip-boxes for
polygons; errors that name the real problem and the CLI flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.test_formats import image_bytes
from workbench.cli import main
from workbench.data import Workspace
from workbench.data.formats import get_reader
from workbench.data.transfer import import_source
from workbench.errors import ImportFormatError, UnsafePathError


def darknet(root: Path, *, names: str = "cat\ndog\n", data: str | None = None) -> Path:
    (root / "obj_train_data").mkdir(parents=True)
    (root / "obj_valid_data").mkdir()
    (root / "obj_train_data" / "a.png").write_bytes(image_bytes(40, 20, 1))
    (root / "obj_train_data" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "obj_valid_data" / "b.png").write_bytes(image_bytes(40, 20, 2))
    (root / "obj_valid_data" / "b.txt").write_text("")
    (root / "obj.names").write_text(names)
    (root / "train.txt").write_text("data/obj_train_data/a.png\n")
    (root / "valid.txt").write_text("data/obj_valid_data/b.png\n\n")
    (root / "obj.data").write_text(data if data is not None else
                                   "classes = 2\ntrain = data/train.txt\nvalid = data/valid.txt\n"
                                   "names = data/obj.names\nbackup = backup/\n")
    return root


def test_cvat_yolo_1_1_export(tmp_path: Path) -> None:
    darknet(tmp_path)
    batch = get_reader("yolo").read(tmp_path)
    assert [c.name for c in batch.classes] == ["cat", "dog"]
    assert [(it.file_name, it.split, it.status) for it in batch.items] == [("a.png", "train", "annotated"),
                                                                          ("b.png", "val", "annotated")]
    assert batch.items[0].annotations[0].bbox == (10.0, 5.0, 20.0, 10.0)
    assert batch.items[0].annotations[0].label == "dog" and batch.items[1].annotations == []
    assert get_reader("yolo").read(tmp_path / "obj.data").items[0].path == batch.items[0].path


@pytest.mark.parametrize("data,names,error,parts", [
    ("classes = 3\ntrain = data/train.txt\nnames = data/obj.names\n", "cat\ndog\n", ImportFormatError,
     ("obj.data", "field 'classes'", "3 but 2 names")),
    ("train = data/nope.txt\n", "", ImportFormatError, ("obj.data", "record train", "'data/nope.txt' not found")),
    ("train = /etc/passwd\n", "", UnsafePathError, ("obj.data", "record train", "absolute")),
    ("names = data/obj.names\n", "cat\ncat\n", ImportFormatError, ("obj.names", "listed twice")),
    ("just text\n", "", ImportFormatError, ("obj.data", "record line 1", "key = value")),
    ("names = data/obj.names\n", "a\n", ImportFormatError, ("lists none of train / valid / test",)),
])
def test_bad_darknet_files(tmp_path: Path, data: str, names: str, error: type, parts: tuple[str, ...]) -> None:
    darknet(tmp_path / "d", names=names, data=data)
    with pytest.raises(error) as e:
        get_reader("yolo").read(tmp_path / "d")
    for part in parts:
        assert part in str(e.value), (part, str(e.value))


def test_darknet_list_naming_a_missing_image(tmp_path: Path) -> None:
    darknet(tmp_path)
    (tmp_path / "train.txt").write_text("data/obj_train_data/a.png\ndata/obj_train_data/zz.png\n")
    with pytest.raises(ImportFormatError, match=r"train.txt: record line 2: field 'path': image "
                                                r"'data/obj_train_data/zz.png' not found \(--skip-missing"):
        get_reader("yolo").read(tmp_path)
    assert len(get_reader("yolo").read(tmp_path, skip_missing=True).items) == 2


@pytest.mark.parametrize("where", ["classes.txt", "obj.names", "labels/classes.txt"])
def test_names_files(tmp_path: Path, where: str) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(image_bytes(10, 10, 1))
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (tmp_path / where).write_text("\nzero\none\n")
    assert [c.name for c in get_reader("yolo").read(tmp_path).classes] == ["zero", "one"]


def test_data_yaml_splits_as_folders_list_files_and_lists(tmp_path: Path) -> None:
    for i, (folder, name) in enumerate([("t1", "a"), ("t2", "b"), ("v", "c"), ("te", "d")]):
        (tmp_path / "images" / folder).mkdir(parents=True)
        (tmp_path / "labels" / folder).mkdir(parents=True)
        (tmp_path / "images" / folder / f"{name}.png").write_bytes(image_bytes(10, 10, i))
        (tmp_path / "labels" / folder / f"{name}.txt").write_text("")
    (tmp_path / "val.txt").write_text("images/v/c.png\n")
    (tmp_path / "data.yaml").write_text("train: [images/t1, images/t2]\nval: val.txt\ntest: images/te\n"
                                        "names: [x]\n")
    batch = get_reader("yolo").read(tmp_path)
    assert sorted((it.file_name, it.split) for it in batch.items) == [
        ("a.png", "train"), ("b.png", "train"), ("c.png", "val"), ("d.png", "test")]


def test_unlabeled_images_are_an_error_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for i in range(5):
        (tmp_path / "images" / f"{i}.png").write_bytes(image_bytes(10, 10, i))
    (tmp_path / "labels" / "0.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "1.txt").write_text("")
    with pytest.raises(ImportFormatError) as e:
        get_reader("yolo").read(tmp_path)
    msg = str(e.value)
    assert "3 of 5 images have no label file (first: images/2.png, images/3.png, images/4.png;" in msg
    assert "looked for labels/2.txt" in msg and "--allow-unlabeled" in msg and "allow_unlabeled" not in msg
    batch = get_reader("yolo").read(tmp_path, allow_unlabeled=True)
    assert [it.status for it in batch.items] == ["annotated", "annotated", "new", "new", "new"]
    assert batch.report.notes == ["3 images without a label file imported as status 'new' (--allow-unlabeled)"]
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "y", tmp_path, "yolo", allow_unlabeled=True)
        assert sorted(e.status for e in ds.examples()) == ["annotated", "annotated", "new", "new", "new"]


def test_cli_allow_unlabeled(tmp_path: Path, capsys) -> None:
    (tmp_path / "src" / "images").mkdir(parents=True)
    (tmp_path / "src" / "images" / "a.png").write_bytes(image_bytes(10, 10, 1))
    (tmp_path / "src" / "classes.txt").write_text("x\n")
    home = ["--home", str(tmp_path / "ws")]
    assert main([*home, "import", "d", str(tmp_path / "src"), "--format", "yolo"]) == 2
    assert "--allow-unlabeled imports them" in capsys.readouterr().err
    assert main([*home, "import", "d", str(tmp_path / "src"), "--format", "yolo", "--allow-unlabeled"]) == 0
    assert "imported 1 examples" in capsys.readouterr().out
    assert main([*home, "import", "e", str(tmp_path / "src"), "--format", "coco", "--allow-unlabeled"]) == 2
    assert "takes no --allow-unlabeled" in capsys.readouterr().err


def _one(tmp_path: Path, line: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "labels").mkdir(exist_ok=True)
    (tmp_path / "images" / "a.png").write_bytes(image_bytes(100, 50, 1))
    (tmp_path / "labels" / "a.txt").write_text(line + "\n")
    return tmp_path


def test_polygon_a_hair_outside_is_clipped_and_counted(tmp_path: Path) -> None:
    _one(tmp_path, "0 -0.0004 0 1.0009 0 1.0 1.0005 0 1")
    batch = get_reader("yolo").read(tmp_path)
    (ann,) = batch.items[0].annotations
    xs, ys = ann.polygons[0][0::2], ann.polygons[0][1::2]
    assert min(xs) == 0.0 and max(xs) == 100.0 and min(ys) == 0.0 and max(ys) == 50.0
    assert batch.report.clipped == {"polygon outside the image": 1}


def test_box_a_hair_outside_is_clipped(tmp_path: Path) -> None:
    _one(tmp_path, "0 0.5 0.5 1.001 0.5")
    batch = get_reader("yolo").read(tmp_path)
    assert batch.items[0].annotations[0].bbox == (0.0, 12.5, 100.0, 25.0)
    assert batch.report.total_clipped == 1


def test_polygon_far_outside_needs_clip_boxes(tmp_path: Path) -> None:
    _one(tmp_path, "0 -0.2 0 0.5 0 0.5 0.5")
    with pytest.raises(ImportFormatError) as e:
        get_reader("yolo").read(tmp_path)
    assert "a.txt" in str(e.value) and "record line 1" in str(e.value) and "field 'polygons'" in str(e.value)
    assert "--clip-boxes clips boxes and polygons" in str(e.value) and "clip_boxes=" not in str(e.value)
    (ann,) = get_reader("yolo").read(tmp_path, clip_boxes=True).items[0].annotations
    # the edge from (50, 25) back to (-20, 0) meets x = 0 at y = 25 - 25 * 50 / 70
    assert ann.polygons == ((0.0, 25 - 25 * 50 / 70, 0.0, 0.0, 50.0, 0.0, 50.0, 25.0),)


def test_polygon_wholly_outside_with_clip_boxes_is_dropped_and_counted(tmp_path: Path) -> None:
    _one(tmp_path, "0 1.2 0 1.5 0 1.5 0.5")
    batch = get_reader("yolo").read(tmp_path, clip_boxes=True)
    assert batch.items[0].annotations == []
    assert batch.report.skipped == {"polygon wholly outside the image (clipped to nothing)": 1}


def test_missing_split_folder_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("train: ../train/images\nval: images/val\nnames: [a]\n")
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(ImportFormatError) as e:
        get_reader("yolo").read(tmp_path)
    assert "record val" in str(e.value) and "'images/val' not found" in str(e.value)
    assert "leaves the import folder" not in str(e.value)


def test_no_layout_at_all(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(10, 10, 1))
    with pytest.raises(ImportFormatError, match="not a YOLO dataset"):
        get_reader("yolo").read(tmp_path)


def test_border_tolerance_is_per_axis(tmp_path: Path) -> None:
    import io

    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (2000, 100), (90, 90, 90)).save(buf, format="PNG")
    (tmp_path / "images" / "wide.png").write_bytes(buf.getvalue())
    # 1.8 px past the left edge of a 2000 px wide image: within 1e-3 of the width, clipped
    (tmp_path / "labels" / "wide.txt").write_text("0 -0.0009 0.1 0.2 0.5 0.3 0.5\n")
    (ann,) = get_reader("yolo").read(tmp_path).items[0].annotations
    assert min(ann.polygons[0][0::2]) == 0.0
    # 1 px past the top of a 100 px high image: more than 1e-3 of the height (and half a pixel), refused
    (tmp_path / "labels" / "wide.txt").write_text("0 0.1 -0.01 0.2 0.5 0.3 0.5\n")
    with pytest.raises(ImportFormatError, match="field 'polygons'.*1 px outside the 2000x100 image.*--clip-boxes"):
        get_reader("yolo").read(tmp_path)
