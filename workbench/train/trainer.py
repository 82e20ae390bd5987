"""The training loop: ``Trainer(config, source, run_dir).fit()`` and ``resume(run_dir, source)``.

Per epoch: train (timing data loading apart from compute), val loss, the dataset type's metric on val,
learning rate; overfitting flagged, early stopping on the monitored metric, ``best.pt`` kept, ``last.pt``
and the history written after every epoch. At the end the best weights are scored on the test split
(``metrics.json``, ``predictions.json``). Same seed, same data, CPU: same numbers, also when a killed run
is resumed from ``last.pt``.

Under ``torchrun`` the same loop runs in every process with DistributedDataParallel; rank 0 validates,
writes the run folder and calls the callbacks (see :mod:`workbench.train.distributed`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import AlreadyExistsError, ValidationError
from ..progress import Stage
from ..runs.records import EpochRecord, RunParams, RunSummary
from .callbacks import Callback, CallbackList, EarlyStopping, find_overfit_ranges
from .checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .config import TrainConfig, build_optimizer, build_schedule, resolve_device, steps_per_batch
from .data import VisionDataset, make_loader, set_loader_epoch
from .distributed import Distributed
from .errors import NonFiniteLossError, TrainingStateError
from .models import build_model, default_model, model_spec
from .progress import CountedLoader
from .runs import RunPaths, collect_versions, jsonable, read_json, write_json, write_jsonl
from .setup import deterministic_mode, resolve_augment, seed_everything
from .source import TrainSource
from .tasks import get_task
from .transfer import TransferPlan

__all__ = ["Trainer", "resume", "train"]

_log = logging.getLogger(__name__)


class Trainer:
    """One training run into ``run_dir`` (created; it must not hold a run already, see :func:`resume`)."""

    def __init__(
        self,
        config: TrainConfig,
        source: TrainSource,
        run_dir: str | Path,
        callbacks: Sequence[Callback] = (),
        *,
        _resuming: bool = False,
    ) -> None:
        self.config = config.validate()
        self.source = source
        self.paths = RunPaths(Path(run_dir))
        if not _resuming and self.paths.params.exists():
            raise AlreadyExistsError(f"{self.paths.root} already holds a run; resume it or pick a new folder")
        self.task = get_task(source.dataset_type)
        self.model_name = config.model or default_model(source.dataset_type)
        spec = model_spec(self.model_name)
        if spec.dataset_type != source.dataset_type:
            raise ValidationError(
                f"model {self.model_name} is for {spec.dataset_type} datasets, this one is {source.dataset_type}",
                field="model",
            )
        self.augment_config, self.image_size = resolve_augment(config, source.dataset_type)
        self.device = resolve_device(config.device)
        self.callbacks = CallbackList(callbacks)
        self.callbacks.bind(self)
        self._stop = threading.Event()
        self._resuming = _resuming
        self._restart = False  # resume() of a run that never finished an epoch: start over in its folder
        self.history: list[dict[str, Any]] = []
        self.overfit_ranges: list[tuple[int, int]] = []
        self.epoch = 0
        self.global_step = 0
        self.model: Any = None
        self._net: Any = None  # what the training step calls: the model, or its DDP wrapper
        self.dist = Distributed()  # one process until fit() finds torchrun's environment
        self.status = "new"

    # ------------------------------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """End the run cleanly after the current step (safe to call from another thread)."""
        self._stop.set()

    def add_callback(self, callback: Callback) -> None:
        """Subscribe one more callback (a widget attaching itself)."""
        callback.trainer = self
        self.callbacks.callbacks.append(callback)

    def _should_stop(self) -> bool:
        return self.dist.any(self._stop.is_set() or self.callbacks.should_stop())

    # ------------------------------------------------------------------------------------------ setup
    def _datasets(self) -> None:
        from ..augment import Augmenter

        src, cfg = self.source, self.config
        common: dict[str, Any] = {
            "dataset_type": src.dataset_type,
            "class_names": src.class_names,
            "load_bytes": src.load_bytes,
            "image_size": self.image_size,
            "seed": cfg.seed,
        }
        self.splits = {s: src.split(s) for s in ("train", "val", "test")}
        train_examples = self.task.train_examples(self.splits["train"])
        if not train_examples:
            raise TrainingStateError(f"no usable training examples in {src.dataset or 'the source'}")
        self.train_set = VisionDataset(
            train_examples,
            augmenter=Augmenter(self.augment_config, src.dataset_type, track_clipping=False),
            **common,
        )
        evaluator = Augmenter(self.augment_config, src.dataset_type, for_training=False)
        self.eval_sets = {
            s: VisionDataset(self.splits[s], augmenter=evaluator, **common) for s in ("val", "test")
        }
        self.train_loader = make_loader(
            self.train_set,
            batch_size=cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            num_workers=cfg.num_workers,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
        )
        self.eval_loaders = {
            s: make_loader(d, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers)
            for s, d in self.eval_sets.items()
        }
        self.monitor, self.mode = (
            (self.config.monitor, "min" if self.config.monitor.endswith("loss") else "max")
            if self.config.monitor
            else self.task.monitor_for(self.splits["val"])
        )

    def _build(self) -> None:
        seed_everything(self.config.seed)
        n_classes = len(self.source.class_names)
        self.model = build_model(
            self.model_name,
            n_classes,
            image_size=self.image_size,
            weights=None if self._resuming else self.config.weights,
        ).to(self.device)
        report = getattr(self.model, "workbench_weights", None)  # what build_model loaded, if anything
        self.weights_info: dict[str, Any] | None = report.summary() if report is not None else None
        self.transfer = TransferPlan.for_model(
            self.model, self.model_name, self.config.freeze_backbone, self.config.backbone_lr_scale
        )
        self.optimizer = build_optimizer(self.transfer.param_groups(self.model, self.config.lr), self.config)
        self.scheduler = build_schedule(self.optimizer, self.config, self.mode, len(self.train_loader))
        self._per_step = self.scheduler is not None and steps_per_batch(self.config.schedule)
        self.early = EarlyStopping(self.mode, self.config.patience, self.config.min_delta)

    def _write_params(self) -> None:
        params = RunParams(
            run_id=self.paths.run_id,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            config=jsonable(self.config.to_dict()),
            resolved=jsonable(self._resolved()),
            model_config=jsonable(self.model.workbench_config),
            source=jsonable(self.source.describe()),
        )
        write_json(self.paths.params, params.to_json())
        write_json(self.paths.versions, collect_versions())

    def _start_folder(self) -> None:
        """Rank 0 writes ``params.json``; a restart (see :func:`resume`) first clears what the killed
        attempt left, once every process has read it."""
        if self._restart:
            self.dist.barrier()
        if not self.dist.is_main:
            return
        if self._restart:
            for p in (self.paths.params, self.paths.status, self.paths.history):
                p.unlink(missing_ok=True)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self._write_params()

    def _resolved(self) -> dict[str, Any]:
        """The settings the run really used (stored in params.json and in every checkpoint, so a
        checkpoint alone can be used for prediction and export)."""
        return {
            "model": self.model_name,
            "dataset_type": self.source.dataset_type,
            "classes": [{"name": c.name, "color": c.color} for c in self.source.classes],
            "image_size": self.image_size,
            "device": self.device,
            "augment": self.augment_config,
            "monitor": self.monitor,
            "mode": self.mode,
            "distributed": self.dist.describe(self.config.batch_size),
            "transfer": {**self.transfer.describe(), "weights": self.weights_info},
        }

    def _set_status(self, state: str, **extra: Any) -> None:
        self.status = state
        if not self.dist.is_main:
            return
        write_json(
            self.paths.status,
            {
                "state": state,
                "epoch": self.epoch,
                "best_epoch": self.early.best_epoch,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **extra,
            },
        )

    def _status_after_error(self, cause: BaseException, state: str, message: str) -> None:
        """Best effort: record ``state`` and ``message`` in ``status.json`` for the run ``cause`` ended.

        The disk that failed the run (full, gone read-only) often fails this write too; its error must
        not replace ``cause`` as the one the caller sees: it is attached to ``cause`` as a note, and logged.
        """
        try:
            self._set_status(state, error=message)
        except Exception as write_error:
            note = (
                f"{self.paths.status} could not be updated to {state!r} either "
                f"({type(write_error).__name__}: {write_error})"
            )
            cause.add_note(note)
            _log.warning("run %s ended with %s; %s", self.paths.root, type(cause).__name__, note)

    def _state(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        """What ``last.pt`` holds; ``rngs``: every process's random state, in rank order."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "config": self.config.to_dict(),
            "model_config": dict(self.model.workbench_config),
            "resolved": self._resolved(),
            "rng": rngs[0],
            "history": self.history,
            "best": self.early.state_dict(),
            "overfit_ranges": [list(r) for r in self.overfit_ranges],
            "fingerprint": self.source.fingerprint(),
        }
        if self.dist.enabled:  # rank 0 alone validates: the processes' generators differ
            state["rng_per_process"] = rngs
        return state

    def _restore(self) -> None:
        state = load_checkpoint(self.paths.last, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = list(state["history"])
        self.early.load_state_dict(state["best"])
        self.overfit_ranges = [tuple(r) for r in state.get("overfit_ranges", [])]  # type: ignore[misc]
        self.weights_info = (state.get("resolved") or {}).get("transfer", {}).get("weights")  # the first start's
        per_process = state.get("rng_per_process")  # a multi-process run's: this rank's, same world size
        if isinstance(per_process, list) and len(per_process) == self.dist.world_size:
            restore_rng(per_process[self.dist.rank])
        else:
            restore_rng(state["rng"])
        if self.dist.is_main:
            write_jsonl(self.paths.history, self.history)

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> dict[str, Any]:
        """Train to the end (or early stop / stop request); score the best weights on test; return a summary."""
        with (
            Distributed.start(self.device) as self.dist,
            deterministic_mode(self.config.deterministic, self.config.threads, self.device),
        ):
            if self.dist.enabled:  # every process uses rank 0's folder; only rank 0 reports
                self.device = self.dist.local_device(self.device)
                self.paths = RunPaths(self.dist.broadcast(self.paths.root))
                if not self.dist.is_main:
                    self.callbacks = CallbackList()
            self._datasets()
            self._build()
            if self._resuming:
                self._restore()
            else:
                self._start_folder()
            self.transfer.set_frozen(self.model, self.transfer.frozen_at(self.epoch + 1))  # DDP wraps what trains
            self._net = self.dist.wrap(self.model)
            self._set_status("running")
            try:
                return self._fit()
            except NonFiniteLossError as e:
                self._status_after_error(e, "failed", str(e))
                raise
            except KeyboardInterrupt as e:
                self._status_after_error(
                    e, "stopped", "interrupted; resume() goes on from the last checkpoint"
                )
                raise
            except BaseException as e:
                self._status_after_error(e, "failed", f"{type(e).__name__}: {e}")
                raise

    def _fit(self) -> dict[str, Any]:
        cfg = self.config
        self.callbacks.on_fit_start(
            {
                "run_dir": str(self.paths.root),
                "model": self.model_name,
                "dataset_type": self.source.dataset_type,
                "counts": {s: len(v) for s, v in self.splits.items()},
                "train_examples": len(self.train_set),
                "device": self.device,
                "image_size": self.image_size,
                "monitor": self.monitor,
                "mode": self.mode,
                "epochs": cfg.epochs,
                "start_epoch": self.epoch + 1,
                "resumed": self._resuming,
                "processes": self.dist.world_size,
                "steps_per_epoch": len(self.train_loader),
                "transfer": {**self.transfer.describe(), "weights": self.weights_info},
            }
        )
        state = "finished"
        while self.epoch < cfg.epochs:
            if self.early.should_stop:
                state = "early_stopped"
                break
            if self._should_stop():
                state = "stopped"
                break
            if self.epoch >= 1 and getattr(self.model, "single_pass", False):  # fitted in one pass
                break
            epoch = self.epoch + 1
            self.callbacks.on_epoch_start(epoch)
            train = self._train_epoch(epoch)
            if train is None:
                state = "stopped"
                break
            self.task.end_train_epoch(self.model)
            self.epoch = epoch
            self._end_epoch(epoch, train)
        summary = self.dist.on_main(self._finish, state)  # every process returns rank 0's summary
        self.callbacks.on_fit_end(RunSummary.from_json(summary))
        return summary

    def _train_epoch(self, epoch: int) -> dict[str, Any] | None:
        cfg = self.config
        set_loader_epoch(self.train_loader, epoch)
        if self.transfer.set_frozen(self.model, self.transfer.frozen_at(epoch)) and self.dist.enabled:
            self._net = self.dist.wrap(self.model)  # DDP syncs the parameters that train when it wraps
        self._net.train()
        self.transfer.batchnorm_eval(self.model)  # a frozen backbone keeps its BatchNorm statistics
        total = 0.0
        images = steps = 0
        data_time = step_time = 0.0
        start = tick = time.perf_counter()
        for batch in self.train_loader:
            got = time.perf_counter()
            loss = self.task.loss(self._net, batch, self.device)
            value, n = self.dist.step_loss(loss.detach(), self.task.batch_size(batch))  # all processes'
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss became {value} at epoch {epoch}, step {steps + 1}; training stopped. Last good "
                    f"checkpoint: {self.paths.last if self.paths.last.exists() else 'none yet'}. Lower the "
                    "learning rate or set grad_clip.",
                    epoch=epoch,
                    step=steps + 1,
                    loss=value,
                    checkpoint=str(self.paths.last) if self.paths.last.exists() else None,
                )
            if loss.requires_grad:  # a feature-memory model (patchcore) collects, it takes no step
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                if self._per_step:
                    self._step_schedule()
            done = time.perf_counter()
            total += value * n
            images += n
            steps += 1
            self.global_step += 1
            data_time += got - tick
            step_time += done - got
            self.callbacks.on_step(self.global_step, value, got - tick, done - got)
            if self._should_stop():
                return None
            if cfg.max_steps_per_epoch is not None and steps >= cfg.max_steps_per_epoch:
                break
            tick = time.perf_counter()
        train_time = time.perf_counter() - start
        return {
            "train_loss": total / max(images, 1),
            "images": images,
            "steps": steps,
            "data_time": data_time,
            "step_time": step_time,
            "train_time": train_time,
            "images_per_s": images / train_time if train_time > 0 else None,
            "data_share": data_time / (data_time + step_time) if data_time + step_time > 0 else None,
        }

    def _step_schedule(self) -> None:
        """A per-batch schedule's step; none past its last step (OneCycleLR refuses one)."""
        total = getattr(self.scheduler, "total_steps", None)
        if total is None or self.scheduler.last_epoch < total:
            self.scheduler.step()

    def _validate(self, epoch: int) -> tuple[float | None, dict[str, Any]]:
        val_examples = self.splits["val"]
        if not val_examples:
            return None, {}
        loader = self.eval_loaders["val"]
        set_loader_epoch(loader, 0)
        stage = Stage(self.callbacks.on_progress, "validate", f"epoch {epoch}/{self.config.epochs}",
                      2 * len(loader), "batches")  # the val-loss pass, then the prediction pass
        val_loss = self.task.val_loss(self.model, CountedLoader(loader, stage, "loss"), self.device)
        preds = self.task.predict(self.model, CountedLoader(loader, stage, "predictions"), self.device)
        stage.close(f"{len(val_examples)} images")
        return val_loss, self.task.evaluate(preds, val_examples, self.source.class_names)

    def _end_epoch(self, epoch: int, train: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        lr = float(self.optimizer.param_groups[0]["lr"])
        val_loss, metrics = self.dist.on_main(self._validate, epoch)
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train["train_loss"],
            "val_loss": val_loss,
            "lr": lr,
            **metrics,
            "monitor": self.monitor,
            "mode": self.mode,
        }
        if self.transfer.active:  # kept in the row's extra (an object), never taken for a metric
            record["transfer"] = {
                "backbone_frozen": self.transfer.frozen_at(epoch),
                "backbone_lr": float(self.optimizer.param_groups[1]["lr"]),
            }
        value = record.get(self.monitor)
        if self.scheduler is not None and not self._per_step:  # a per-batch one stepped in _train_epoch
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if value is not None and math.isfinite(value):
                    self.scheduler.step(value)
            else:
                self.scheduler.step()
        improved = self.early.update(epoch, value, val_loss)  # ties in the metric: the lower val loss
        record["best"] = improved
        record.update(
            {
                k: train[k]
                for k in (
                    "images",
                    "steps",
                    "data_time",
                    "step_time",
                    "train_time",
                    "images_per_s",
                    "data_share",
                )
            }
        )
        record["val_time"] = time.perf_counter() - t0
        record["epoch_time"] = train["train_time"] + record["val_time"]
        self.history.append(record)
        new_ranges = self._overfit_update()
        record["overfitting"] = any(a <= epoch <= b for a, b in self.overfit_ranges)
        typed = EpochRecord.from_json(record)  # checked; the history keeps its JSON form
        self.history[-1] = typed.to_json()
        rngs = self.dist.all_gather(capture_rng())  # every process's, for last.pt
        if self.dist.is_main:
            self._write_epoch(typed, improved, rngs)
        for start, end in new_ranges:
            self.callbacks.on_overfit(start, end)

    def _write_epoch(self, record: EpochRecord, improved: bool, rngs: list[dict[str, Any]]) -> None:
        """Checkpoints, history and status after an epoch; then the callbacks hear of it."""
        epoch = record.epoch
        if improved:
            save_checkpoint(
                self.paths.best,
                {
                    "model": self.model.state_dict(),
                    "epoch": epoch,
                    "config": self.config.to_dict(),
                    "model_config": self.model.workbench_config,
                    "resolved": self._resolved(),
                    "record": record.to_json(),
                },
            )
        save_checkpoint(self.paths.last, self._state(rngs))
        write_jsonl(self.paths.history, self.history)
        self._set_status("running")
        self.callbacks.on_epoch_end(record)

    def _overfit_update(self) -> list[tuple[int, int]]:
        """Re-scan the history; return stretches not seen before (a growing stretch keeps its start)."""
        ranges = find_overfit_ranges(
            [h["train_loss"] for h in self.history],
            [h["val_loss"] for h in self.history],
            patience=self.config.overfit_patience,
            min_delta=self.config.min_delta,
            first_epoch=self.history[0]["epoch"],
        )
        known = {r[0] for r in self.overfit_ranges}
        merged = {r[0]: r for r in self.overfit_ranges}
        merged.update({r[0]: r for r in ranges})
        self.overfit_ranges = sorted(merged.values())
        return [r for r in ranges if r[0] not in known]

    # ------------------------------------------------------------------------------------------ end
    def _finish(self, state: str) -> dict[str, Any]:
        """Score the best (else the current) weights on test; write metrics and predictions."""
        best_record: dict[str, Any] | None = None
        if self.paths.best.exists():
            best = load_checkpoint(self.paths.best, map_location=self.device)
            self.model.load_state_dict(best["model"])
            best_record = best.get("record")
        test_examples = self.splits["test"]
        test_metrics: dict[str, Any] = {}
        if test_examples:
            loader = self.eval_loaders["test"]
            which = f"epoch {best_record['epoch']} weights" if best_record else "last weights"
            stage = Stage(self.callbacks.on_progress, "test", f"scoring {which}", len(loader), "batches")
            preds = self.task.predict(self.model, CountedLoader(loader, stage), self.device)
            stage.close(f"{len(test_examples)} images")
            test_metrics = self.task.evaluate(
                preds, test_examples, self.source.class_names, reference=best_record, detailed=True
            )
            write_json(
                self.paths.predictions,
                self.task.results(preds, test_examples, self.source.class_names, test_metrics),
            )
        val_metrics = {
            k: v
            for k, v in (best_record or {}).items()
            if k not in ("best", "monitor", "mode", "overfitting") and not k.endswith("_time")
        }
        summary = RunSummary(
            run_id=self.paths.run_id,
            run_dir=str(self.paths.root),
            status=state,
            epochs_run=self.epoch,
            best_epoch=self.early.best_epoch,
            monitor=self.monitor,
            best_value=self.early.best_value,
            test=test_metrics,
            val=val_metrics,
            overfit_ranges=list(self.overfit_ranges),
        )
        write_json(self.paths.metrics, summary.to_json())
        self._set_status(state)
        return summary.to_json()


def train(
    config: TrainConfig, source: TrainSource, run_dir: str | Path, callbacks: Sequence[Callback] = ()
) -> dict[str, Any]:
    """``Trainer(config, source, run_dir, callbacks).fit()``."""
    return Trainer(config, source, run_dir, callbacks).fit()


def resume(run_dir: str | Path, source: TrainSource, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Continue a stopped or killed run from ``checkpoints/last.pt`` with the config it was started with.

    The source must hold the same data (checked by fingerprint). With the same seed on CPU the final
    metrics equal those of an uninterrupted run.
    """
    paths = RunPaths(Path(run_dir))
    params = read_json(paths.params)
    if params is None:
        raise TrainingStateError(f"{paths.root}: not a run folder (no params.json)")
    status = read_json(paths.status, {})
    if status.get("state") in ("finished", "early_stopped"):
        raise TrainingStateError(f"{paths.root}: the run already {status['state'].replace('_', ' ')}")
    if params.get("source", {}).get("fingerprint") != source.fingerprint():
        raise TrainingStateError(f"{paths.root}: the source's data differs from the data the run started on")
    config = TrainConfig.from_dict(params["config"])
    trainer = Trainer(config, source, paths.root, callbacks, _resuming=True)
    if not paths.last.exists():  # killed before the first epoch ended: start over in the same folder
        trainer._resuming, trainer._restart = False, True
    return trainer.fit()
