"""CurvesState (history, best epoch, overfit regions, throttle with a fake clock) and the TrainingCurves
widget driven through the trainer's callback list."""

from __future__ import annotations

import json

import pytest

from workbench.errors import ValidationError
from workbench.train.callbacks import CallbackList
from workbench.widgets.curves import CurvesState, TrainingCurves, downsample, metric_of
from workbench.widgets.static import PLOTLY_MIME, WIDGET_MIME


class FakeClock:
    """Time in whole microseconds, so that steps of 0.05 s add up without drift."""

    def __init__(self) -> None:
        self.us = 100_000_000

    @property
    def t(self) -> float:
        return self.us / 1e6

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.us += round(dt * 1e6)


class FakeTrainer:
    def __init__(self) -> None:
        self.stop_calls = 0

    def request_stop(self) -> None:
        self.stop_calls += 1


def rec(epoch, train_loss, val_loss, acc=None, lr=1e-3, **extra):
    r = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr, **extra}
    if acc is not None:
        r.update(monitor="accuracy", accuracy=acc)
    return r


# ---------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "record, name, expected",
    [
        ({"epoch": 1, "monitor": "accuracy", "accuracy": 0.9}, None, ("accuracy", 0.9)),
        ({"epoch": 1, "mAP": 0.4, "AP50": 0.7}, "AP50", ("AP50", 0.7)),
        ({"epoch": 1, "metric": "f1", "value": 0.3}, None, ("f1", 0.3)),
        ({"epoch": 1, "metrics": {"auroc": 0.8}}, None, ("auroc", 0.8)),
        ({"epoch": 1, "train_loss": 1.0, "val_loss": 2.0, "lr": 0.1, "miou": 0.5}, None, ("miou", 0.5)),
        ({"epoch": 1, "train_loss": 1.0, "val_loss": 2.0, "lr": 0.1}, None, ("", None)),
        ({"epoch": 1, "accuracy": float("nan")}, "accuracy", ("accuracy", None)),
        ({"epoch": 1}, "accuracy", ("accuracy", None)),
    ],
)
def test_metric_of(record, name, expected):
    assert metric_of(record, name) == expected


def test_metric_of_rejects_non_numbers():
    with pytest.raises(ValidationError) as err:
        metric_of({"monitor": "accuracy", "accuracy": "high"})
    assert err.value.field == "accuracy"


# ---------------------------------------------------------------------------------------------- best epoch
@pytest.mark.parametrize(
    "records, higher, summary, best",
    [
        # argmax of the monitored metric
        ([rec(1, 1.0, 1.0, 0.5), rec(2, 0.8, 0.9, 0.8), rec(3, 0.6, 0.95, 0.7)], True, None, 2),
        # argmin when lower is better
        ([rec(1, 1.0, 1.0, 0.5), rec(2, 0.8, 0.9, 0.8), rec(3, 0.6, 0.95, 0.3)], False, None, 3),
        # no metric: argmin of val loss
        ([rec(1, 1.0, 1.0), rec(2, 0.8, 0.7), rec(3, 0.6, 0.9)], True, None, 2),
        # monitor is val_loss itself: argmin of val loss, no metric drawn
        ([rec(1, 1.0, 0.6, monitor="val_loss"), rec(2, 0.8, 0.5, monitor="val_loss")], True, None, 2),
        # a tie: the first epoch
        ([rec(1, 1.0, 1.0, 0.8), rec(2, 0.8, 0.9, 0.8)], True, None, 1),
        # the trainer's "best" flags (its kept checkpoint, with min_delta) win over the argmax
        (
            [
                rec(1, 1.0, 1.0, 0.5, best=True),
                rec(2, 0.8, 0.9, 0.501, best=False),
                rec(3, 0.6, 0.95, 0.4, best=False),
            ],
            True,
            None,
            1,
        ),
        # the trainer's summary wins
        ([rec(1, 1.0, 1.0, 0.5), rec(2, 0.8, 0.9, 0.8)], True, {"best_epoch": 1}, 1),
        ([], True, None, None),
    ],
)
def test_best_epoch(records, higher, summary, best):
    state = CurvesState(higher_is_better=higher)
    for r in records:
        state.add_epoch(r)
    if summary is not None:
        state.finish(summary)
    assert state.best_epoch == best
    assert state.series().best_epoch == best


def test_monitor_val_loss_draws_no_separate_metric():
    state = CurvesState()
    state.add_epoch(rec(1, 1.0, 0.6, monitor="val_loss"))
    s = state.series()
    assert s.metric_name == "" and s.metric == [None]
    assert s.loss == [1.0] and s.val_loss == [0.6]


def test_fit_start_info_sets_metric_and_mode():
    state = CurvesState()
    state.start({"monitor": "mAP", "mode": "min"})
    assert state.metric == "mAP" and state.higher_is_better is False


@pytest.mark.parametrize(
    "events, regions",
    [
        ([(3, 4)], [(3, 4)]),
        ([(3, 4), (3, 5)], [(3, 5)]),  # the detector reports a growing stretch
        ([(3, 4), (6, 7)], [(3, 4), (6, 7)]),
        ([(6, 7), (3, 4), (4, 6)], [(3, 7)]),
    ],
)
def test_overfit_regions_merge(events, regions):
    state = CurvesState()
    for s, e in events:
        state.add_overfit(s, e)
    assert state.overfit == regions


def test_overfit_rejects_backwards_region():
    with pytest.raises(ValidationError):
        CurvesState().add_overfit(5, 3)


def test_epoch_record_needs_epoch():
    with pytest.raises(ValidationError) as err:
        CurvesState().add_epoch({"train_loss": 1.0})
    assert err.value.field == "epoch"


# ---------------------------------------------------------------------------------------------- throttle
@pytest.mark.parametrize(
    "rate, dt, steps, expected_flushes",
    [
        (4.0, 0.05, 40, 8),  # steps over t = 0..1.95 s at 4/s: t = 0, 0.25, ..., 1.75
        (4.0, 0.5, 10, 10),  # slower than the limit: every step redraws
        (1.0, 0.1, 30, 3),
        (10.0, 0.01, 100, 10),
    ],
)
def test_steps_are_throttled(rate, dt, steps, expected_flushes):
    clock = FakeClock()
    state = CurvesState(max_updates_per_s=rate, clock=clock)
    due = 0
    for i in range(steps):
        due += state.add_step(i, 1.0 / (i + 1), 0.001, 0.01)
        clock.advance(dt)
    assert due == expected_flushes == state.flushes
    assert len(state.steps) == steps  # nothing is lost, only redraws are skipped


def test_pending_updates_flush_on_epoch_end_and_fit_end():
    clock = FakeClock()
    state = CurvesState(max_updates_per_s=2.0, clock=clock)
    assert state.start({}) is True  # fit start always redraws
    assert state.add_step(1, 1.0) is False  # 0 s since the last redraw
    assert state.pending
    assert state.add_epoch(rec(1, 1.0, 1.0)) is True  # forced, though still 0 s
    assert not state.pending
    assert state.add_step(2, 0.9) is False
    assert state.add_overfit(1, 1) is True
    assert state.add_step(3, 0.8) is False
    assert state.finish({"status": "finished"}) is True
    assert state.flush_due() is False  # nothing pending


def test_max_updates_must_be_positive():
    with pytest.raises(ValidationError):
        CurvesState(max_updates_per_s=0)


@pytest.mark.parametrize("n, max_points", [(10, 100), (1000, 100), (1001, 100), (5, 1)])
def test_downsample(n, max_points):
    xs = list(range(n))
    ys = [float(x) for x in xs]
    ox, oy = downsample(xs, ys, max_points)
    assert len(ox) <= max_points and len(ox) == len(oy)
    assert ox == oy  # bucket means of x and y = x agree
    if n <= max_points:
        assert ox == xs


# ---------------------------------------------------------------------------------------------- widget
def _run(widget, trainer=None, epochs=4, steps_per_epoch=10, dt=0.02, clock=None):
    cbs = CallbackList([widget])
    cbs.bind(trainer)
    cbs.on_fit_start({"monitor": "accuracy", "mode": "max", "model": "tiny"})
    accs = [0.5, 0.8, 0.75, 0.7]
    for e in range(1, epochs + 1):
        cbs.on_epoch_start(e)
        for s in range(steps_per_epoch):
            if clock is not None:
                clock.advance(dt)
            cbs.on_step((e - 1) * steps_per_epoch + s, 1.0 / (e + s), 0.001, 0.01)
        cbs.on_epoch_end(rec(e, 1.0 / e, [1.0, 0.7, 0.8, 0.9][e - 1], accs[e - 1], lr=1e-3 / e))
        if e == 4:
            cbs.on_overfit(3, 4)
    cbs.on_fit_end({"status": "finished", "best_epoch": 2})
    return cbs


def test_widget_follows_the_callbacks():
    clock = FakeClock()
    w = TrainingCurves(clock=clock, max_updates_per_s=4)
    fw = w.figure_widget
    children = w.children
    _run(w, FakeTrainer(), clock=clock)
    assert w.figure_widget is fw and w.children == children  # updated in place, never rebuilt
    data = {t.name: t for t in fw.data}
    assert list(data["loss"].y) == [1.0, 0.5, 1 / 3, 0.25]
    assert list(data["val loss"].y) == [1.0, 0.7, 0.8, 0.9]
    assert list(data["accuracy"].y) == [0.5, 0.8, 0.75, 0.7]
    assert list(data["best"].x) == [2]
    assert list(data["learning rate"].y) == pytest.approx([1e-3, 5e-4, 1e-3 / 3, 2.5e-4])
    assert len(data["step loss"].x) == 40
    rects = [(s.x0, s.x1) for s in fw.layout.shapes if s.type == "rect"]
    assert rects == [(3, 4)]
    assert "finished" in w.status.value and "best epoch 2" in w.status.value
    # a browser that connects now builds its view from the synced state: it must hold the run
    synced = {t["name"]: t for t in fw._widget_data}
    assert list(synced["val loss"]["y"]) == [1.0, 0.7, 0.8, 0.9]
    assert len(fw._widget_layout["shapes"]) == 2


def test_widget_redraws_are_throttled():
    clock = FakeClock()
    w = TrainingCurves(clock=clock, max_updates_per_s=2)
    calls = []
    original = w.redraw
    w.redraw = lambda: (calls.append(clock.t), original())  # type: ignore[method-assign]
    _run(w, clock=clock, dt=0.05)  # 40 steps over 2 s
    # 4 step redraws at most per second of steps, plus fit start, 4 epoch ends, 1 overfit, fit end
    assert len(calls) == w.state.flushes
    assert len(calls) <= 2 * 2 + 1 + 4 + 1 + 1 + 1
    assert len(calls) < 40


def test_stop_button_calls_request_stop():
    trainer = FakeTrainer()
    w = TrainingCurves()
    cbs = CallbackList([w])
    cbs.bind(trainer)
    cbs.on_fit_start({})
    assert not w.stop_button.disabled and not cbs.should_stop()
    w.stop_button.click()
    assert trainer.stop_calls == 1
    assert cbs.should_stop() is True
    assert w.stop_button.disabled
    cbs.on_fit_end({"status": "stopped"})
    assert w.stop_button.description == "Stopped" and "stopped" in w.status.value


def test_attach_registers_with_add_callback():
    class Trainer(FakeTrainer):
        def __init__(self):
            super().__init__()
            self.callbacks = []

        def add_callback(self, cb):
            self.callbacks.append(cb)

    t = Trainer()
    w = TrainingCurves(t)
    assert t.callbacks == [w] and w.trainer is t
    w.on_fit_start({})
    w.stop_button.click()
    assert t.stop_calls == 1


def test_from_history_builds_the_finished_figure():
    history = [rec(1, 1.0, 1.0, 0.5), rec(2, 0.6, 0.8, 0.9), rec(3, 0.4, 0.9, 0.85)]
    w = TrainingCurves.from_history(history, overfit=[(2, 3)], summary={"status": "early_stopped"})
    fw = w.figure_widget
    # constructed from the finished figure: the constructor data is what Voilà shows
    assert list(fw._widget_data[0]["y"]) == [1.0, 0.6, 0.4]
    assert list(fw.data[3].x) == [2]
    assert [(s.x0, s.x1) for s in fw.layout.shapes if s.type == "rect"] == [(2, 3)]
    assert "early stopped" in w.status.value
    bundle = w._repr_mimebundle_()
    assert WIDGET_MIME in bundle and PLOTLY_MIME in bundle and "<div" in bundle["text/html"]
    assert len(bundle[PLOTLY_MIME]["data"]) == 6


@pytest.mark.slow
def test_real_trainer_in_a_thread_and_the_stop_button(tmp_path):
    """The widget on a real run in a background thread (how a notebook keeps the stop button live): the
    curves follow the trainer's records and a click ends the run after the current step."""
    import threading

    pytest.importorskip("torch")
    from tests.train.sources import quick_config, sample_source
    from workbench.train.callbacks import Callback
    from workbench.train.trainer import Trainer

    config = quick_config(model="small-cnn", image_size=16, epochs=6, batch_size=32)
    trainer = Trainer(config, sample_source("digits", 300), tmp_path / "run")
    curves = TrainingCurves(trainer)  # attaches itself
    epoch_done = threading.Event()

    class Signal(Callback):
        def on_epoch_end(self, record):
            epoch_done.set()

    trainer.add_callback(Signal())
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(trainer.fit()))
    thread.start()
    assert epoch_done.wait(300)
    curves.stop_button.click()  # from the kernel's thread, while the trainer runs in its own
    thread.join(300)
    assert not thread.is_alive()
    assert result["status"] == "stopped" and curves.state.summary["status"] == "stopped"
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert 1 <= len(history) < 6
    fw = curves.figure_widget
    assert list(fw.data[0].y) == pytest.approx([h["train_loss"] for h in history])
    assert list(fw.data[1].y) == pytest.approx([h["val_loss"] for h in history])
    assert fw.data[2].name == history[0]["monitor"]
    assert curves.state.best_epoch == result["best_epoch"]
    assert len(curves.state.steps) >= sum(h["steps"] for h in history)  # plus the stopped epoch's steps
    assert curves.stop_button.description == "Stopped"
