"""Authors are names: checked when an edit or import writes them (no control or bidi character, at most 200
characters), refused with an error naming the field, and nothing written. Markup stays allowed: it is
escaped where it is shown (tests/hostile_names.py)."""

from __future__ import annotations

import pytest

from workbench.data.records import Annotation, ImportBatch, ImportItem
from workbench.errors import ValidationError
from workbench.text import check_author

HOSTILE = [
    "mallory\x1b[2J",  # a terminal escape: clears the screen of whoever prints the history
    "eve\u202egnp.exe",  # a bidi override: shows reversed
    "bob\nalice",  # a forged second line in the history listing
    "nul\x00",
    "x" * 201,
    "   ",
]
FINE = ["", "import", "run:shapes-20260101-000000-abc123", "Zoë Ångström", "<img src=x onerror=alert(1)>",
        " padded "]


@pytest.mark.parametrize("name", FINE)
def test_ordinary_authors_pass(name):
    assert check_author(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_authors_are_refused_and_nothing_is_written(ws, name):
    ds = ws.create_dataset("d", "detection", classes=["a"])
    ds.import_batch(ImportBatch(items=[ImportItem(data=_png(), file_name="x.png")]))
    ex = ds.examples()[0]
    kept = ds.add_annotation(ex.id, Annotation(kind="box", label="a", bbox=(1, 1, 4, 4)), author="alice")
    rows = _rows(ds)
    history = ws.conn.execute("SELECT COUNT(*) FROM annotation_history").fetchone()[0]
    with pytest.raises(ValidationError) as err:
        ds.add_annotation(ex.id, Annotation(kind="box", label="a", bbox=(2, 2, 4, 4)), author=name)
    assert err.value.field == "author"
    with pytest.raises(ValidationError):
        Annotation(kind="box", label="a", bbox=(2, 2, 4, 4), author=name)
    with pytest.raises(ValidationError):
        ds.update_annotation(kept.id, Annotation(kind="box", label="a", bbox=(3, 3, 4, 4)), author=name)
    with pytest.raises(ValidationError):
        ds.delete_annotation(kept.id, author=name)
    with pytest.raises(ValidationError):
        ds.delete_examples([ex.id], author=name)
    with pytest.raises(ValidationError):
        ds.import_batch(ImportBatch(items=[ImportItem(data=_png(1), file_name="y.png")]), author=name)
    assert _rows(ds) == rows
    assert ws.conn.execute("SELECT COUNT(*) FROM annotation_history").fetchone()[0] == history
    assert len(ds.examples()) == 1


def _rows(ds):
    return ds.conn.execute("SELECT id, x, y, w, h, author, version FROM annotations ORDER BY id").fetchall()


def _png(seed: int = 0) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40, 10, 20)).save(buf, "PNG")
    return buf.getvalue()
