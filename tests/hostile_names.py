"""A store whose every shown name is markup that runs script when pasted into a page unescaped: dataset,
class, file name, author, directory, snapshot message, run id, and an error message that quotes a name.

Each payload sets ``window.__xss`` to its own number, so a test that sees it set knows which name leaked.
Class names cannot hold ``=`` (nor ``,``), so theirs is markup that only changes how text looks.
"""

from __future__ import annotations

from pathlib import Path

from workbench import Workspace
from workbench.data.transfer import add_sample
from workbench.train.runs import write_json

DATASET = "<img src=x onerror=window.__xss=1>"
EMPTY_DATASET = "<svg onload=window.__xss=2>"  # no examples: training it fails with an error naming it
FILE_NAME = "<img src=x onerror=window.__xss=3>"
AUTHOR = "<img src=x onerror=window.__xss=4>"
MESSAGE = "<img src=x onerror=window.__xss=5>"
DIRECTORY = "<img src=x onerror=window.__xss=6>"
CLASSES = ("<b>circle</b>&amp;", "<i>square</i>'\"", "<u>triangle</u>")
RUN_ID = f"{DATASET}-20260101-000000-abc123"
USER = "<img src=x onerror=window.__xss=7>"
NAMES = (DATASET, EMPTY_DATASET, FILE_NAME, AUTHOR, MESSAGE, DIRECTORY, *CLASSES, RUN_ID, USER)


def build(home: Path, *, count: int = 24) -> Path:
    """The hostile store in ``home``; returns the run folder (a finished run with predictions and
    ``mined.json``, written as a training run writes them)."""
    from workbench.service import mine_run

    with Workspace(home) as ws:
        ds, _ = add_sample(ws, DATASET, "shapes-classification", count=count, seed=0)
        for old, new in zip([c.name for c in ds.classes], CLASSES, strict=True):
            ds.rename_class(old, new)
        ws.create_dataset(EMPTY_DATASET, "classification", classes=["a"])
        ds.create_directory(DIRECTORY)
        ds.snapshot(MESSAGE)
        with ws.transaction():  # names a source file and a person can carry
            ws.conn.execute("UPDATE examples SET file_name = ? || '-' || id || '.png' WHERE dataset_id=?",
                            (FILE_NAME, ds.id))
            ws.conn.execute("UPDATE annotations SET author = ? WHERE dataset_id=?", (AUTHOR, ds.id))
        run = ws.runs_dir / RUN_ID
        names = [c.name for c in ds.classes]
        rows = []
        for k, ex in enumerate(ds.examples(split="test") + ds.examples(split="val")):
            truth = ex.label
            guess = names[(names.index(truth) + (k % 2)) % len(names)]
            probs = {n: (0.8 if n == guess else 0.2 / (len(names) - 1)) for n in names}
            rows.append({"example_id": ex.id, "truth": truth, "label": guess, "probabilities": probs})
        source = {"dataset": ds.name, "dataset_type": ds.type, "snapshot_id": None, "directory": None,
                  "classes": [{"name": c.name, "color": c.color} for c in ds.classes], "counts": {}}
        write_json(run / "params.json", {"run_id": RUN_ID, "config": {}, "source": source})
        write_json(run / "status.json", {"state": "finished"})
        write_json(run / "metrics.json", {"test": {"accuracy": 0.5}, "best_epoch": 1})
        write_json(run / "predictions.json", rows)
        mine_run(ds, run, count=6)
    return run
