"""The operations the kill loop interrupts: each has a parent side (``setup``, ``verify``) and a child side
(``child``: loop forever, logging ``pending`` before and ``done`` after every committed write).

Run as ``python -m tests.reliability.kill_ops OP HOME LOG SEED`` (what :func:`killing.run_child` does).
"""

from __future__ import annotations

import copy
import io
import json
import random
import shutil
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.reliability.killing import READY, EventLog, Outcome, read_log, store_checks

__all__ = ["OPERATIONS", "LoggingSink", "AnnotationModel"]


def norm(content: dict[str, Any]) -> dict[str, Any]:
    """Annotation content as JSON gives it back (lists, not tuples), for comparing with the log."""
    return json.loads(json.dumps(content, sort_keys=True))


def png(w: int, h: int, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class LoggingSink:
    """The dataset, seen by the canvas, with every write logged before (pending) and after (done) it."""

    def __init__(self, ds: Any, log: EventLog) -> None:
        self._ds, self._log = ds, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)

    def _call(self, rec: dict[str, Any], fn: Any, *args: Any) -> Any:
        self._log.write({**rec, "kind": "ann", "state": "pending"})
        out = fn(*args)
        done = {**rec, "kind": "ann", "state": "done"}
        if rec["op"] in ("add", "update"):
            done.update(id=out.id, content=norm(out.content()))
        self._log.write(done)
        return out

    def add_annotation(self, example_id: int, ann: Any, author: str = "", **kw: Any) -> Any:
        rec = {"op": "add", "ex": example_id, "content": norm(ann.content())}
        return self._call(rec, lambda *a: self._ds.add_annotation(*a, **kw), example_id, ann, author)

    def update_annotation(self, annotation_id: int, ann: Any, author: str = "", **kw: Any) -> Any:
        rec = {"op": "update", "id": annotation_id, "content": norm(ann.content())}
        return self._call(rec, lambda *a: self._ds.update_annotation(*a, **kw), annotation_id, ann, author)

    def delete_annotation(self, annotation_id: int, **kw: Any) -> None:  # version=, author= (stale check)
        self._call({"op": "delete", "id": annotation_id}, lambda i: self._ds.delete_annotation(i, **kw),
                   annotation_id)

    def set_status(self, example_id: int, status: str) -> None:
        self._call(
            {"op": "status", "ex": example_id, "status": status}, self._ds.set_status, example_id, status
        )


def store_annotations(ds: Any) -> dict[int, dict[str, Any]]:
    return {
        e.id: {"status": e.status, "anns": {a.id: norm(a.content()) for a in e.annotations}}
        for e in ds.examples()
    }


class AnnotationModel:
    """The store's annotations as the log says they must be: the initial state plus every done record,
    applied with the store's rules (a truth label replaces the previous one; a truth annotation marks a
    new example annotated)."""

    def __init__(self, init: dict[str, Any]) -> None:
        self.examples = {
            int(ex): {"status": v["status"], "anns": {int(a): c for a, c in v["anns"].items()}}
            for ex, v in init.items()
        }
        self.owner = {a: ex for ex, v in self.examples.items() for a in v["anns"]}

    def state(self) -> dict[int, dict[str, Any]]:
        return copy.deepcopy(self.examples)

    def apply(self, rec: dict[str, Any], new_id: int | None = None) -> None:
        op = rec["op"]
        if op == "add":
            ex, c, aid = rec["ex"], rec["content"], new_id if new_id is not None else rec["id"]
            anns = self.examples[ex]["anns"]
            if c["kind"] in ("label", "anomaly") and not c.get("proposal") and "bbox" not in c:
                for old in [
                    a
                    for a, v in anns.items()
                    if v["kind"] == c["kind"] and not v.get("proposal") and "bbox" not in v
                ]:
                    del anns[old]
                    self.owner.pop(old, None)
            anns[aid] = c
            self.owner[aid] = ex
            self._annotated(ex, c)
        elif op == "update":
            ex = self.owner[rec["id"]]
            self.examples[ex]["anns"][rec["id"]] = rec["content"]
            self._annotated(ex, rec["content"])
        elif op == "delete":
            ex = self.owner.pop(rec["id"])
            del self.examples[ex]["anns"][rec["id"]]
        elif op == "status":
            self.examples[rec["ex"]]["status"] = rec["status"]

    def _annotated(self, ex: int, content: dict[str, Any]) -> None:
        if not content.get("proposal") and self.examples[ex]["status"] == "new":
            self.examples[ex]["status"] = "annotated"


def _diff(expected: dict, actual: dict) -> str:
    for ex in sorted(set(expected) | set(actual)):
        if expected.get(ex) != actual.get(ex):
            return f"example {ex}: expected {expected.get(ex)} found {actual.get(ex)}"
    return "no difference"


def verify_annotations(
    records: list[dict], ds: Any, log: EventLog, out: Outcome, on_other: Any = None
) -> None:
    """Replay the log; the store must equal the replay, give or take the one pending write (resolved and
    logged here when it did commit)."""
    model = AnnotationModel(records[0]["init"])
    pending = None
    for rec in records[1:]:
        if rec.get("kind") != "ann":
            if on_other:
                on_other(rec, model)
            continue
        if rec["state"] == "pending":
            pending = rec
        else:
            model.apply(rec)
            pending = None
            out.verified += 1
    actual = store_annotations(ds)
    expected = model.state()
    if actual == expected:
        if pending:
            out.count("pending writes rolled back")
        return
    if pending is not None:
        trial = copy.deepcopy(model)
        new_id = None
        if pending["op"] == "add":
            extra = set(actual.get(pending["ex"], {}).get("anns", {})) - set(expected[pending["ex"]]["anns"])
            new_id = extra.pop() if len(extra) == 1 else -1
        try:
            trial.apply(pending, new_id=new_id)
        except KeyError:
            trial = None
        if trial is not None and trial.state() == actual:
            resolved = {**pending, "state": "done", "resolved": True}
            if new_id is not None:
                resolved["id"] = new_id
            log.write(resolved)
            out.verified += 1
            out.count("pending writes committed")
            return
    out.fail(
        f"store differs from the log ({'one write pending' if pending else 'nothing pending'}): "
        f"{_diff(expected, actual)}"
    )


def _open(home: Path):
    from workbench.data import Workspace

    return Workspace(home)


# ---------------------------------------------------------------------------------------------- operations
class Operation:
    name = ""
    delay = (0.05, 1.0)  # seconds between READY and the kill
    summed: frozenset[str] = frozenset()

    def setup(self, home: Path, log: Path) -> None:
        raise NotImplementedError

    def child(self, home: Path, log: EventLog, rng: random.Random) -> None:
        raise NotImplementedError

    def verify(self, home: Path, log: Path) -> Outcome:
        raise NotImplementedError


def _seed_dataset(home: Path, log: Path, n: int) -> None:
    from tests.helpers import box_batch

    with _open(home) as ws:
        ds = ws.create_dataset("d", "detection", classes="cat,dog,bird")
        ids = ds.import_batch(box_batch(n, classes=("cat", "dog"), size=(64, 48)))
        ds.mirror("half", ids[: n // 2])
        w = EventLog(log)
        w.write(
            {
                "kind": "init",
                "init": {
                    str(k): {"status": v["status"], "anns": {str(a): c for a, c in v["anns"].items()}}
                    for k, v in store_annotations(ds).items()
                },
            }
        )
        w.close()


def _random_box(rng: random.Random, w: int, h: int) -> tuple[float, float, float, float]:
    x0, y0 = round(rng.uniform(0, w - 3), 2), round(rng.uniform(0, h - 3), 2)
    bw, bh = round(rng.uniform(1, w - x0 - 0.5), 2), round(rng.uniform(1, h - y0 - 0.5), 2)
    return x0, y0, bw, bh


class Annotate(Operation):
    """Annotating through the canvas state object: draw, move, relabel, delete, undo, redo, next."""

    name = "annotate"
    delay = (0.05, 1.2)
    summed = frozenset(
        {"pending writes committed", "pending writes rolled back", "orphan files", "temp files"}
    )

    def setup(self, home: Path, log: Path) -> None:
        _seed_dataset(home, log, 8)

    def child(self, home: Path, log: EventLog, rng: random.Random) -> None:
        from workbench.widgets.canvas_state import CanvasState

        ws = _open(home)
        state = CanvasState(LoggingSink(ws.dataset("d"), log), user="killed-writer")
        print(READY, flush=True)
        actions = (
            ["box"] * 4 + ["move"] * 3 + ["relabel"] * 2 + ["delete"] * 2 + ["undo"] * 2 + ["redo", "next"]
        )
        while True:
            if rng.random() < 0.2:
                state.goto(rng.choice(state.ids))
            w, h = state.image_size
            action, truth = rng.choice(actions), state.truth()
            if action == "box" or (not truth and action in ("move", "relabel", "delete")):
                state.set_class(rng.choice(state.class_names))
                state.commit_new_box(_random_box(rng, w, h))
            elif action == "move":
                a = rng.choice(truth)
                state.commit_edit(a, replace(a, bbox=_random_box(rng, w, h)))
            elif action == "relabel":
                state.select(rng.choice(truth).id)
                state.set_class(rng.choice(state.class_names))
            elif action == "delete":
                state.select(rng.choice(truth).id)
                state.delete_selected()
            elif action == "undo":
                state.undo()
            elif action == "redo":
                state.redo()
            elif not state.next():
                state.goto(state.ids[0])

    def verify(self, home: Path, log: Path) -> Outcome:
        out = Outcome()
        with _open(home) as ws:
            w = EventLog(log)
            verify_annotations(read_log(log), ws.dataset("d"), w, out)
            w.close()
            store_checks(ws, out)
        return out


class Import(Operation):
    """Importing COCO folders of 4-24 new images each; every import all or nothing."""

    name = "import"
    delay = (0.05, 2.0)
    summed = frozenset(
        {"imports committed while pending", "imports rolled back", "orphan files", "temp files"}
    )

    def setup(self, home: Path, log: Path) -> None:
        with _open(home) as ws:
            ws.create_dataset("d", "detection", classes="cat,dog")

    @staticmethod
    def write_source(src: Path, k: int, n: int) -> int:
        src.mkdir(parents=True)
        images, anns = [], []
        for i in range(n):
            name = f"b{k}_{i:03d}.png"
            (src / name).write_bytes(png(40, 30, k * 1000 + i))
            images.append({"id": i + 1, "file_name": name, "width": 40, "height": 30})
            for j in range(i % 3 + 1):
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": i + 1,
                        "category_id": 1 + j % 2,
                        "bbox": [1 + j, 2, 10 + j, 8],
                    }
                )
        doc = {
            "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        }
        (src / "annotations.json").write_text(json.dumps(doc))
        return len(anns)

    def child(self, home: Path, log: EventLog, rng: random.Random) -> None:
        from workbench.data.transfer import import_source

        ws = _open(home)
        k = 1 + max((r["batch"] for r in read_log(log.path) if r.get("kind") == "batch"), default=0)
        scratch = home.parent / "sources"
        print(READY, flush=True)
        while True:
            n = rng.randint(4, 24)
            src = scratch / f"b{k}"
            shutil.rmtree(src, ignore_errors=True)
            m = self.write_source(src, k, n)
            rec = {"kind": "batch", "batch": k, "n": n, "anns": m}
            log.write({**rec, "state": "pending"})
            import_source(ws, "d", src, "coco", directory=f"b{k}")
            log.write({**rec, "state": "done"})
            shutil.rmtree(src)
            k += 1

    def verify(self, home: Path, log: Path) -> Outcome:
        out = Outcome()
        with _open(home) as ws:
            ds = ws.dataset("d")
            found: dict[int, list[int]] = {}
            for e in ds.examples():
                found.setdefault(int(e.file_name.split("_")[0][1:]), [0, 0])
                found[int(e.file_name.split("_")[0][1:])][0] += 1
                found[int(e.file_name.split("_")[0][1:])][1] += len(e.annotations)
            dirs = {d["name"]: d["examples"] for d in ds.directories()}
            last: dict[int, dict] = {}
            for r in read_log(log):
                if r.get("kind") == "batch":
                    last[r["batch"]] = r
            w = EventLog(log)
            for k, r in sorted(last.items()):
                got = found.pop(k, [0, 0])
                whole = got == [r["n"], r["anns"]] and dirs.get(f"b{k}") == r["n"]
                if r["state"] == "done" or r.get("resolved"):
                    out.verified += 1
                    out.count("examples verified", r["n"])
                    if not whole:
                        out.fail(
                            f"import b{k} was committed with {r['n']} images / {r['anns']} boxes; the "
                            f"store has {got[0]} / {got[1]} (directory: {dirs.get(f'b{k}')})"
                        )
                elif r["state"] == "rolled back":
                    if got != [0, 0] or f"b{k}" in dirs:
                        out.fail(
                            f"import b{k} was found rolled back, now the store has {got[0]} of its images"
                        )
                elif got == [0, 0] and f"b{k}" not in dirs:
                    w.write({**r, "state": "rolled back"})
                    out.count("imports rolled back")
                elif whole:
                    w.write({**r, "state": "done", "resolved": True})
                    out.verified += 1
                    out.count("examples verified", r["n"])
                    out.count("imports committed while pending")
                else:
                    out.fail(
                        f"half an import: b{k} has {got[0]} of {r['n']} images, {got[1]} of {r['anns']} boxes"
                    )
            w.close()
            if found:
                out.fail(f"examples of imports never started: batches {sorted(found)}")
            store_checks(ws, out)
        return out


class Snapshot(Operation):
    """An edit, then a snapshot (of the dataset, or of its ``half`` directory), again and again."""

    name = "snapshot"
    delay = (0.05, 1.0)
    summed = frozenset(
        {"pending writes committed", "pending writes rolled back", "orphan files", "temp files"}
    )

    def __init__(self) -> None:
        self.checked: set[tuple[int, str]] = set()

    def setup(self, home: Path, log: Path) -> None:
        _seed_dataset(home, log, 10)

    def child(self, home: Path, log: EventLog, rng: random.Random) -> None:
        from workbench.data import Annotation

        ws = _open(home)
        ds = ws.dataset("d")
        sink = LoggingSink(ds, log)
        ids = ds.example_ids()
        k = 1 + max((r["k"] for r in read_log(log.path) if r.get("kind") == "snap"), default=0)
        print(READY, flush=True)
        while True:
            ex = rng.choice(ids)
            sink.add_annotation(
                ex,
                Annotation("box", rng.choice(["cat", "dog", "bird"]), bbox=_random_box(rng, 64, 48)),
                "snapshotter",
            )
            anns = ds.example(ex).annotations
            if len(anns) > 2 and rng.random() < 0.4:
                sink.delete_annotation(rng.choice(anns).id)
            directory = "half" if k % 3 == 0 else None
            rec = {"kind": "snap", "k": k, "directory": directory}
            log.write({**rec, "state": "pending"})
            info = ds.snapshot(f"s{k}", directory=directory)
            log.write(
                {
                    **rec,
                    "state": "done",
                    "id": info.id,
                    "examples": info.examples,
                    "annotations": info.annotations,
                }
            )
            k += 1

    def verify(self, home: Path, log: Path) -> Outcome:
        from workbench.data.snapshots import _digest

        out = Outcome()
        with _open(home) as ws:
            ds = ws.dataset("d")
            half = set(ds.example_ids(directory="half"))

            def check_snapshot(rec: dict, model: AnnotationModel) -> None:
                if rec.get("kind") != "snap" or rec["state"] != "done":
                    return
                out.count("snapshots verified")
                if (rec["k"], rec["id"]) in self.checked:
                    return  # read back and compared after an earlier kill
                self.checked.add((rec["k"], rec["id"]))
                snap = ds.load_snapshot(rec["id"])
                want = {
                    ex: sorted(json.dumps(c, sort_keys=True) for c in v["anns"].values())
                    for ex, v in model.examples.items()
                    if rec["directory"] is None or ex in half
                }
                got = {
                    e.id: sorted(json.dumps(norm(a.content()), sort_keys=True) for a in e.annotations)
                    for e in snap.examples
                }
                if got != want or snap.info.examples != rec["examples"]:
                    out.fail(f"snapshot {rec['id']} (s{rec['k']}) does not hold the state it was taken of")

            w = EventLog(log)
            verify_annotations(read_log(log), ds, w, out, on_other=check_snapshot)
            w.close()
            for sid, n, raw in ws.conn.execute("SELECT id, examples, payload FROM snapshots"):
                payload = json.loads(zlib.decompress(raw))
                if _digest(payload) != sid or len(payload["examples"]) != n:
                    out.fail(f"snapshot {sid} is damaged: its content does not hash to its id")
            store_checks(ws, out)
        return out


class Train(Operation):
    """Training small-cnn on 200 digits, 4 epochs a run; a killed run is resumed by the next writer.

    The writer says READY once it has saved its first epoch (however slow the machine, every writer makes
    progress); the kill then lands in a later epoch, a checkpoint save, the test scoring, or the setup of
    the next run."""

    name = "train"
    delay = (0.0, 3.0)
    summed = frozenset({"temp files left by kills"})

    def setup(self, home: Path, log: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)

    def child(self, home: Path, log: EventLog, rng: random.Random) -> None:
        from tests.train.sources import quick_config, sample_source
        from workbench.train.callbacks import Callback
        from workbench.train.runs import read_json
        from workbench.train.trainer import Trainer, resume

        class LogEpochs(Callback):
            def __init__(self, run: Path) -> None:
                self.run = run

            def on_epoch_end(self, record: dict[str, Any]) -> None:
                log.write({"kind": "epoch", "run": self.run.name, "epoch": record["epoch"], "state": "done"})
                if not ready:
                    print(READY, flush=True)
                    ready.append(True)

        ready: list[bool] = []
        source = sample_source("digits", 200)
        config = quick_config(model="small-cnn", image_size=16, epochs=4, batch_size=32)
        while True:
            runs = sorted(p for p in home.iterdir() if p.is_dir() and p.name.startswith("run"))
            last = runs[-1] if runs else None
            state = read_json(last / "status.json", {}).get("state") if last else None
            if (
                last is not None
                and (last / "params.json").exists()
                and state not in ("finished", "early_stopped")
            ):
                resume(last, source, [LogEpochs(last)])
            elif last is not None and not (last / "params.json").exists():
                Trainer(config, source, last, [LogEpochs(last)]).fit()
            else:
                run = home / f"run{len(runs) + 1:03d}"
                Trainer(config, source, run, [LogEpochs(run)]).fit()

    def verify(self, home: Path, log: Path) -> Outcome:
        from workbench.train.checkpoint import load_checkpoint, load_model
        from workbench.train.errors import CheckpointError

        out = Outcome()
        logged: dict[str, int] = {}
        for r in read_log(log):
            if r.get("kind") == "epoch":
                logged[r["run"]] = max(logged.get(r["run"], 0), r["epoch"])
                out.verified += 1
        finished = 0
        for run in sorted(p for p in home.iterdir() if p.is_dir()):
            for name in ("params.json", "status.json", "metrics.json", "versions.json", "history.jsonl"):
                p = run / name
                if p.exists():
                    try:
                        text = p.read_text()
                        lines = text.splitlines() if p.suffix == ".jsonl" else [text]
                        [json.loads(line) for line in lines if line.strip()]
                    except ValueError as e:
                        out.fail(f"{p} does not parse: {e}")
            epochs = {}
            for name in ("last.pt", "best.pt"):
                p = run / "checkpoints" / name
                if p.exists():
                    try:
                        epochs[name] = int(load_checkpoint(p)["epoch"])
                        out.count("checkpoints loaded")
                    except CheckpointError as e:
                        out.fail(f"a kill left a checkpoint that does not load: {e}")
            if logged.get(run.name, 0) > epochs.get("last.pt", 0):
                out.fail(
                    f"{run.name}: epoch {logged[run.name]} was logged after its checkpoint was saved, but "
                    f"last.pt holds epoch {epochs.get('last.pt')}"
                )
            if epochs:
                load_model(run)
            status = json.loads((run / "status.json").read_text()) if (run / "status.json").exists() else {}
            if status.get("state") == "finished":
                finished += 1
                if not (run / "metrics.json").exists():
                    out.fail(f"{run.name} finished without metrics.json")
            out.count("temp files left by kills", len([p for p in run.rglob(".*.tmp")]))
            for p in run.rglob(".*.tmp"):
                p.unlink()  # counted once
        out.counts["runs finished"] = finished
        return out


OPERATIONS: dict[str, type[Operation]] = {op.name: op for op in (Annotate, Import, Snapshot, Train)}


def main(argv: list[str]) -> None:
    op, home, log, seed = argv
    writer = EventLog(Path(log))
    OPERATIONS[op]().child(Path(home), writer, random.Random(int(seed)))


if __name__ == "__main__":
    main(sys.argv[1:])
