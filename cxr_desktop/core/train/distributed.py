"""One engine, any world size: the rank's view of ``torch.distributed``.

The engine runs unchanged in one process; started by ``torchrun`` (``torch.distributed.run``,
which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` ... in the environment) each process is
one rank of a data-parallel run: ``join_from_env`` joins the process group (gloo on CPUs,
NCCL for CUDA tensors), the session wraps the model in DistributedDataParallel, each rank
trains and validates on its own share of the cached rows, the validation predictions are
gathered so that every rank scores all of them, and rank 0 alone writes the run folder and
sends events. Everything here is PyTorch's own collectives; in one process every helper is
the identity.

A failing rank exits non-zero and torchrun ends the others; the process group's timeout
(``CXR_DESKTOP_DIST_TIMEOUT_S``, 30 minutes by default: rank 0 may build the image cache
while the others wait) ends a rank that waits on one that will never answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from cxr_desktop.core.errors import CxrError

TIMEOUT_ENV = "CXR_DESKTOP_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size``, ``local_rank`` of
    ``local_size`` on its machine. ``World()`` is the single-process run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """The current process group's world (``World()`` when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(),
                 int(os.environ.get("LOCAL_RANK", "0")),
                 int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def launched_by_torchrun() -> bool:
    """True in a process torchrun started as one of several ranks."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def timeout() -> timedelta:
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise CxrError(f"{TIMEOUT_ENV} must be a number of seconds, not {text!r}") from None
    return timedelta(seconds=seconds)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def joined(device: str) -> Iterator[World]:
    """Inside torchrun: join the process group for the run's ``device`` (``auto``, ``cpu``
    or ``cuda``) and leave it on exit; elsewhere the single-process world.

    With CUDA each rank takes the GPU of its local rank and NCCL carries CUDA tensors (gloo
    the CPU ones: the gathered predictions, the stop flag). On CPUs the cores are split
    between the local ranks, so N processes do not fight over the same cores. A rank that
    ends without an error waits for the others before it leaves: torchrun takes a rank's
    exit for the end of the run, and rank 0 may still be writing (a stop's checkpoint, the
    scope model)."""
    if not launched_by_torchrun() or dist.is_initialized():
        yield world()
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device != "cpu" and torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise CxrError(f"rank {local_rank} on this machine has no GPU: "
                           f"{torch.cuda.device_count()} visible")
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"
    else:
        torch.set_num_threads(max(1, cpu_cores() // local_size))
        backend = "gloo"
    dist.init_process_group(backend, timeout=timeout())
    try:
        yield world()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def rank_device(device: torch.device) -> torch.device:
    """A CUDA device becomes the local rank's GPU in a distributed run."""
    if device.type == "cuda" and world().enabled:
        return torch.device("cuda", world().local_rank)
    return device


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (which syncs rank 0's weights now and the
    gradients of every step); the model itself in one process. Made once the layers that
    train are settled: DDP syncs the parameters that require grad when it is made."""
    if not world().enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def broadcast(value: T, src: int = 0) -> T:
    """Rank ``src``'s ``value`` on every rank (any picklable value)."""
    if not world().enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(work: Callable[[], T]) -> T:
    """``work()`` on rank 0, its result on every rank. When it raises, rank 0 re-raises and
    the other ranks raise a CxrError with the same message, so every rank ends with it."""
    if not world().enabled:
        return work()
    outcome: tuple[bool, Any] = (True, None)
    error: BaseException | None = None
    if world().is_main:
        try:
            outcome = (True, work())
        except Exception as exc:  # noqa: BLE001 - re-raised below, told to the others
            error, outcome = exc, (False, str(exc))
    ok, value = broadcast(outcome)
    if error is not None:
        raise error
    if not ok:
        raise CxrError(value)
    return value


def barrier() -> None:
    if world().enabled:
        dist.barrier()


def agreed(flag: Callable[[], bool]) -> Callable[[], bool]:
    """``flag`` asked on every rank, true on all when true on any (a Stop or a Ctrl-C seen
    by one rank stops them all at the same batch). Every rank must call it equally often."""
    if not world().enabled:
        return flag

    def any_rank() -> bool:
        value = torch.tensor([1 if flag() else 0], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    return any_rank


def sums(values: list[float]) -> list[float]:
    """Each value summed over the ranks."""
    if not world().enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def share(rows: np.ndarray) -> np.ndarray:
    """This rank's rows, dealt as ``DistributedSampler`` deals them: the rows padded to a
    multiple of the world size, then every size-th from the rank. Every rank gets as many,
    so each takes the same number of steps and no collective waits forever. The padding
    repeats the last row, so sorted rows give sorted shares (the validation pass needs
    them: a batch is read in row order)."""
    here = world()
    if not here.enabled or len(rows) == 0:
        return rows
    total = -(-len(rows) // here.size) * here.size
    padded = np.concatenate([rows, np.repeat(rows[-1:], total - len(rows))])
    return padded[here.rank::here.size]


def sync_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (batch-norm statistics) on every rank, so that every share of the
    validation set is scored by the same model."""
    if world().enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def gather_shares(local: torch.Tensor, count: int) -> torch.Tensor:
    """The inverse of :func:`share` for per-row results: every rank's ``local`` (rows of its
    share, in order) put back in the order of the ``count`` original rows, padding dropped."""
    here = world()
    if not here.enabled:
        return local
    parts = [torch.empty_like(local) for _ in range(here.size)]
    dist.all_gather(parts, local.contiguous())
    # Row i of the padded list is row i // size of rank i % size's share.
    return torch.stack(parts, dim=1).reshape(-1, *local.shape[1:])[:count]
