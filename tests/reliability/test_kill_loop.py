"""Writers killed with SIGKILL at random moments leave a sound store, every committed edit, no half import or
snapshot, no visible orphan image and only loadable checkpoints (a CI-sized run of scripts/kill_loop.py).

The second half checks the checker: damage made behind the log's back is reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.reliability.kill_ops import OPERATIONS
from tests.reliability.killing import ROOT, format_table, read_log, run_kill_loop
from workbench.data import Workspace

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

CI_PLAN = {"annotate": 11, "import": 9, "snapshot": 8, "train": 3}


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill-loop")
    results = run_kill_loop(root, CI_PLAN, seed=7)
    print("\n" + format_table(results))
    return root, results


def test_every_kill_leaves_a_sound_store_and_every_committed_edit(killed):
    _, results = killed
    failures = [f"{r.op}: {f}" for r in results.values() for f in r.failures]
    assert not failures, "\n".join(failures)
    assert {op: r.kills for op, r in results.items()} == CI_PLAN
    assert results["annotate"].verified > CI_PLAN["annotate"]  # edits were made and verified, not just kills
    assert results["import"].counts["examples verified"] > 0
    assert results["snapshot"].counts["snapshots verified"] > 0
    assert results["train"].counts.get("checkpoints loaded", 0) > 0


def _fresh_verify(root, op):
    return OPERATIONS[op]().verify(root / op / "home", root / op / "log.jsonl")


def test_the_checker_sees_a_lost_edit(killed):
    root, _ = killed
    with Workspace(root / "annotate" / "home") as ws:
        (aid,) = ws.conn.execute("SELECT id FROM annotations ORDER BY id DESC LIMIT 1").fetchone()
        with ws.transaction():
            ws.conn.execute("DELETE FROM annotations WHERE id=?", (aid,))
    out = _fresh_verify(root, "annotate")
    assert out.failures and "store differs from the log" in out.failures[0]


def test_the_checker_sees_half_an_import(killed):
    root, _ = killed
    with Workspace(root / "import" / "home") as ws:
        (eid,) = ws.conn.execute("SELECT id FROM examples ORDER BY id DESC LIMIT 1").fetchone()
        with ws.transaction():
            ws.conn.execute("DELETE FROM examples WHERE id=?", (eid,))
    assert any("import" in f for f in _fresh_verify(root, "import").failures)


def test_the_checker_sees_a_damaged_snapshot(killed):
    root, _ = killed
    with Workspace(root / "snapshot" / "home") as ws, ws.transaction():
        ws.conn.execute("UPDATE snapshots SET examples = examples + 1")
    assert any("damaged" in f for f in _fresh_verify(root, "snapshot").failures)


def test_the_checker_sees_a_broken_checkpoint(killed):
    root, _ = killed
    last = sorted((root / "train" / "home").glob("run*/checkpoints/last.pt"))[-1]
    last.write_bytes(last.read_bytes()[:1000])
    assert any("does not load" in f for f in _fresh_verify(root, "train").failures)


def test_a_torn_log_line_is_cut_off(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert read_log(log) == [{"a": 1}, {"b": 2}]
    assert log.read_bytes() == b'{"a": 1}\n{"b": 2}\n'


KILLED_BLOB_WRITE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workbench.data.blobs import BlobStore, sha256_bytes
    from workbench.fsutil import atomic_write

    store = BlobStore(Path(sys.argv[1]) / "blobs")
    data = b"half an image" * 4000  # larger than SMALL_BYTES: a file
    def slow(fh):
        fh.write(data[:5000])
        fh.flush()
        print("READY", flush=True)
        time.sleep(60)
    atomic_write(store.path(sha256_bytes(data)), slow)
""")


def test_gc_reclaims_the_temp_file_of_a_killed_image_write(tmp_path):
    """A writer killed inside ``atomic_write`` leaves ``.<hash>.<random>.tmp`` in the blob folder: invisible
    to the store, and reclaimed by gc (it used to look for another name and keep them forever)."""
    home = tmp_path / "ws"
    Workspace(home).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_BLOB_WRITE, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout.readline().strip() == "READY"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    temps = list((home / "blobs").rglob(".*.tmp"))
    assert len(temps) == 1
    with Workspace(home) as ws:
        assert ws.check() == [] and ws.blobs.all() == set()  # not a visible image
        assert ws.gc(grace_s=3600)["temp_removed"] == 0  # a running import's temp files are young: kept
        assert ws.gc(grace_s=0)["temp_removed"] == 1
    assert not list((home / "blobs").rglob(".*.tmp"))


def test_kill_loop_script_prints_its_table(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/kill_loop.py",
            "--kills",
            "2",
            "--only",
            "annotate,snapshot",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split(" | ")[:4] == ["operation", "kills", "committed units verified", "failures"]
    rows = {line.split(" | ")[0].strip(): line.split(" | ") for line in lines[2:]}
    assert rows["annotate"][1].strip() == "1" and rows["snapshot"][1].strip() == "1"
    assert rows["total"][3].strip() == "0"
    assert json.loads((tmp_path / "annotate" / "log.jsonl").read_text().splitlines()[0])["kind"] == "init"
