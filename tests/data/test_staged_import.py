"""Long imports hold the write lock only for short transactions (other writers stay fast), and stay
all-or-nothing: nobody sees a half import, a failure or a kill leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.bench_import_lock import measure
from benchmarks.bench_store import make_coco
from tests.helpers import box_batch
from workbench.data import Annotation, Workspace, aggregates, staged
from workbench.data.stats import dataset_stats
from workbench.data.transfer import import_source
from workbench.errors import AlreadyExistsError, NotFoundError

ROOT = Path(__file__).resolve().parents[2]


def test_other_writers_stay_fast_during_a_50000_box_import_in_another_process(tmp_path):
    coco = make_coco(tmp_path / "src", 500, 100)
    r = measure(tmp_path / "ws", coco, tmp_path / "src" / "images")
    assert r["examples"] == 500 and r["edits"] >= 50
    # written in short transactions, not one: at most CHUNK_ROWS rows each (the lock time sizes them below that,
    # so how many depends on the machine's speed)
    assert r["transactions"] >= -(-50_500 // staged.CHUNK_ROWS) >= 3
    assert r["p99_ms"] < 100.0, r
    ws = Workspace(tmp_path / "ws")
    assert ws.dataset("big").count() == 500 and sum(
        len(e.annotations) for e in ws.dataset("big").examples()) == 50_000
    assert aggregates.verify(ws.conn) == [] and staged.pending(ws.conn) == []
    ws.close()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(staged, "CHUNK_ROWS", 7)
    monkeypatch.setattr(staged, "MIN_ROWS", 1)
    monkeypatch.setattr(staged, "PAUSE_S", 0.0)


def _visible(ws: Workspace) -> tuple:
    """What readers see: the dataset list, and per dataset its examples (a snapshot's content), classes, stats, directories."""
    out = []
    for d in ws.datasets():
        ds = ws.dataset(d["name"])
        stats = dataset_stats(ds, use_cache=False, near_duplicates=False)
        stats.pop("_version", None)
        out.append((d, ds.examples(), [c.name for c in ds.classes], stats, ds.directories()))
    return tuple(out)


def test_nobody_sees_a_half_import(ws, small_chunks, monkeypatch):
    ds = ws.create_dataset("d", "detection", classes="cat")
    ds.import_batch(box_batch(3, classes=("cat",)))
    reader = Workspace(ws.home)  # another process's view
    before = _visible(reader)
    seen = []

    def look(_held: float) -> None:
        seen.append(_visible(reader))
        assert aggregates.verify(reader.conn) == []

    monkeypatch.setattr(staged, "ON_CHUNK", look)
    ids = ds.import_batch(box_batch(12, seed=1, classes=("cat", "dog")), directory="new")
    after = _visible(reader)
    assert len(seen) > 5 and all(s == before for s in seen[:-1])  # every chunk: nothing yet
    assert seen[-1] == after != before  # the one final commit shows all of it
    assert reader.dataset("d").count() == 15 and [c.name for c in reader.dataset("d").classes] == ["cat", "dog"]
    assert reader.dataset("d").example_ids(directory="new") == ids
    seen.clear()
    _, new_ids = import_source(ws, "fresh", *_coco(ws.home.parent, 4), "coco",
                               images_dir=ws.home.parent / "src" / "images", directory="first")
    assert seen and all(s == after for s in seen[:-1]) and not any(d["name"].startswith("pending") for d in
                                                                    ws.datasets())
    assert reader.dataset("fresh").count() == 4 == len(new_ids)
    assert reader.dataset("fresh").example_ids(directory="first") == new_ids
    assert aggregates.verify(reader.conn) == [] and staged.pending(reader.conn) == []
    reader.close()


def _coco(root: Path, n: int) -> tuple[Path]:
    return (make_coco(root / "src", n, 5),)


def test_a_failed_import_leaves_nothing(ws, small_chunks, monkeypatch):
    ds = ws.create_dataset("d", "detection", classes="cat")
    other = Workspace(ws.home)
    calls = []

    def delete_target(_held: float) -> None:
        calls.append(1)
        if len(calls) == 3:
            other.delete_dataset("d")  # someone deletes the dataset during the import

    monkeypatch.setattr(staged, "ON_CHUNK", delete_target)
    with pytest.raises(NotFoundError, match="deleted during the import"):
        ds.import_batch(box_batch(5, classes=("cat", "dog")))
    monkeypatch.setattr(staged, "ON_CHUNK", None)
    assert ws.datasets() == [] and staged.pending(ws.conn) == []
    assert ws.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 0
    assert ws.conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == 0
    assert ws.conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0
    assert aggregates.verify(ws.conn) == [] and ws.check() == []

    def create_same(_held: float) -> None:  # someone creates the dataset the import would create
        if not other.has_dataset("fresh"):
            other.create_dataset("fresh", "detection", classes="a")

    monkeypatch.setattr(staged, "ON_CHUNK", create_same)
    src = make_coco(ws.home.parent / "src", 4, 5)
    with pytest.raises(AlreadyExistsError):
        import_source(ws, "fresh", src, "coco", images_dir=ws.home.parent / "src" / "images")
    assert [d["name"] for d in ws.datasets()] == ["fresh"] and ws.dataset("fresh").count() == 0
    assert ws.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 0
    assert staged.pending(ws.conn) == [] and aggregates.verify(ws.conn) == [] and ws.check() == []
    other.close()


CHILD = """
import sys
from workbench.data import Workspace, staged
from workbench.data.transfer import import_source
staged.CHUNK_ROWS = 200
staged.IDLE_PAUSE_S = 0.2
ws = Workspace(sys.argv[1])
print("ready", flush=True)
import_source(ws, sys.argv[4], sys.argv[2], "coco", images_dir=sys.argv[3])
print("done", flush=True)
"""


@pytest.mark.parametrize("into", ["new", "existing"])
def test_a_kill_mid_import_leaves_nothing_visible_and_the_next_open_cleans_up(tmp_path, into):
    src = make_coco(tmp_path / "src", 60, 50)
    ws = Workspace(tmp_path / "ws")
    if into == "existing":
        ds = ws.create_dataset("big", "detection", classes="a")
        (ex,) = ds.import_batch(box_batch(1, classes=("a",)))
    before = _visible(ws)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "ws"), str(src), str(tmp_path / "src" / "images"),
                             "big"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # until a few chunks of the import are written
            if ws.conn.execute("SELECT COUNT(*) FROM examples e JOIN pending_imports p ON p.shadow_id = e.dataset_id"
                               ).fetchone()[0] >= 10:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the import never wrote its first chunks")
        assert _visible(ws) == before  # half written, invisible
        live = Workspace(tmp_path / "ws")  # opening the workspace meanwhile leaves a live import alone
        assert len(staged.pending(live.conn)) == 1
        live.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _visible(ws) == before and len(staged.pending(ws.conn)) == 1  # still invisible
    ws.close()
    ws = Workspace(tmp_path / "ws")  # the next open removes what the killed import wrote
    assert staged.pending(ws.conn) == [] and _visible(ws) == before
    assert ws.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == (1 if into == "existing" else 0)
    assert ws.conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == (1 if into == "existing" else 0)
    assert aggregates.verify(ws.conn) == [] and ws.check() == []
    if into == "existing":  # and the dataset works as before
        ds = ws.dataset("big")
        ds.add_annotation(ex, Annotation("box", "a", bbox=(1, 1, 2, 2)))
        assert aggregates.verify(ws.conn) == []
    ws.close()


def _triggers(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' ORDER BY name")]


def test_the_row_triggers_a_large_import_drops_are_never_missing_for_anyone_else(ws, small_chunks, monkeypatch):
    """Each short transaction drops the per-row insert triggers ``agg_bulk`` makes no-ops and creates them
    again, the same SQL, before it commits: another connection sees every trigger at every chunk, the
    schema is the same after the import, and an edit after it is counted by them (verify agrees)."""
    ds = ws.create_dataset("d", "detection", classes="cat")
    reader = Workspace(ws.home)
    before = _triggers(reader.conn)
    assert {n for n, _sql in before} >= set(aggregates.BULK_TRIGGERS)
    seen = []
    monkeypatch.setattr(staged, "ON_CHUNK", lambda _held: seen.append(_triggers(reader.conn)))
    ds.import_batch(box_batch(12, seed=1, classes=("cat", "dog")))
    assert len(seen) > 5 and all(s == before for s in seen)
    assert _triggers(ws.conn) == before
    ex = ds.examples()[0]
    ds.add_annotation(ex.id, Annotation("box", "dog", bbox=(1, 1, 5, 5)))  # counted by the trigger put back
    assert aggregates.verify(ws.conn) == []
    reader.close()


def test_an_error_inside_the_triggers_off_block_rolls_them_back_with_the_transaction(ws):
    before = _triggers(ws.conn)
    with pytest.raises(KeyError):
        with ws.transaction() as conn:
            with aggregates.row_triggers_off(conn):
                assert not {n for n, _sql in _triggers(conn)} & set(aggregates.BULK_TRIGGERS)
                raise KeyError("a failure inside the block")
    assert _triggers(ws.conn) == before
    with pytest.raises(RuntimeError, match="open write transaction"):
        with aggregates.row_triggers_off(ws.conn):
            pass
