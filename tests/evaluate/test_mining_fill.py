"""Mining fills the requested count (errors first, then the most uncertain right answers) for every dataset
type, and checks training labels by confident learning: cleanlab is the oracle for the rule, and flipped
labels of a small real digits set are found from a trained run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluate.test_review import SAMPLES, fake_rows, make_run
from workbench.data.transfer import add_sample
from workbench.evaluate.label_check import find_label_issues, label_issues_of
from workbench.service import mine_run


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from workbench.data import Workspace

    ws = Workspace(tmp_path_factory.mktemp("fill") / "ws")
    yield ws
    ws.close()


@pytest.mark.parametrize("dtype", list(SAMPLES))
def test_mining_fills_the_count_for_every_type(stores, tmp_path, dtype):
    ds, _ = add_sample(stores, f"fill-{dtype}", SAMPLES[dtype], count=80)
    names = [c.name for c in ds.classes]
    test, val = ds.examples(split="test"), ds.examples(split="val")
    run = make_run(tmp_path / "runs", ds, test_rows=fake_rows(dtype, test, names),
                   metrics={"test": {"threshold": 0.5}} if dtype == "anomaly" else None)
    given = {"val": fake_rows(dtype, val, names)}
    plain = mine_run(ds, run, count=1000, predictions=given, predict_missing=False, write_proposals=False)
    judged = len(plain.ranked)
    with_reason = sum(1 for m in plain.ranked if m.reason != "most_uncertain")
    assert 0 < with_reason < judged - 2  # the fake predictions get some examples right and sure
    count = with_reason + 2

    result = mine_run(ds, run, count=count, predictions=given, predict_missing=False, directory="r2")

    assert len(result.selected) == count and ds.count(directory="r2") == count
    assert result.filled == 2 and result.by_reason.get("most_uncertain") == 2
    assert sum(result.by_reason.values()) == count
    head, tail = result.selected[:with_reason], result.selected[with_reason:]
    assert all(m.reason != "most_uncertain" for m in head)
    assert all(m.reasons == ["most_uncertain"] for m in tail)
    # the filler is the most uncertain of the examples without a reason
    rest = [m for m in result.ranked if m.reason == "most_uncertain" or not m.reasons]
    best = max(m.details["uncertainty"] for m in tail)
    assert all(m.details.get("uncertainty", -1) <= best for m in rest if m not in tail)
    assert tail[0].details["uncertainty"] >= tail[1].details["uncertainty"]
    assert not any("could be judged" in n for n in result.notes)


def _cleanlab_issues(labels, probs):
    from cleanlab.count import compute_confident_joint

    _, idx = compute_confident_joint(np.asarray(labels), np.asarray(probs), return_indices_of_off_diagonals=True)
    return sorted(int(i) for i in idx)


@pytest.mark.parametrize("seed", range(6))
def test_confident_learning_matches_cleanlab(seed):
    pytest.importorskip("cleanlab")
    rng = np.random.default_rng(seed)
    n, k = 300, 4 + seed % 3
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)) + 4.0 * np.eye(k)[truth]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    given = truth.copy()
    flip = rng.choice(n, 20, replace=False)
    given[flip] = (given[flip] + 1 + rng.integers(0, k - 1, 20)) % k
    if seed == 5:
        given[given == k - 1] = 0  # a class nobody is labelled with
    ours = find_label_issues(given.tolist(), probs)
    assert sorted(i.index for i in ours) == _cleanlab_issues(given, probs)
    if seed != 5:  # (there relabelling the unused class moved some flips)
        assert len(set(flip) & {i.index for i in ours}) >= 12  # most flips found
    assert [i.given_probability for i in ours] == sorted(i.given_probability for i in ours)


def test_label_issues_rule_in_words():
    # class 0's threshold: mean p0 over examples labelled 0 = (0.9 + 0.8 + 0.1) / 3 = 0.6
    # class 1's threshold: mean p1 over examples labelled 1 = (0.9 + 0.7) / 2 = 0.8
    probs = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.1, 0.9], [0.3, 0.7]]
    labels = [0, 0, 0, 1, 1]
    (issue,) = find_label_issues(labels, probs)  # example 2: p0 0.1 < 0.6 while p1 0.9 >= 0.8
    assert (issue.index, issue.given, issue.likely) == (2, 0, 1)
    assert issue.given_threshold == pytest.approx(0.6)  # example 4 (p1 0.7 < 0.8, p0 0.3 < 0.6): no class


@pytest.mark.slow
def test_flipped_training_labels_are_found(stores, tmp_path):
    """Five training digits relabelled wrongly before training: the label check of `mine` finds them."""
    pytest.importorskip("torch")
    from workbench.train.config import TrainConfig
    from workbench.train.from_store import train_dataset
    from workbench.train.runs import load_run

    ds, _ = add_sample(stores, "flip-digits", "digits", count=300)
    train = ds.examples(split="train")
    flipped = {ex.id: str((int(ex.label) + 3) % 10) for ex in train[::len(train) // 5][:5]}
    for i, wrong in flipped.items():
        ds.set_label(i, wrong, author="careless")
    cfg = TrainConfig(epochs=6, batch_size=32, lr=0.003, augment="no-flip", device="cpu", patience=None,
                      threads=1, seed=0)
    summary = train_dataset(stores, ds.name, cfg, run_dir=tmp_path / "run")
    assert summary["test"]["accuracy"] > 0.6
    record = load_run(summary["run_dir"])
    # out of fold: two models trained with the run's settings, each predicting the half it never saw
    result = mine_run(ds, record, count=40, device="cpu", directory="flips", check_train="folds")
    assert result.sources["train"] == "out-of-fold"
    doubted = [m for m in result.label_errors if m.split == "train"]
    assert result.train_label_errors == len(doubted) > 0
    found = {m.example_id for m in doubted} & set(flipped)
    assert len(found) >= 3, (flipped, [(m.example_id, m.details) for m in doubted])
    # the fold models saw half the data, so they doubt some true labels too; the flips rank near the top
    ranks = sorted(k for k, m in enumerate(doubted) if m.example_id in flipped)
    assert ranks[2] < 8, (ranks, len(doubted))
    for m in doubted:
        if m.example_id in flipped:
            assert m.details["true"] == flipped[m.example_id] and m.details["method"] == "confident_learning"
    # they go to review with the model's class as a proposal
    in_review = set(ds.example_ids(directory="flips"))
    assert found <= in_review
    for i in found:
        (prop,) = ds.example(i).proposals()
        assert prop.label != flipped[i] and prop.proposal


def test_label_issues_of_skips_examples_without_rows(stores):
    ds, _ = add_sample(stores, "few", "shapes-classification", count=30)
    names = [c.name for c in ds.classes]
    assert label_issues_of(ds.examples(split="train"), [], names) == []
