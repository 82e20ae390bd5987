"""A large import counts its annotations in Python before each write transaction (aggregates.count_new):
the maintained counts must equal a recount (aggregates.verify) and the counts the per-row triggers keep
when the same batch is imported in one transaction, for every kind, at the tiny / huge thresholds, with
model proposals (not counted) and every split."""

from __future__ import annotations

import pytest

from tests.helpers import png_bytes
from workbench.data import Annotation, ImportBatch, ImportItem, Workspace, aggregates, bulk_import, staged
from workbench.data.records import ClassDef

W, H = 40, 30  # tiny: a side under 4 px (0.01 of a side is less); huge: an area over 0.9 * 1200 = 1080

BOXES = [(0, 0, 3.99, 10), (0, 0, 4.0, 4.0), (1, 1, 10, 3.5), (0, 0, 36, 30), (0, 0, 36.5, 30), (0, 0, 40, 30),
         (2.5, 3.25, 7.125, 9.75), (0, 0, 1e-3, 1e-3), (5, 5, 20, 20)]


def _anns(kind: str, i: int) -> list[Annotation]:
    names = ["a", "b", "c"]
    if kind == "label":
        return [Annotation("label", names[i % 3]), Annotation("label", names[(i + 1) % 3], proposal=True, score=0.4)]
    if kind == "anomaly":
        return [Annotation("anomaly", ("good", "anomalous")[i % 2])]
    out = []
    for k, (x, y, w, h) in enumerate(BOXES):
        label = names[(i + k) % 3]
        if kind == "polygon" and k % 2:
            out.append(Annotation("polygon", label, polygons=((x, y, x + w, y, x + w, y + h, x, y + h),)))
        else:
            out.append(Annotation("box", label, bbox=(x, y, w, h), proposal=k == 6 and i % 2 == 0,
                                  score=0.9 if k == 6 and i % 2 == 0 else None))
    return out


def _batch(dtype: str, kind: str, n: int) -> ImportBatch:
    split = ("train", "val", "test", None)
    items = [ImportItem(f"im{i:04d}.png", data=png_bytes(W, H, seed=i), annotations=_anns(kind, i), record=i,
                        split=split[i % 4]) for i in range(n)]
    classes = [] if dtype == "anomaly" else [ClassDef(c, "#112233") for c in "abc"]
    return ImportBatch(items=items, classes=classes, type=dtype)


def _tables(ws: Workspace, name: str) -> dict:
    """The maintained counts of dataset ``name``, keyed by file and class names (ids differ by workspace)."""
    ds_id = ws.conn.execute("SELECT id FROM datasets WHERE name=?", (name,)).fetchone()[0]
    cls = {r[0]: r[1] for r in ws.conn.execute("SELECT id, name FROM classes WHERE dataset_id=?", (ds_id,))}
    files = {r[0]: r[1] for r in ws.conn.execute("SELECT id, file_name FROM examples WHERE dataset_id=?", (ds_id,))}
    return {
        "example_class": sorted((files[r[0]], cls[r[1]], *r[3:]) for r in ws.conn.execute(
            "SELECT * FROM agg_example_class WHERE dataset_id=?", (ds_id,))),
        "class_split": sorted((r[1], cls[r[2]], *r[3:]) for r in ws.conn.execute(
            "SELECT * FROM agg_class_split WHERE dataset_id=? AND images > 0", (ds_id,))),  # as verify() reads
        "box_size": sorted((cls[r[1]], *r[2:]) for r in ws.conn.execute(
            "SELECT * FROM agg_box_size WHERE dataset_id=?", (ds_id,))),
    }


@pytest.mark.parametrize(("dtype", "kind"), [("detection", "box"), ("segmentation", "polygon"),
                                             ("classification", "label"), ("anomaly", "anomaly")])
def test_counts_made_before_the_write_equal_the_triggers_counts(tmp_path, monkeypatch, dtype, kind):
    monkeypatch.setattr(staged, "FIRST_ROWS", 40)  # several transactions
    n = 120 if kind in ("box", "polygon") else 600
    chunks: list[float] = []
    monkeypatch.setattr(staged, "ON_CHUNK", chunks.append)
    with Workspace(tmp_path / "staged") as ws:
        ds = ws.create_dataset("d", dtype, classes="a,b,c" if dtype != "anomaly" else None)
        batch = _batch(dtype, kind, n)
        assert bulk_import.is_large(batch)
        ds.import_batch(batch)
        assert len(chunks) > 5
        assert aggregates.verify(ws.conn) == []
        got = _tables(ws, "d")
    with Workspace(tmp_path / "one") as ws:  # the reference: the per-row triggers, one transaction
        with ws.transaction():
            ds = ws.create_dataset("d", dtype, classes="a,b,c" if dtype != "anomaly" else None)
            ds.import_batch(_batch(dtype, kind, n))
        want = _tables(ws, "d")
    assert got == want
    if kind == "box":  # the thresholds were crossed both ways
        assert sum(r[6] for r in got["example_class"]) == 3 * n  # tiny: 3.99 wide, 3.5 high, 0.001
        assert sum(r[7] for r in got["example_class"]) == 2 * n  # huge: 36.5 x 30 and 40 x 30, not 36 x 30
        assert sum(r[2] for r in got["class_split"]) == n * (len(BOXES) - 1) + n // 2
