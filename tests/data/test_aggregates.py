"""The counts the store maintains with triggers (aggregates.py) always equal a recount, whatever changed,
and ``stats`` read from them equals the pure-Python report."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.data import Annotation, aggregates
from workbench.data import stats as stats_module
from workbench.data.box_sizes import SIZE_BINS, quantile_from_counts, size_bin, size_bins
from workbench.data.db import SCHEMA_VERSION
from workbench.data.quality import quality_report
from workbench.data.stats import dataset_stats
from workbench.data.transfer import add_sample
from workbench.data.workspace import Workspace

SAMPLES = ["digits", "shapes-detection", "shapes-segmentation", "shapes-anomaly"]
COMPARED = ("classes", "warnings", "box_sizes", "unannotated", "annotated", "balance")


def _agrees(ds) -> None:
    assert aggregates.verify(ds.conn) == []
    want = quality_report(ds.examples(), ds.classes, ds.type, ds.load_bytes).to_dict()
    got = dataset_stats(ds, use_cache=False)
    for key in COMPARED:
        assert got[key] == want[key], key


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_kind_of_change_keeps_the_counts_exact(ws, sample):
    ds, ids = add_sample(ws, "d", sample, count=40, seed=3)
    _agrees(ds)
    names = [c.name for c in ds.classes]
    first = ds.example(ids[0]).annotations
    if ds.type in ("classification", "anomaly"):
        plain = [i for i in ids if not any(a.bbox for a in ds.example(i).annotations)]  # no defect regions
        ds.set_label(plain[0], names[-1] if ds.example(plain[0]).annotations[0].label == names[0] else names[0])
        ds.set_label(plain[1], names[0])
    else:
        a = first[0]
        ds.update_annotation(a.id, Annotation(a.kind, names[-1], bbox=(0, 0, 1, 1), polygons=a.polygons,
                                              mask=a.mask))  # class and size change: now tiny
        ds.update_annotation(first[-1].id, Annotation("box", first[-1].label, bbox=(0, 0, 120, 120)))  # huge
        ds.add_annotation(ids[2], Annotation("box", names[0], bbox=(3, 4, 20, 10)))
        proposal = ds.add_annotation(ids[3], Annotation("box", names[1], bbox=(2, 2, 9, 9), score=0.5,
                                                        proposal=True))
        _agrees(ds)  # a proposal counts nowhere
        ds.update_annotation(proposal.id, Annotation("box", names[1], bbox=(2, 2, 9, 9)))  # accepted
        ds.delete_annotation(ds.example(ids[4]).annotations[0].id)
        ds.replace_annotations(ids[5], [Annotation("box", names[2], bbox=(1, 1, 30, 30))])
    _agrees(ds)
    copies = ds.copy_without_annotations(ids[6:9], directory="copies")
    ds.mirror("copies", ids[9:12])
    ds.delete_examples([ids[12], copies[0]])
    _agrees(ds)
    ds.add_annotation(copies[1], Annotation("label" if ds.type == "classification" else
                                            "anomaly" if ds.type == "anomaly" else "box",
                                            names[0], bbox=None if ds.type in ("classification", "anomaly")
                                            else (1, 1, 8, 8)))
    sub = dataset_stats(ds, directory="copies", use_cache=False)
    members = ds.examples(directory="copies")
    want = quality_report(members, ds.classes, ds.type, ds.load_bytes).to_dict()
    for key in COMPARED:
        assert sub[key] == want[key], key
    ws.delete_dataset("d")
    for table in ("agg_example_class", "agg_class_split", "agg_box_size"):
        assert ws.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE n != 0").fetchone()[0] == 0, table


def test_a_split_move_moves_the_counts(ws):
    ds, ids = add_sample(ws, "d", "shapes-detection", count=30, seed=1)
    with ds._tx():  # no public API moves an example (splits are stable); the counts must follow anyway
        ws.conn.execute("UPDATE examples SET split = CASE split WHEN 'train' THEN 'test' ELSE 'train' END")
    _agrees(ds)


def test_a_workspace_from_before_the_aggregates_is_counted_on_open(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds, _ = add_sample(ws, "d", "shapes-detection", count=30, seed=1)
    before = dataset_stats(ds, use_cache=False)
    path = ws.home / "workbench.db"
    ws.close()
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE 'agg_%'"):
        conn.execute(f"DROP TRIGGER {name}")
    for table in ("agg_example_class", "agg_class_split", "agg_box_size", "agg_example_set"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.execute("DELETE FROM meta WHERE key='aggregates'")
    conn.commit()
    conn.close()
    ws = Workspace(tmp_path / "ws")
    ds = ws.dataset("d")
    assert aggregates.verify(ws.conn) == []
    assert dataset_stats(ds, use_cache=False) == before
    version = ws.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION)
    ws.close()
    conn = sqlite3.connect(path)  # an older Workbench's definitions (a changed trigger): replaced, recounted
    conn.execute("DROP TRIGGER agg_annotation_insert")
    conn.execute("CREATE TRIGGER agg_annotation_insert AFTER INSERT ON annotations BEGIN SELECT 1; END")
    conn.execute("UPDATE agg_box_size SET n = n + 5")
    conn.execute("UPDATE meta SET value='0123456789abcdef' WHERE key='aggregates'")
    conn.commit()
    conn.close()
    ws = Workspace(tmp_path / "ws")
    assert aggregates.verify(ws.conn) == []
    ws.dataset("d").add_annotation(ws.dataset("d").example_ids()[0], Annotation("box", "circle", bbox=(1, 1, 5, 5)))
    assert aggregates.verify(ws.conn) == []


def test_verify_notices_a_count_that_drifted(ws):
    ds, _ = add_sample(ws, "d", "shapes-detection", count=20, seed=1)
    with ds._tx():
        ws.conn.execute("UPDATE agg_box_size SET n = n + 1 WHERE bin = (SELECT MIN(bin) FROM agg_box_size)")
    assert any("agg_box_size" in p for p in aggregates.verify(ws.conn))


def test_duplicates_are_searched_again_only_when_the_examples_change(ws, monkeypatch):
    """Annotation edits reuse the cached search; added examples extend the kept index (only the new images
    are compared); removed or moved examples, and directories, search again. Each answer equals a search
    from nothing."""
    from workbench.data.duplicate_index import DuplicateIndex

    ds, ids = add_sample(ws, "d", "shapes-detection", count=20, seed=1)
    calls: list[str] = []
    real_build, real_extend, real_find = DuplicateIndex.build.__func__, DuplicateIndex.extend, stats_module.find_duplicates
    monkeypatch.setattr(DuplicateIndex, "build", classmethod(lambda cls, *a, **k: calls.append("build")
                                                             or real_build(cls, *a, **k)))
    monkeypatch.setattr(DuplicateIndex, "extend", lambda self, *a, **k: (len(self.ids) and calls.append("extend"))
                        or real_extend(self, *a, **k))  # build() extends an empty index: not counted
    monkeypatch.setattr(stats_module, "find_duplicates", lambda *a, **k: calls.append("find") or real_find(*a, **k))

    def stats_now():
        got = dataset_stats(ds)
        assert got == dataset_stats(ds, use_cache=False)
        return got

    first = stats_now()
    assert calls == ["build"]  # the search from nothing it is checked against: the import did the kept one
    calls.clear()
    ds.add_annotation(ids[0], Annotation("box", ds.classes[0].name, bbox=(1, 1, 5, 5)))
    second = dataset_stats(ds)
    assert second["annotations"] == first["annotations"] + 1 and calls == []  # edit: cached search
    ds.copy_without_annotations(ids[:2])  # two more examples over images already there: exact duplicates
    third = stats_now()
    assert calls == ["extend", "build"] and third["near_duplicates"]["exact"] != first["near_duplicates"]["exact"]
    calls.clear()
    ds.delete_examples(ids[-1:])
    stats_now()
    assert calls == ["build", "build"]  # removed: no extending
    calls.clear()
    with ds._tx():
        ws.conn.execute("UPDATE examples SET split='test' WHERE id=?", (ids[1],))
        ws.conn.execute("UPDATE datasets SET version = version + 1 WHERE id=?", (ds.id,))  # no API moves splits
    stats_now()
    assert calls == ["build", "build"]  # moved split
    calls.clear()
    ds.mirror("dir", ids[:3])
    dataset_stats(ds, directory="dir")
    assert calls == ["find", "build"]  # a directory: searched whole (an index of its own, not kept)


def test_size_bins_match_the_sql_function_and_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    w, h = rng.uniform(0, 300, 2000), rng.uniform(0, 300, 2000)
    iw, ih = rng.integers(300, 900, 2000), rng.integers(300, 900, 2000)
    assert size_bins(w, h, iw, ih).tolist() == [size_bin(*t) for t in zip(w, h, iw, ih, strict=True)]
    conn = sqlite3.connect(":memory:")
    aggregates.register_functions(conn)
    assert conn.execute("SELECT wb_size_bin(?, ?, ?, ?)", (3.0, 7.5, 640, 480)).fetchone()[0] == size_bin(
        3.0, 7.5, 640, 480)
    for n in (1, 2, 7, 1000):
        b = rng.integers(0, SIZE_BINS + 1, n)
        counts = np.bincount(b, minlength=SIZE_BINS + 1)
        for q in (0.0, 0.05, 0.5, 0.95, 1.0):
            assert quantile_from_counts(counts, q) == pytest.approx(np.quantile(b / SIZE_BINS, q), abs=1e-12)


EDIT = st.tuples(st.sampled_from(["add", "move", "resize", "relabel", "delete", "propose", "accept"]),
                 st.integers(0, 9), st.integers(0, 2), st.floats(0.5, 60), st.floats(0.5, 60))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(EDIT, min_size=1, max_size=25))
def test_random_edit_sequences_keep_the_counts_exact(tmp_path_factory, edits):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    ds, ids = add_sample(ws, "d", "shapes-detection", count=10, seed=0)
    names = [c.name for c in ds.classes]
    for op, k, c, w, h in edits:
        anns = ds.example(ids[k]).annotations
        if op == "add" or not anns:
            ds.add_annotation(ids[k], Annotation("box", names[c], bbox=(0, 0, w, h)))
        elif op == "propose":
            ds.add_annotation(ids[k], Annotation("box", names[c], bbox=(1, 1, w, h), score=0.3, proposal=True))
        elif op == "delete":
            ds.delete_annotation(anns[0].id)
        else:
            a = anns[-1]
            x, y, bw, bh = a.bbox or (0, 0, 1, 1)
            new = {"move": (max(0, x - 1), y, bw, bh), "resize": (0, 0, w, h)}.get(op, (x, y, bw, bh))
            label = names[c] if op == "relabel" else a.label
            ds.update_annotation(a.id, Annotation("box", label, bbox=new))  # "accept" drops the proposal flag
    assert aggregates.verify(ws.conn) == []
    ws.close()


def test_imports_count_in_bulk_and_a_failed_import_counts_nothing(ws):
    from tests.helpers import box_batch
    from workbench.errors import ValidationError

    ds = ws.create_dataset("d", "detection")
    ds.import_batch(box_batch(30, seed=1))
    ds.import_batch(box_batch(25, seed=2))  # into existing classes and splits: added to their counts
    assert aggregates.verify(ws.conn) == []
    before = [tuple(r) for r in ws.conn.execute("SELECT * FROM agg_class_split ORDER BY 1, 2, 3")]
    bad = box_batch(5, seed=3)
    bad.items[-1].annotations[0] = Annotation("box", "cat", bbox=(0.0, 0.0, 999.0, 5.0))  # outside: all fail
    with pytest.raises(ValidationError):
        ds.import_batch(bad)
    assert [tuple(r) for r in ws.conn.execute("SELECT * FROM agg_class_split ORDER BY 1, 2, 3")] == before
    assert ws.conn.execute("SELECT COUNT(*) FROM agg_bulk").fetchone()[0] == 0
    ds.add_annotation(ds.example_ids()[0], Annotation("box", "cat", bbox=(1, 1, 4, 4)))  # per-row again
    assert aggregates.verify(ws.conn) == []
    assert dataset_stats(ds)["classes"]["cat"]["total"] == 15 + 13 + 1
