"""mine_run against a real store: the review directory, proposals, mined.json, ground truth left alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.data.formats._rle import encode_counts_string, rasterize, rle_from_array
from workbench.data.records import SPLITS
from workbench.data.transfer import add_sample
from workbench.errors import ValidationError
from workbench.evaluate.review import MINED_FILE
from workbench.service import mine_run
from workbench.train.runs import write_json

RUN_ID = "20260101-000000-abc123"
COUNT = 6
SAMPLES = {
    "classification": "shapes-classification",
    "detection": "shapes-detection",
    "segmentation": "shapes-segmentation",
    "anomaly": "shapes-anomaly",
}
PROPOSAL_KIND = {"classification": "label", "detection": "box", "segmentation": "mask", "anomaly": "anomaly"}


def fake_rows(dtype, examples, class_names):
    """Predictions made from the ground truth, wrong in a fixed pattern (mode = position % 4):
    0 right and sure, 1 wrong, 2 unsure or an extra box, 3 right and sure (classification) / a weak box."""
    rows = []
    for k, ex in enumerate(examples):
        mode = k % 4
        if dtype == "classification":
            t = class_names.index(ex.label)
            p = np.full(len(class_names), 0.01)
            guess = (t + 1) % len(class_names) if mode == 1 else t
            p[guess] = 0.95 if mode != 2 else 0.5
            if mode == 2:
                p[(t + 1) % len(class_names)] = 0.45
            rows.append(
                {
                    "example_id": ex.id,
                    "probabilities": dict(zip(class_names, (p / p.sum()).tolist(), strict=True)),
                }
            )
        elif dtype == "anomaly":
            bad = ex.label == "anomalous"
            score = {1: 0.05 if bad else 0.95, 2: 0.52 if bad else 0.48}.get(mode, 0.9 if bad else 0.1)
            rows.append(
                {"example_id": ex.id, "score": score, "label": "anomalous" if score >= 0.5 else "good"}
            )
        else:
            truth = [a for a in ex.truth() if a.bbox is not None]
            for j, a in enumerate(truth):
                if mode == 1 and j == 0:
                    continue  # missed
                row = {
                    "image_id": ex.id,
                    "category_id": class_names.index(a.label) + 1,
                    "bbox": list(a.bbox),
                    "score": 0.3 if mode == 3 and j == 0 else 0.99,
                }
                if dtype == "segmentation":
                    rle = rle_from_array(rasterize(a.polygons, a.bbox, ex.height, ex.width))
                    row["segmentation"] = {"size": rle["size"], "counts": encode_counts_string(rle["counts"])}
                rows.append(row)
            if mode == 2:  # a confident box where nothing is (a box without a mask: proposed as a box)
                rows.append(
                    {"image_id": ex.id, "category_id": 1, "bbox": [0.0, 0.0, 6.0, 6.0], "score": 0.97}
                )
    return rows


def make_run(root, ds, *, test_rows=None, metrics=None):
    run = root / RUN_ID
    source = {
        "dataset": ds.name,
        "dataset_type": ds.type,
        "snapshot_id": None,
        "directory": None,
        "classes": [{"name": c.name, "color": c.color} for c in ds.classes],
        "counts": {s: ds.count(split=s) for s in SPLITS},
    }
    write_json(run / "params.json", {"run_id": RUN_ID, "config": {}, "source": source})
    write_json(run / "status.json", {"state": "finished"})
    write_json(run / "metrics.json", metrics or {"test": {}})
    if test_rows is not None:
        write_json(run / "predictions.json", test_rows)
    return run


def truth_of(ds):
    return {
        ex.id: sorted(json.dumps(a.to_dict(), sort_keys=True) for a in ex.truth()) for ex in ds.examples()
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One workspace for the module; every test adds its own dataset to it."""
    from workbench.data import Workspace

    ws = Workspace(tmp_path_factory.mktemp("mining") / "ws")
    yield ws
    ws.close()


@pytest.mark.parametrize("dtype", list(SAMPLES))
def test_mine_run_fills_review_with_proposals_and_leaves_truth(stores, tmp_path, dtype):
    ds, _ = add_sample(stores, f"mine-{dtype}", SAMPLES[dtype], count=80)
    names = [c.name for c in ds.classes]
    test, val = ds.examples(split="test"), ds.examples(split="val")
    assert len(test) + len(val) >= 2 * COUNT
    test_rows, val_rows = fake_rows(dtype, test, names), fake_rows(dtype, val, names)
    run = make_run(
        tmp_path / "runs",
        ds,
        test_rows=test_rows,
        metrics={"test": {"threshold": 0.5}} if dtype == "anomaly" else None,
    )
    before = truth_of(ds)

    result = mine_run(ds, run, count=COUNT, predictions={"val": val_rows}, predict_missing=False)

    assert result.sources == {"test": "predictions.json", "val": "given"}
    assert result.splits == {"test": len(test), "val": len(val)}
    assert len(result.selected) == COUNT and ds.count(directory="review") == COUNT
    assert sorted(ds.example_ids(directory="review")) == sorted(result.selected_ids)
    assert all(m.reasons for m in result.selected)
    scores = [m.score for m in result.ranked]
    assert scores == sorted(scores, reverse=True)
    assert result.selected == result.ranked[:COUNT]
    # proposals: the model's predictions, marked as such
    rows_by_id: dict[int, list] = {}
    for r in test_rows + val_rows:
        rows_by_id.setdefault(r.get("example_id", r.get("image_id")), []).append(r)
    n = 0
    for ex in ds.examples(directory="review"):
        props = ex.proposals()
        assert props and all(p.proposal and p.author == f"run:{RUN_ID}" for p in props)
        if dtype == "segmentation":
            shown = [r for r in rows_by_id.get(ex.id, []) if r["score"] >= 0.5]
            assert {p.kind for p in props} == {"mask" if "segmentation" in r else "box" for r in shown}
        else:
            assert {p.kind for p in props} == {PROPOSAL_KIND[dtype]}
        if dtype in ("detection", "segmentation"):
            shown = sorted(r["score"] for r in rows_by_id.get(ex.id, []) if r["score"] >= 0.5)
            assert sorted(p.score for p in props) == pytest.approx(shown)
        n += len(props)
    assert result.proposals == n
    assert truth_of(ds) == before

    # mining again replaces the proposals instead of stacking them
    props_before = {ex.id: len(ex.proposals()) for ex in ds.examples(directory="review")}
    again = mine_run(ds, run, count=COUNT, predictions={"val": val_rows}, predict_missing=False)
    assert again.selected_ids == result.selected_ids and again.added_to_directory == 0
    assert {ex.id: len(ex.proposals()) for ex in ds.examples(directory="review")} == props_before
    assert ds.count(directory="review") == COUNT and truth_of(ds) == before

    saved = json.loads((run / MINED_FILE).read_text())
    assert saved["selected"] == result.selected_ids and saved["run_id"] == RUN_ID
    assert [m["example_id"] for m in saved["ranked"]] == [m.example_id for m in result.ranked]
    assert saved["settings"]["count"] == COUNT


def test_classification_proposals_carry_the_predicted_class(stores, tmp_path):
    ds, _ = add_sample(stores, "mine-labels", "shapes-classification", count=80)
    names = [c.name for c in ds.classes]
    test = ds.examples(split="test")
    run = make_run(tmp_path / "runs", ds, test_rows=fake_rows("classification", test, names))
    result = mine_run(ds, run, count=3, splits=("test",))
    for m in result.selected:
        (prop,) = ds.example(m.example_id).proposals()
        assert prop.label == m.details["predicted"] and prop.score == pytest.approx(m.details["probability"])
    # wrong and confident (mode 1) first, each flagged as a likely label error
    assert result.selected[0].likely_label_error
    assert result.label_errors and all(m.label_error_score >= 0.9 for m in result.label_errors)


def test_only_test_predictions_and_no_checkpoint(stores, tmp_path):
    ds, _ = add_sample(stores, "mine-test-only", "shapes-detection", count=60)
    names = [c.name for c in ds.classes]
    run = make_run(tmp_path / "runs", ds, test_rows=fake_rows("detection", ds.examples(split="test"), names))
    result = mine_run(ds, run, count=40, write_proposals=False)
    assert result.sources == {"test": "predictions.json"} and "val" not in result.splits
    assert any("no val predictions" in n for n in result.notes)
    # fewer than 40 judged: every one of them goes, and a note says so
    assert len(result.selected) == len(result.ranked) == ds.count(split="test") < 40
    assert any(f"only {len(result.ranked)} example(s) could be judged" in n for n in result.notes)
    assert all(not ex.proposals() for ex in ds.examples(directory="review"))
    assert result.to_dict()["selected"] == result.selected_ids


def test_refuses_a_run_of_another_dataset_and_bad_arguments(stores, tmp_path):
    ds, _ = add_sample(stores, "mine-a", "shapes-detection", count=30)
    other, _ = add_sample(stores, "mine-b", "shapes-detection", count=30)
    run = make_run(tmp_path / "runs", ds, test_rows=[])
    with pytest.raises(ValidationError) as err:
        mine_run(other, run)
    assert err.value.field == "source.dataset" and err.value.file.endswith("params.json")
    with pytest.raises(ValidationError, match="count"):
        mine_run(ds, run, count=0)
    with pytest.raises(ValidationError, match="split"):
        mine_run(ds, run, splits=("holdout",))


def test_bad_predictions_file_is_named_and_nothing_is_written(stores, tmp_path):
    ds, _ = add_sample(stores, "mine-bad", "shapes-detection", count=40)
    test = ds.examples(split="test")
    rows = [{"image_id": test[0].id, "category_id": 99, "bbox": [0, 0, 5, 5], "score": 0.9}]
    run = make_run(tmp_path / "runs", ds, test_rows=rows)
    with pytest.raises(ValidationError) as err:
        mine_run(ds, run, splits=("test",))
    assert err.value.file.endswith("predictions.json") and err.value.field == "category_id"
    assert [d["name"] for d in ds.directories()] == [] and not (run / MINED_FILE).exists()


@pytest.mark.slow
def test_val_predictions_come_from_the_checkpoint(stores, tmp_path):
    """A real (tiny) run: val has no stored predictions, so the model predicts it; run on test, the same
    path reproduces the run's predictions.json exactly."""
    pytest.importorskip("torch")
    from workbench.service import predict_examples
    from workbench.train.config import TrainConfig
    from workbench.train.from_store import train_dataset
    from workbench.train.runs import load_run

    ds, _ = add_sample(stores, "mine-digits", "digits", count=120)
    cfg = TrainConfig(
        epochs=1,
        batch_size=16,
        augment="none",
        device="cpu",
        patience=None,
        threads=1,
        seed=0,
        max_steps_per_epoch=2,
    )
    summary = train_dataset(stores, ds.name, cfg, run_dir=tmp_path / "run")
    record = load_run(summary["run_dir"])
    result = mine_run(ds, record, count=5, device="cpu")
    assert result.sources == {"test": "predictions.json", "val": "model", "train": "model"}
    assert result.splits == {s: ds.count(split=s) for s in ("test", "val", "train")}
    assert len(result.selected) == 5 and ds.count(directory="review") == 5
    ranked_splits = {ex.split for ex in ds.examples(ids=[m.example_id for m in result.ranked])}
    assert {"test", "val"} <= ranked_splits <= {"test", "val", "train"}
    train_ranked = [m for m in result.ranked if m.split == "train"]  # training examples: doubted labels only
    assert len(train_ranked) == result.train_label_errors and all(m.likely_label_error for m in train_ranked)
    rows = predict_examples(record, ds.examples(split="test"), ds.load_bytes, device="cpu")
    assert json.loads(json.dumps(rows)) == record.predictions()


def _example(i: int = 1, size: int = 100):
    from workbench.data.records import Example

    return Example(i, "d", "0" * 64, "x.png", size, size, "test", "annotated")


def test_instance_proposals_are_clipped_filtered_and_fall_back_to_boxes():
    from workbench.evaluate.mining import MinedExample
    from workbench.evaluate.review import proposals_for

    mined = MinedExample(1, 1.0, ["false_positive"])
    empty = {"size": [100, 100], "counts": [10000]}
    rows = [
        {"image_id": 1, "category_id": 1, "bbox": [90, 10, 20, 20], "score": 0.9},  # clipped to 10 wide
        {"image_id": 1, "category_id": 1, "bbox": [120, 10, 20, 20], "score": 0.9},  # outside: dropped
        {"image_id": 1, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.4},  # below min_score
        {"image_id": 2, "category_id": 2, "bbox": [10, 10, 20, 20], "score": 0.9},  # another image
        {"image_id": 1, "category_id": 2, "bbox": [5, 5, 5, 5], "score": 0.8, "segmentation": empty},
        {
            "image_id": 1,
            "category_id": 2,
            "bbox": [0, 0, 9, 9],
            "score": 0.7,
            "segmentation": [[0, 0, 9, 0, 9, 9]],
        },
    ]
    det = proposals_for(mined, rows[:4], _example(), "detection", ["cat", "dog"], author="run:x")
    assert [(a.kind, a.label, a.bbox, a.score) for a in det] == [
        ("box", "cat", (90.0, 10.0, 10.0, 20.0), 0.9)
    ]
    seg = proposals_for(mined, rows, _example(), "segmentation", ["cat", "dog"], author="run:x")
    assert [a.kind for a in seg] == ["box", "box", "polygon"]
    assert all(a.proposal and a.author == "run:x" for a in seg)


def test_label_proposals_for_classification_and_anomaly():
    from workbench.evaluate.mining import MinedExample
    from workbench.evaluate.review import proposals_for

    cls = MinedExample(1, 1.9, ["misclassified"], {"predicted": "dog", "probability": 0.9})
    (a,) = proposals_for(cls, [], _example(), "classification", ["cat", "dog"], author="run:x")
    assert (a.kind, a.label, a.score, a.proposal) == ("label", "dog", 0.9, True)
    ano = MinedExample(1, 1.9, ["anomaly_miss"], {"predicted": "good", "anomaly_score": 0.1})
    (b,) = proposals_for(ano, [], _example(), "anomaly", ["good", "anomalous"], author="run:x")
    assert (b.kind, b.label, b.score) == ("anomaly", "good", None)


def test_nothing_to_mine_writes_nothing_to_the_store(stores, tmp_path):
    ds, _ = add_sample(stores, "mine-nothing", "shapes-anomaly", count=30)
    run = make_run(tmp_path / "runs", ds)  # no predictions.json, no checkpoint
    version = ds.version
    result = mine_run(ds, run)
    assert result.selected == [] and result.sources == {} and len(result.notes) == 4
    assert "training labels were not checked" in result.notes[2] and "only 0 example" in result.notes[3]
    assert ds.version == version and ds.directories() == []
    assert json.loads((run / MINED_FILE).read_text())["selected"] == []


def test_mining_stored_predictions_loads_no_torch_and_review_run_agrees(tmp_path):
    """Mining a run whose predictions are stored or given loads no torch: the evaluation layer ranks and
    writes the review (``review_run``), the training layer's ``mine_run`` only gathers the rows. Driving
    ``review_run`` by hand with the same rows gives the same result."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from workbench.data import Workspace
        from workbench.data.transfer import add_sample
        from workbench.evaluate.review import JudgedSplit, check_request, load_record, review_run
        from workbench.service import mine_run
        from tests.evaluate.test_review import fake_rows, make_run
        out = {{}}
        for name in ("mine_run", "review_run"):
            ws = Workspace(Path({str(tmp_path)!r}) / name / "ws")
            ds, _ = add_sample(ws, "shapes", "shapes-classification", count=80)
            names = [c.name for c in ds.classes]
            test, val = ds.examples(split="test"), ds.examples(split="val")
            run = make_run(Path({str(tmp_path)!r}) / name, ds, test_rows=fake_rows("classification", test, names))
            val_rows = fake_rows("classification", val, names)
            if name == "mine_run":
                res = mine_run(ds, run, count=6, predictions={{"val": val_rows}}, check_train="off")
            else:
                rec = load_record(run)
                params = check_request(ds, rec, 6, ("test", "val"))
                judged = {{"test": JudgedSplit(test, rec.predictions(), "predictions.json"),
                          "val": JudgedSplit(val, val_rows, "given")}}
                res = review_run(ds, rec, params, judged, count=6)
            d = res.to_dict()
            d.pop("path")
            out[name] = d
            out[name + " review"] = sorted(ds.example_ids(directory="review"))
            ws.close()
        out["torch"] = sorted(m for m in sys.modules if m.split(".")[0] in {{"torch", "torchvision"}})
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["torch"] == []
    assert out["mine_run"]["sources"] == {"test": "predictions.json", "val": "given"}
    assert len(out["mine_run"]["selected"]) == 6 and out["mine_run review"] == sorted(out["mine_run"]["selected"])
    assert out["review_run"] == out["mine_run"] and out["review_run review"] == out["mine_run review"]
