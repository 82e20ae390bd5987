"""Training on several processes: ``torchrun`` + ``DistributedDataParallel``, same trainer, same run record.

::

    torchrun --nproc_per_node=2 -m workbench train NAME --epochs 10 --batch-size 16

torchrun starts the processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :meth:`Distributed.start` reads them, joins the process group (gloo on CPU, NCCL on CUDA,
one GPU per process: ``cuda:LOCAL_RANK``) and the trainer then:

- shards every epoch's training order between the processes (:class:`~workbench.train.data.EpochSampler`
  with ``num_replicas`` / ``rank``: the same seeded permutation a single process draws, split the way
  torch's ``DistributedSampler`` splits it);
- wraps the model in ``DistributedDataParallel`` (gradients averaged over the processes after every step);
- all-reduces each step's loss, so the logged loss, the NaN check and a stop request agree everywhere;
- validates and scores the test split on rank 0 only and broadcasts the numbers, so the learning-rate
  schedule and early stopping take the same decision in every process;
- writes the run folder (params, status, history, checkpoints, metrics, predictions) and calls the
  callbacks on rank 0 only. Checkpoints hold the bare model's weights, loadable without any of this, and
  every process's random state (``rng_per_process``: rank 0 alone validates, and each pass over a
  DataLoader draws from the global generator, so the processes' generators part ways), which a resume
  with the same number of processes puts back in each, so dropout draws repeat exactly.

``batch_size`` is per process (torch's convention): a step sees ``batch_size x WORLD_SIZE`` images, the
global batch, recorded in ``params.json`` under ``resolved.distributed``. The global batches are the very
batches one process would train on with ``batch_size x WORLD_SIZE`` (the shards of one permutation), so
``--batch-size 16`` on 2 processes learns like ``--batch-size 32`` on one (BatchNorm statistics aside:
each process normalizes over its own 16 images). Resuming a multi-node run needs the run folder on a
shared filesystem (every process reads ``last.pt``).

Without torchrun's variables everything here is a no-op and the trainer runs as one process, unchanged.
A half-set environment (``WORLD_SIZE=2`` without ``RANK``, or without ``MASTER_ADDR`` outside torchrun)
raises :class:`DistributedError` naming the missing variables; processes started by hand with a full
environment wait ``WORKBENCH_DIST_JOIN_TIMEOUT`` seconds (default 300) for the others, then fail with a
message saying how many joined.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .errors import TrainingStateError

__all__ = ["DistributedError", "LaunchInfo", "Distributed", "launch_info", "is_main_process"]

T = TypeVar("T")

JOIN_TIMEOUT_ENV = "WORKBENCH_DIST_JOIN_TIMEOUT"
_DEFAULT_JOIN_TIMEOUT_S = 300.0
_TORCHRUN_MARK = "TORCHELASTIC_RUN_ID"  # set by torchrun in every process it starts


class DistributedError(TrainingStateError):
    """The processes of a multi-process run cannot be joined (missing / wrong variables, a process missing)."""


@dataclass(frozen=True)
class LaunchInfo:
    """Where this process sits in a multi-process launch (from the environment)."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str | None
    master_port: int | None
    torchrun: bool


def _int_var(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name}={raw!r} is not an integer") from None


def launch_info(env: Mapping[str, str] | None = None) -> LaunchInfo | None:
    """This process's place in a torchrun-style launch, or None when it runs alone.

    Alone: neither ``RANK`` nor ``WORLD_SIZE`` set, or ``WORLD_SIZE=1``. A partial or inconsistent
    environment raises :class:`DistributedError` that says what is missing and how to launch instead.
    """
    env = os.environ if env is None else env
    rank, world = _int_var(env, "RANK"), _int_var(env, "WORLD_SIZE")
    if rank is None and world is None:
        return None
    hint = "start every process with torchrun, e.g. `torchrun --nproc_per_node=2 -m workbench train NAME`"
    if world is None or rank is None:
        given, absent = ("RANK", "WORLD_SIZE") if world is None else ("WORLD_SIZE", "RANK")
        raise DistributedError(f"{given} is set but {absent} is not: this is not a complete launch; {hint}")
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} does not fit WORLD_SIZE={world} (need 0 <= RANK < WORLD_SIZE)")
    if world == 1:
        return None
    torchrun = _TORCHRUN_MARK in env
    addr, port = env.get("MASTER_ADDR") or None, _int_var(env, "MASTER_PORT")
    missing = [n for n, v in (("MASTER_ADDR", addr), ("MASTER_PORT", port)) if v is None]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE={world} asks for {world} processes, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set, so they cannot find each other; {hint}"
        )
    local = _int_var(env, "LOCAL_RANK")
    return LaunchInfo(rank, world, rank if local is None else local, addr, port, torchrun)


def is_main_process(env: Mapping[str, str] | None = None) -> bool:
    """True unless this process is a non-zero rank of a multi-process launch (what prints, what writes)."""
    env = os.environ if env is None else env
    try:
        return (_int_var(env, "RANK") or 0) == 0
    except DistributedError:
        return True


def _join_timeout(env: Mapping[str, str]) -> float:
    raw = env.get(JOIN_TIMEOUT_ENV)
    try:
        value = float(raw) if raw else _DEFAULT_JOIN_TIMEOUT_S
    except ValueError:
        raise DistributedError(f"{JOIN_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise DistributedError(f"{JOIN_TIMEOUT_ENV} must be > 0 seconds, got {raw}")
    return value


def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class Distributed:
    """The trainer's view of the process group; with one process every method is a pass-through.

    Use as a context manager around a run (:meth:`start`): it joins the group when torchrun's environment
    asks for it (or uses the one already there) and, when the run ended well, waits at a barrier for the
    other processes. The group it made is left when the process exits, not after the run: a second run in
    the same process reuses it (torch cannot reliably make a new default group on the same store; measured
    here: a re-made gloo group hung in 1 of 5 tries).
    """

    def __init__(
        self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str | None = None
    ) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.backend = backend

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------------------------ joining
    @classmethod
    def start(cls, device: str, env: Mapping[str, str] | None = None) -> Distributed:
        """Join the process group torchrun's environment describes (gloo for ``cpu``, NCCL for ``cuda``)."""
        env = os.environ if env is None else env
        if dist.is_available() and dist.is_initialized():  # the caller set the group up
            return cls(
                dist.get_rank(), dist.get_world_size(), _int_var(env, "LOCAL_RANK") or 0, dist.get_backend()
            )
        info = launch_info(env)
        if info is None:
            return cls()
        if not dist.is_available():
            raise DistributedError("this torch build has no torch.distributed; run one process")
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            if info.local_rank >= torch.cuda.device_count():
                raise DistributedError(
                    f"LOCAL_RANK={info.local_rank} needs GPU {info.local_rank}, this machine has "
                    f"{torch.cuda.device_count()}; start at most that many processes per machine"
                )
            torch.cuda.set_device(info.local_rank)
        if info.torchrun:  # torchrun already brought every process together
            dist.init_process_group(backend, rank=info.rank, world_size=info.world_size)
        else:
            cls._join_by_hand(info, backend, _join_timeout(env))
        atexit.register(_leave_group)
        return cls(info.rank, info.world_size, info.local_rank, backend)

    @staticmethod
    def _join_by_hand(info: LaunchInfo, backend: str, timeout_s: float) -> None:
        """Processes started without torchrun: rendezvous with a bounded wait for the missing ones."""
        assert info.master_addr is not None and info.master_port is not None
        try:
            store = dist.TCPStore(
                info.master_addr,
                info.master_port,
                info.world_size,
                info.rank == 0,
                timeout=timedelta(seconds=timeout_s),
                wait_for_workers=True,
            )
        except (RuntimeError, OSError) as e:  # DistStoreError is a RuntimeError
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DistributedError(
                f"rank {info.rank} of WORLD_SIZE={info.world_size}: the other processes did not join at "
                f"{info.master_addr}:{info.master_port} within {timeout_s:g} s ({first}); start all "
                f"{info.world_size} of them, best with `torchrun --nproc_per_node={info.world_size}`"
            ) from None
        dist.init_process_group(backend, store=store, rank=info.rank, world_size=info.world_size)

    def barrier(self) -> None:
        """Wait until every process gets here (nothing with one)."""
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def close(self, ok: bool) -> None:
        """End of a run: wait for every process when this one ended well (a failed one does not wait for
        the others; torchrun stops them)."""
        if ok:
            self.barrier()

    def __enter__(self) -> Distributed:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(exc_type is None)

    # ------------------------------------------------------------------------------------ the run
    def local_device(self, device: str) -> str:
        """``cuda`` -> this process's GPU (``cuda:LOCAL_RANK``) when several processes share a machine."""
        if self.enabled and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def describe(self, batch_size: int) -> dict[str, Any]:
        """What goes into the run record: processes, backend, per-process and global batch size."""
        return {
            "processes": self.world_size,
            "backend": self.backend,
            "batch_size_per_process": batch_size,
            "global_batch_size": batch_size * self.world_size,
        }

    def wrap(self, model: torch.nn.Module, *, find_unused_parameters: bool = False) -> torch.nn.Module:
        """``DistributedDataParallel(model)`` with several processes; the model itself with one."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = next(model.parameters()).is_cuda
        return DistributedDataParallel(
            model,
            device_ids=[self.local_rank] if on_gpu else None,
            find_unused_parameters=find_unused_parameters,
        )

    def _comm_device(self) -> str:
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"

    def step_loss(self, loss: torch.Tensor, count: int) -> tuple[float, int]:
        """The step's loss as a float and its number of images: over all processes (the image-weighted
        mean and the sum) with several, ``float(loss)`` and ``count`` with one."""
        if not self.enabled:
            return float(loss), count
        t = torch.tensor([float(loss) * count, float(count)], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        total, n = t.tolist()
        return (total / n if n else float("nan")), int(n)

    def any(self, flag: bool) -> bool:
        """True in every process when it is True in any (a stop request made on rank 0 stops them all)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` in every process."""
        if not self.enabled:
            return value
        box: list[Any] = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=torch.device(self._comm_device()))
        return box[0]

    def all_gather(self, value: T) -> list[T]:
        """Every process's ``value``, in rank order, in every process (``[value]`` with one)."""
        if not self.enabled:
            return [value]
        box: list[Any] = [None] * self.world_size
        dist.all_gather_object(box, value)
        return box

    def on_main(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` run on rank 0 only; every process returns its result."""
        result: Any = fn(*args) if self.is_main else None
        return self.broadcast(result)
