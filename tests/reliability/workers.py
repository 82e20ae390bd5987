"""Processes that share one workspace at once (test_concurrency.py): annotating writers, an importer and a
stats reader. Each waits for a ``go`` file, so they really overlap, and writes what it committed to a JSON
file. Run as ``python -m tests.reliability.workers KIND HOME OUT [INDEX]``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["CLASSES", "EDITS", "BATCHES", "BATCH_SIZE", "contested_content"]

CLASSES = ("cat", "dog", "bird", "fish")
EDITS = 120  # per writer
BATCHES, BATCH_SIZE = 5, 10  # the importer's
IMAGE_W, IMAGE_H = 64, 48


def contested_content(writer: int, seq: int) -> tuple[str, tuple[float, float, float, float]]:
    """What writer ``writer``'s ``seq``-th edit of the contested box says: unique per (writer, seq)."""
    return CLASSES[writer], (1.0 + writer, 1.0 + seq * 0.25, 5.0, 4.0)


def _wait_for_go(home: Path, name: str) -> None:
    (home.parent / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (home.parent / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no go signal")
        time.sleep(0.005)


def writer(home: Path, out: Path, index: int) -> dict[str, Any]:
    """Annotate through the canvas: boxes on this writer's own examples and on the shared ones, deletes of
    its own boxes, and edits of the one contested box every writer edits (an edit made from a view someone
    else changed since is refused, never a silent overwrite: it is counted and the writer goes on)."""
    from workbench.data import Workspace
    from workbench.errors import EditConflictError
    from workbench.widgets.canvas_state import CanvasState

    ws = Workspace(home)
    meta = json.loads((home.parent / "meta.json").read_text())
    state = CanvasState(ws.dataset("d"), user=f"writer{index}")
    own, shared, contested = meta["own"][str(index)], meta["shared"], meta["contested"]
    added: list[int] = []
    deleted: list[int] = []
    updates: list[dict[str, Any]] = []
    refused: list[int] = []
    _wait_for_go(home, f"writer{index}")
    start = time.monotonic()
    for seq in range(EDITS):
        kind = seq % 4
        if kind in (0, 1):  # a new box on an own example (0) or a shared one (1)
            state.goto(own[(seq // 4) % len(own)] if kind == 0 else shared[(seq // 4) % len(shared)])
            state.set_class(CLASSES[index])
            state.select(None)
            state.commit_new_box((2.0 + seq % 20, 3.0 + index, 6.0, 5.0))
            added.append(state.selected_id)
        elif kind == 2 and seq % 8 == 2 and len(added) > 1:  # delete one of its own boxes on an own example
            state.goto(own[0])
            mine = [
                a
                for a in state.truth()
                if a.author == f"writer{index}" and a.id in added and a.id not in deleted
            ]
            if mine:
                state.select(mine[0].id)
                state.delete_selected()
                deleted.append(mine[0].id)
        else:  # the contested box: everyone edits it
            state.goto(meta["contested_example"])
            state.reload()
            cur = state.annotation(contested)
            label, box = contested_content(index, seq)
            try:
                state.commit_edit(cur, replace(cur, label=label, bbox=box))
            except EditConflictError:  # another writer's edit came between the reload and this one
                refused.append(seq)
                continue
            updates.append({"seq": seq, "label": label, "bbox": list(box), "t": time.monotonic()})
    result = {
        "index": index,
        "added": added,
        "deleted": deleted,
        "updates": updates,
        "refused": refused,
        "span": [start, time.monotonic()],
    }
    out.write_text(json.dumps(result))
    return result


def importer(home: Path, out: Path) -> dict[str, Any]:
    from tests.reliability.kill_ops import Import
    from workbench.data import Workspace
    from workbench.data.transfer import import_source

    ws = Workspace(home)
    done = []
    _wait_for_go(home, "importer")
    start = time.monotonic()
    for k in range(1, BATCHES + 1):
        src = home.parent / f"src{k}"
        Import.write_source(src, k, BATCH_SIZE)
        _, ids = import_source(ws, "d", src, "coco", directory=f"imp{k}")
        done.append({"batch": k, "examples": len(ids)})
    result = {"batches": done, "span": [start, time.monotonic()]}
    out.write_text(json.dumps(result))
    return result


def reader(home: Path, out: Path) -> dict[str, Any]:
    """Stats while the others write; every read must see whole imports only."""
    from workbench.data import Workspace
    from workbench.data.stats import dataset_stats

    ws = Workspace(home)
    ds = ws.dataset("d")
    base = json.loads((home.parent / "meta.json").read_text())["examples"]
    reads, torn = 0, []
    _wait_for_go(home, "reader")
    while not (home.parent / "stop").exists():
        stats = dataset_stats(ds, near_duplicates=False)
        imported = ws.conn.execute("SELECT COUNT(*) FROM examples WHERE file_name LIKE 'b%'").fetchone()[0]
        if (stats["examples"] - base) % BATCH_SIZE or imported % BATCH_SIZE:
            torn.append([stats["examples"], imported])
        reads += 1
    result = {"reads": reads, "torn": torn}
    out.write_text(json.dumps(result))
    return result


KINDS = {"writer": writer, "importer": importer, "reader": reader}

if __name__ == "__main__":
    kind, home, out, *rest = sys.argv[1:]
    KINDS[kind](Path(home), Path(out), *(int(x) for x in rest))
