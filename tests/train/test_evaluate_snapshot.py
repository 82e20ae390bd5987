"""`workbench evaluate RUN` scores against the snapshot the run trained on: accepting a proposal afterwards
leaves the default numbers equal to the run's own test metrics; --live scores today's labels and says so."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.data import Workspace
from workbench.service import mine_run
from workbench.train.from_store import evaluate_run, find_run


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_evaluate_uses_the_runs_snapshot_unless_live(tmp_path, capsys):
    home = str(tmp_path / "ws")
    run(capsys, "--home", home, "sample", "d", "digits", "--count", "200")
    out = run(capsys, "--home", home, "train", "d", "--epochs", "2", "--batch-size", "32", "--lr", "0.003",
              "--augment", "no-flip", "--json")
    res = json.loads(out.strip().splitlines()[-1])
    rid, own = res["run_id"], res["metrics"]["test"]
    ws = Workspace(home)
    ds = ws.dataset("d")
    rec_path = find_run(ws, rid)
    params = json.loads((rec_path / "params.json").read_text())
    sid = params["source"]["snapshot_id"]
    assert sid and sid in {s.id for s in ds.snapshots()}  # training froze its data

    # a reviewer accepts the model's proposal for a test example it got wrong
    wrong = [r for r in json.loads((rec_path / "predictions.json").read_text()) if r["label"] != r["truth"]]
    assert wrong, "the 2-epoch model should miss some test digits"
    mine_run(ds, rec_path, count=40, splits=("test",), predict_missing=False)
    ex = ds.example(wrong[0]["example_id"])
    (prop,) = ex.proposals()
    assert prop.label == wrong[0]["label"]
    ds.set_label(ex.id, prop.label, author="reviewer")
    assert ds.example(ex.id).label == wrong[0]["label"]

    ev = json.loads(run(capsys, "--home", home, "evaluate", rid, "--json"))
    assert ev["labels"] == {"source": "snapshot", "snapshot_id": sid, "directory": None}
    assert ev["test"]["accuracy"] == own["accuracy"]  # unchanged, equal to the run's own numbers
    live = json.loads(run(capsys, "--home", home, "evaluate", rid, "--live", "--json"))
    assert live["labels"]["source"] == "live"
    n_test = len(ds.examples(split="test"))
    assert abs(live["test"]["accuracy"] - (own["accuracy"] + 1 / n_test)) < 1e-9
    text = run(capsys, "--home", home, "evaluate", rid)
    assert f"labels: snapshot {sid[:12]}" in text
    assert f"accuracy: {own['accuracy']:.4f}" in text
    text = run(capsys, "--home", home, "evaluate", rid, "--live")
    assert "labels: LIVE" in text and f"accuracy: {live['test']['accuracy']:.4f}" in text

    # a run that records no snapshot (trained before this) is scored live, and says so
    params["source"]["snapshot_id"] = None
    (rec_path / "params.json").write_text(json.dumps(params))
    _, metrics = evaluate_run(ws, rid)
    assert metrics["labels"]["source"] == "live" and "no snapshot" in metrics["labels"]["note"]
    assert metrics["accuracy"] == live["test"]["accuracy"]
    ws.close()


@pytest.mark.parametrize("dtype", ["detection", "segmentation", "anomaly"])
def test_every_type_scores_the_snapshot_unless_live(tmp_path, dtype):
    """Stored predictions of each type against the run's snapshot; moving a test label afterwards changes
    only the --live numbers."""
    from tests.evaluate.test_review import SAMPLES, fake_rows, make_run
    from workbench.data.records import Annotation
    from workbench.data.transfer import add_sample

    ws = Workspace(tmp_path / "ws")
    ds, _ = add_sample(ws, "s", SAMPLES[dtype], count=60)
    names = [c.name for c in ds.classes]
    test = ds.examples(split="test")
    rows = [r for r in fake_rows(dtype, test, names) if dtype != "segmentation" or "segmentation" in r]
    run_dir = make_run(ws.runs_dir, ds, test_rows=rows,
                       metrics={"test": {"threshold": 0.5}} if dtype == "anomaly" else None)
    params = json.loads((run_dir / "params.json").read_text())
    params["source"]["snapshot_id"] = ds.snapshot(message="run").id
    (run_dir / "params.json").write_text(json.dumps(params))
    _, before = evaluate_run(ws, run_dir)
    key = "auroc" if dtype == "anomaly" else "mAP50"  # a run's stat names (RUN_STAT_NAMES)
    # relabel: every test example's annotations replaced (anomaly: its class flipped; boxes: moved away)
    for ex in test:
        if dtype == "anomaly":
            ds.set_label(ex.id, "good" if ex.label == "anomalous" else "anomalous")
        else:
            anns = [
                Annotation("polygon", a.label, polygons=[[0.0, 0.0, 3.0, 0.0, 3.0, 3.0]])
                if dtype == "segmentation"
                else Annotation("box", a.label, bbox=(0.0, 0.0, 3.0, 3.0))
                for a in ex.truth()
            ]
            ds.replace_annotations(ex.id, anns)
    _, after = evaluate_run(ws, run_dir)
    _, live = evaluate_run(ws, run_dir, live=True)
    assert before["labels"]["source"] == after["labels"]["source"] == "snapshot"
    assert live["labels"]["source"] == "live"
    assert after[key] == before[key] and live[key] != before[key]
    ws.close()
