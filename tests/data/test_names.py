"""Names are checked on creation (dataset, class, directory; snapshot messages): no control characters (NUL,
ESC, line breaks), no bidi controls, at most 200 characters, an error naming the field. A workspace written
before these checks, holding such names, still opens and works."""

from __future__ import annotations

import json

import pytest

from workbench import ClassDef, Workspace
from workbench.data.transfer import import_source
from workbench.errors import ValidationError
from workbench.text import check_name, terminal_safe

HOSTILE = {
    "nul": "a\x00b",
    "esc": "red\x1b[31mX\x1b[0m",
    "osc-title": "\x1b]0;pwned\x07name",
    "bell": "a\x07",
    "c1-csi": "a\x9b31mb",
    "delete": "a\x7fb",
    "tab": "a\tb",
    "rlo": "cat\u202egnp.exe",
    "lre": "a\u202ab",
    "pdf": "a\u202cb",
    "lri": "a\u2066b",
    "pdi": "a\u2069b",
    "too-long": "n" * 201,
}
FINE = ["猫 ü", "e\u0301cole", "שלום", "📷 photo", "<img src=x onerror=window.__xss=1>", "n" * 200, "a'b\"c"]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_dataset_class_and_directory_names_are_refused(tmp_path, kind):
    bad = HOSTILE[kind]
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(ValidationError) as info:
            ws.create_dataset(bad, "detection", classes=["a"])
        assert info.value.field == "name" and "\n" not in str(info.value) and "\x1b" not in str(info.value)
        assert ws.datasets() == []
        with pytest.raises(ValidationError):
            ws.create_dataset("d", "detection", classes=[bad])
        assert ws.datasets() == []
        ds = ws.create_dataset("d", "detection", classes=["a"])
        with pytest.raises(ValidationError) as info:
            ds.add_class(bad)
        assert info.value.field == "name"
        with pytest.raises(ValidationError):
            ds.rename_class("a", bad)
        with pytest.raises(ValidationError) as info:
            ds.create_directory(bad)
        assert info.value.field == "name"
        assert [c.name for c in ds.classes] == ["a"] and ds.directories() == []


@pytest.mark.parametrize("name", FINE)
def test_names_in_any_script_and_with_markup_are_kept_as_given(tmp_path, name):
    cls = name.replace("=", ":")  # , and = separate classes in "a=#ff0000,b" specs: not in class names
    with Workspace(tmp_path / "ws") as ws:
        ds = ws.create_dataset(name, "detection", classes=[ClassDef(cls, "#000000")])
        ds.create_directory(name)
        assert ws.dataset(name).classes[0].name == cls
        assert [d["name"] for d in ds.directories()] == [name]


def test_the_error_says_which_character(tmp_path):
    with pytest.raises(ValidationError, match="U\\+202E") as info:
        ClassDef("cat\u202egnp", "#000000")
    assert "bidi" in str(info.value) and info.value.field == "name"
    with pytest.raises(ValidationError, match="201 characters long; at most 200"):
        check_name("x" * 201, what="dataset")


def test_an_import_with_a_hostile_category_changes_nothing(tmp_path):
    from tests.reliability.hostile import png

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(png(seed=1))
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 6]}],
           "categories": [{"id": 1, "name": "cat\x1b]0;pwned\x07"}]}
    (src / "annotations.json").write_text(json.dumps(doc))
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(ValidationError, match="control character"):
            import_source(ws, "d", src, "coco")
        assert ws.datasets() == []


def test_snapshot_messages_keep_line_breaks_but_no_escapes(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        ds = ws.create_dataset("d", "classification", classes=["a"])
        with pytest.raises(ValidationError) as info:
            ds.snapshot("fine\x1b[2J")
        assert info.value.field == "message"
        with pytest.raises(ValidationError):
            ds.snapshot("m" * 2001)
        assert ds.snapshot("two\nlines").message == "two\nlines"


def test_a_workspace_written_before_the_checks_still_opens(tmp_path):
    """Rows written by an older Workbench (straight into SQLite here) read back: the checks apply to new
    names only."""
    old_ds, old_class, old_dir = "old\x1b[31m\u202e" + "x" * 250, "cls\x00\u2066\x1b", "dir\u202e"
    with Workspace(tmp_path / "ws") as ws:
        ds = ws.create_dataset("tmp", "classification", classes=["a"])
        with ws.transaction():
            ws.conn.execute("UPDATE datasets SET name=? WHERE id=?", (old_ds, ds.id))
            ws.conn.execute("UPDATE classes SET name=? WHERE dataset_id=?", (old_class, ds.id))
            ws.conn.execute("INSERT INTO directories (dataset_id, name, created_at) VALUES (?,?,?)",
                            (ds.id, old_dir, "2020-01-01"))
    with Workspace(tmp_path / "ws") as ws:
        assert [d["name"] for d in ws.datasets()] == [old_ds]
        ds = ws.dataset(old_ds)
        assert [c.name for c in ds.classes] == [old_class]
        ds.set_class_color(old_class, "#123456")
        assert ds.classes[0].color == "#123456"
        ds.add_class("new")
        snap = ds.snapshot("after the upgrade")
        from workbench.data.snapshots import load_snapshot

        assert [c.name for c in load_snapshot(ds, snap.id).classes] == [old_class, "new"]
        assert [d["name"] for d in ds.directories()] == [old_dir]
        assert "\x1b" not in terminal_safe(old_ds) and "\\x1b" in terminal_safe(old_ds)
