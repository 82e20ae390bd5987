"""Label Studio JSON export: image URL forms, percent coordinates, rotated rectangles, choices, which
annotation of a task is imported, and hostile exports refused with nothing changed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.data.test_formats import image_bytes
from workbench.data import Workspace
from workbench.data.formats import get_reader
from workbench.data.formats.label_studio import image_candidates
from workbench.data.transfer import export_dataset, import_source
from workbench.errors import ImportFormatError, UnsafePathError


def rect(label: str, x: float, y: float, w: float, h: float, rotation: float = 0, rid: str = "r") -> dict:
    return {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": 200, "original_height": 100,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]}}


def poly(label: str, points: list) -> dict:
    return {"id": "p", "type": "polygonlabels", "value": {"points": points, "polygonlabels": [label]}}


def task(tid: int, image: str, results: list | None, **extra) -> dict:
    anns = [] if results is None else [{"id": 100 + tid, "result": results, "was_cancelled": False}]
    return {"id": tid, "data": {"image": image}, "annotations": anns, "predictions": [], **extra}


def setup(root: Path, tasks: list, images=("a.png", "sub/b.png")) -> Path:
    for i, name in enumerate(images):
        (root / "media" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "media" / name).write_bytes(image_bytes(200, 100, i))
    export = root / "export.json"
    export.write_text(json.dumps(tasks))
    return export


def test_url_forms() -> None:
    assert image_candidates("/data/local-files/?d=media/sub/b%20c.png") == ["media/sub/b c.png", "sub/b c.png",
                                                                          "b c.png"]
    assert image_candidates("/data/upload/3/1a2b-a.png") == ["3/1a2b-a.png", "1a2b-a.png"]
    assert image_candidates("https://host/x/a.png?sig=1") == ["x/a.png", "a.png"]
    assert image_candidates("/image1") == ["image1"]


def test_reads_boxes_polygons_and_url_forms(tmp_path: Path) -> None:
    export = setup(tmp_path, [
        task(1, "/data/local-files/?d=media/a.png", [rect("car", 10, 20, 30, 40),
                                                    poly("road", [[0, 0], [50, 0], [50, 50]])]),
        task(2, "/data/upload/7/sub/b.png", None),
    ])
    batch = get_reader("label-studio").read(export, images_dir=tmp_path / "media")
    a, b = batch.items
    box, road = a.annotations
    assert box.bbox == (20.0, 20.0, 60.0, 40.0)  # percent of 200 x 100
    assert road.polygons == ((0.0, 0.0, 100.0, 0.0, 100.0, 50.0),)
    assert (a.status, b.status, b.annotations) == ("annotated", "new", [])
    assert a.origin == {"image": "/data/local-files/?d=media/a.png", "id": 1, "annotation_id": 101}
    assert b.path == (tmp_path / "media" / "sub" / "b.png").resolve()
    assert [c.name for c in batch.classes] == ["car", "road"] and batch.type == "segmentation"
    # images_dir left out: the export's folder, where media/a.png is found through the whole d= path
    assert get_reader("label-studio").read(export, skip_missing=True).items[0].path == a.path


def test_rotated_rectangle_becomes_its_polygon(tmp_path: Path) -> None:
    export = setup(tmp_path, [task(1, "a.png", [rect("car", 50, 10, 10, 20, rotation=30)])])
    (ann,) = get_reader("label-studio").read(export, images_dir=tmp_path / "media").items[0].annotations
    x, y, w, h, t = 100.0, 10.0, 20.0, 20.0, math.radians(30)
    expected = [x, y, x + w * math.cos(t), y + w * math.sin(t),
                x + w * math.cos(t) - h * math.sin(t), y + w * math.sin(t) + h * math.cos(t),
                x - h * math.sin(t), y + h * math.cos(t)]
    assert ann.kind == "polygon" and [round(v, 9) for v in ann.polygons[0]] == [round(v, 9) for v in expected]


def test_choices_make_a_classification_dataset(tmp_path: Path) -> None:
    choice = {"type": "choices", "value": {"choices": ["cat"]}}
    export = setup(tmp_path, [task(1, "a.png", [choice]), task(2, "sub/b.png", [])])
    batch = get_reader("label-studio").read(export, images_dir=tmp_path / "media")
    assert batch.type == "classification" and [c.name for c in batch.classes] == ["cat"]
    assert [a.content() for a in batch.items[0].annotations] == [{"kind": "label", "label": "cat"}]
    assert batch.items[1].status == "annotated"  # someone submitted an empty result


def test_which_annotation_is_imported_and_what_is_counted(tmp_path: Path) -> None:
    t = task(1, "a.png", [rect("first", 0, 0, 10, 10)])
    t["annotations"] += [
        {"id": 2, "result": [rect("truth", 0, 0, 10, 10)], "ground_truth": True},
        {"id": 3, "result": [rect("later", 0, 0, 10, 10)]},
        {"id": 4, "result": [rect("cancelled", 0, 0, 10, 10)], "was_cancelled": True},
    ]
    t["predictions"] = [{"result": [rect("model", 0, 0, 10, 10)]}]
    batch = get_reader("label-studio").read(setup(tmp_path, [t]), images_dir=tmp_path / "media")
    assert [a.label for a in batch.items[0].annotations] == ["truth"]
    assert batch.report.skipped == {
        "cancelled annotation": 1, "prediction (not imported)": 1,
        "second annotation of a task (the ground truth, else the last, is imported)": 2}


def test_skip_missing_and_unsupported(tmp_path: Path) -> None:
    brush = {"type": "brushlabels", "value": {"rle": [1, 2], "brushlabels": ["x"]}}
    export = setup(tmp_path, [task(2, "https://example.com/gone.png", []),
                              task(1, "a.png", [brush, rect("car", 0, 0, 10, 10)])])
    with pytest.raises(ImportFormatError, match="remote URL, never downloaded.*--skip-missing"):
        get_reader("label-studio").read(export, images_dir=tmp_path / "media")
    with pytest.raises(ImportFormatError, match="'brushlabels' is not supported.*--skip-unsupported"):
        get_reader("label-studio").read(export, images_dir=tmp_path / "media", skip_missing=True)
    batch = get_reader("label-studio").read(export, images_dir=tmp_path / "media", skip_missing=True,
                                            skip_unsupported=True)
    assert len(batch.items) == 1 and [a.label for a in batch.items[0].annotations] == ["car"]
    assert batch.report.skipped == {"task whose image is not found (--skip-missing)": 1,
                                    "brushlabels result (not supported; --skip-unsupported)": 1}


HOSTILE = [
    ("malformed", "[{", ImportFormatError, ("export.json", "malformed JSON")),
    ("not-a-list", json.dumps("x"), ImportFormatError, ("expected a list of tasks",)),
    ("nan", [task(1, "a.png", [rect("car", float("nan"), 0, 10, 10)])], ImportFormatError,
     ("record task 1 result r", "field 'value.x'", "not finite")),
    ("two-labels", [task(1, "a.png", [{"type": "rectanglelabels", "value": {
        "x": 1, "y": 1, "width": 2, "height": 2, "rectanglelabels": ["a", "b"]}}])], ImportFormatError,
     ("record task 1 result 0", "field 'value.rectanglelabels'", "exactly one")),
    ("far-outside", [task(1, "a.png", [rect("car", 90, 0, 50, 10)])], ImportFormatError,
     ("record task 1 result r", "field 'bbox'", "--clip-boxes")),
    ("dotdot", [task(1, "/data/local-files/?d=../../etc/passwd", [])], UnsafePathError,
     ("record task 1", "field 'data.image'", "'..'")),
    ("missing", [task(1, "/data/upload/1/nope.png", [])], ImportFormatError,
     ("record task 1", "field 'data.image'", "not found", "--images")),
    ("no-image-field", [{"id": 5, "data": {"a": "x", "b": "y"}, "annotations": []}], ImportFormatError,
     ("record task 5", "field 'data'", "which is the image")),
    ("mixed", [task(1, "a.png", [rect("car", 0, 0, 10, 10), {"type": "choices", "value": {"choices": ["x"]}}])],
     ImportFormatError, ("mixes regions and choices",)),
    ("bad-annotations", [{"id": 1, "data": {"image": "a.png"}, "annotations": "x"}], ImportFormatError,
     ("record task 1", "field 'annotations'")),
]


@pytest.mark.parametrize("name,tasks,error,parts", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_exports_are_refused_and_change_nothing(tmp_path: Path, name: str, tasks, error: type,
                                                        parts: tuple[str, ...]) -> None:
    export = setup(tmp_path, [])
    export.write_text(tasks if isinstance(tasks, str) else json.dumps(tasks))
    with Workspace(tmp_path / "ws") as ws:
        ws.create_dataset("s", "detection", classes=["car"])
        with pytest.raises(error) as e:
            import_source(ws, "s", export, "label-studio", images_dir=tmp_path / "media")
        assert ws.dataset("s").count() == 0
    for part in parts:
        assert part in str(e.value), (part, str(e.value))


def test_writer_statuses_config_and_store_round_trip(tmp_path: Path) -> None:
    export = setup(tmp_path / "src", [
        task(11, "a.png", [rect("car", 10, 20, 30, 40)], data={"image": "a.png", "split": "val"}),
        task(12, "sub/b.png", None),
    ])
    with Workspace(tmp_path / "ws") as ws:
        ds, _ = import_source(ws, "s", export, "label-studio", images_dir=tmp_path / "src" / "media")
        ds.add_class("unused", "#123456")
        files = export_dataset(ds, tmp_path / "out", "label-studio", status="new,annotated,reviewed")
    assert [f.name for f in files[:2]] == ["tasks.json", "label_config.xml"]
    config = (tmp_path / "out" / "label_config.xml").read_text()
    assert '<Label value="unused" background="#123456"/>' in config and 'toName="image"' in config
    tasks = json.loads((tmp_path / "out" / "tasks.json").read_text())
    assert [len(t["annotations"]) for t in tasks] == [1, 0]  # nobody labelled b.png: no annotation
    assert [t["id"] for t in tasks] == [11, 12]  # the source's task ids, not the example ids 1, 2
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=images/a.png"
    back = get_reader("label-studio").read(tmp_path / "out")
    assert [c.name for c in back.classes] == ["car", "unused"] and back.classes[1].color == "#123456"
    assert [it.status for it in back.items] == ["annotated", "new"]
    assert back.items[0].split == "val" and back.items[1].split in ("train", "val", "test")  # splits kept
    assert back.items[0].annotations[0].bbox == (20.0, 20.0, 60.0, 40.0)
    # a result naming a label the config does not list
    tasks[0]["annotations"][0]["result"][0]["value"]["rectanglelabels"] = ["bus"]
    (tmp_path / "out" / "tasks.json").write_text(json.dumps(tasks))
    with pytest.raises(ImportFormatError, match="label 'bus' is not in label_config.xml"):
        get_reader("label-studio").read(tmp_path / "out")
