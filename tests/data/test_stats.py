"""``stats`` counted in SQL agrees with the pure-Python quality report over the same examples."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.data import Annotation
from workbench.data.quality import quality_report
from workbench.data.stats import dataset_stats
from workbench.data.transfer import add_sample

SAMPLES = ["digits", "shapes-classification", "shapes-detection", "shapes-segmentation", "shapes-anomaly"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_sql_stats_equal_python_report(ws, sample):
    ds, ids = add_sample(ws, "d", sample, count=60, seed=2)
    ex = ds.examples()
    # an unannotated copy, a proposal and a directory make it less trivial
    ds.copy_without_annotations(ids[:2], directory="copies")
    if ds.type in ("detection", "segmentation"):
        ds.add_annotation(ids[3], Annotation("box", ds.classes[0].name, bbox=(1, 1, 5, 5), score=0.4, proposal=True))
    ex = ds.examples()
    want = quality_report(ex, ds.classes, ds.type, ds.load_bytes).to_dict()
    got = dataset_stats(ds)
    for key in ("classes", "warnings", "box_sizes", "unannotated", "annotated", "can_train", "balance"):
        assert got[key] == want[key], key
    assert got["near_duplicates"]["exact"] == want["near_duplicates"]["exact"]
    assert got["examples"] == 62 and sum(got["splits"].values()) == 62
    sub = dataset_stats(ds, directory="copies")
    assert sub["examples"] == 2 and sub["unannotated"] == ds.example_ids(directory="copies")


def test_stats_json_cli_shape(capsys, tmp_path):
    home = str(tmp_path / "ws")
    assert main(["--home", home, "sample", "d", "shapes-detection", "--count", "30"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "stats", "d", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert {"examples", "annotations", "splits", "classes", "warnings"} <= set(st)
    assert st["splits"] == {"train": 24, "val": 3, "test": 3}
    assert set(st["classes"]) == {"circle", "square", "triangle"}
    assert all({"train", "val", "test", "total"} <= set(v) for v in st["classes"].values())
    assert st["annotations"] == sum(v["total"] for v in st["classes"].values())


def test_stats_cache_follows_changes(ws):
    ds, ids = add_sample(ws, "d", "shapes-detection", count=20, seed=2)
    first = dataset_stats(ds)
    keys = [json.loads(r[0]) for r in ws.conn.execute("SELECT key FROM stats_cache")]
    assert sorted(str(k[0]) for k in keys) == ["None", "near_duplicates"]  # the stats, and the duplicates apart
    assert dataset_stats(ds) == first
    ds.add_annotation(ids[0], Annotation("box", "circle", bbox=(1, 1, 5, 5)))
    assert dataset_stats(ds)["annotations"] == first["annotations"] + 1
    ds.rename_class("circle", "disc")
    assert "disc" in dataset_stats(ds)["classes"]
    assert dataset_stats(ds, use_cache=False) == dataset_stats(ds)


def _copy(ds, example_id, name):
    from workbench.data.records import ImportBatch, ImportItem

    ds.import_batch(ImportBatch(items=[ImportItem(file_name=name, data=ds.load_bytes(ds.example(example_id).blob))]))


def test_cached_stats_keep_the_duplicate_part_once(ws):
    """The duplicate groups (megabytes on a large dataset full of near copies) are kept once, with the
    duplicate search's answer: the cached stats point at it instead of holding a second copy, and a cached
    read gives back the same stats, duplicates included."""
    ds, ids = add_sample(ws, "d", "shapes-detection", count=20, seed=2)
    _copy(ds, ids[0], "copy.png")  # an exact copy
    first = dataset_stats(ds)
    assert first["near_duplicates"]["exact"], "the copy is found"
    payload = json.loads(ws.conn.execute("SELECT payload FROM stats_cache WHERE key=?",
                                         (json.dumps([None, True]),)).fetchone()[0])
    assert payload["near_duplicates"] is None and payload["_near_duplicates_at"][0] == json.dumps(
        ["near_duplicates", None, True])
    assert dataset_stats(ds) == first == dataset_stats(ds, use_cache=False)
    a = ds.example(ids[1]).annotations[0]
    ds.update_annotation(a.id, Annotation("box", a.label, bbox=(1, 1, 6, 6)))  # an edit: the example set stays
    assert dataset_stats(ds)["near_duplicates"] == first["near_duplicates"]


def test_duplicates_read_once_per_process_never_stale(tmp_path):
    """The parsed duplicate answer is remembered in the process; a workspace made again at the same place
    (same dataset id, same example-set version) must not get the old one."""
    from workbench.data import Workspace

    home = tmp_path / "ws"
    w = Workspace(home)
    ds, ids = add_sample(w, "d", "shapes-detection", count=12, seed=3)
    _copy(ds, ids[0], "copy.png")
    assert dataset_stats(ds)["near_duplicates"]["exact"]
    w.close()
    import shutil

    shutil.rmtree(home)
    w = Workspace(home)
    ds, _ = add_sample(w, "d", "shapes-detection", count=12, seed=4)
    _copy(ds, ds.example_ids()[-1], "other.png")
    fresh = dataset_stats(ds, use_cache=False)["near_duplicates"]
    assert dataset_stats(ds)["near_duplicates"] == fresh
    w.close()


def test_unannotated_list_reads_only_new_examples(ws):
    """The unannotated list of a detection dataset walks the examples still new through a partial index,
    not every example (100,000 annotated examples took 40-65 ms per stats)."""
    ds, _ = add_sample(ws, "d", "shapes-detection", count=10, seed=2)
    plan = " ".join(str(tuple(r)) for r in ws.conn.execute(
        "EXPLAIN QUERY PLAN SELECT e.id FROM examples e WHERE e.dataset_id=? AND e.status='new' AND NOT EXISTS ("
        "SELECT 1 FROM agg_example_class c WHERE c.example_id = e.id AND c.objects > 0) ORDER BY e.id", (ds.id,)))
    assert "examples_new" in plan
