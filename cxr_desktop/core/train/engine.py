"""``fit`` and ``resume``: the training engine, free of Qt.

A run follows the plan of ``core.train.schedule`` (frozen epochs, batch size, LRs, warm-up
and sizes from its epochs and its dataset size): the frozen epochs, if any, train the head of
a pretrained model on backbone features computed once, the rest train everything with
discriminative learning rates, the first of them at a lower size when the plan says so.
With ``lr`` auto the LR finder runs a short probe first. Each phase has its own AdamW and
its own one-cycle or cosine schedule. After every epoch the validation metrics go to
``metrics.jsonl``, ``best.pt`` is replaced when the validation AUC improves and ``last.pt``
always; on a stop, ``last.pt`` records the position inside the epoch so ``resume``
continues exactly where it was. The plan is written into ``config.json`` and every
checkpoint, so ``resume`` follows the same one. The out-of-scope model is fitted on the
features of the best epoch's validation pass: no pass over the images after the last epoch.

Events (``on_event``) are plain dicts of plain values: ``cache``, ``message``, ``batch``,
``epoch`` and one ``done``.

Started by torchrun, each process is one rank of a data-parallel run (``core.train.
distributed``): rank 0 makes the run folder, builds the image cache while the others wait,
sends the events and writes the folder and the run registry; every rank trains on its share.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.infer.scope import SCOPE_NAME
from cxr_desktop.core.models import CxrNet, build_model, get_arch
from cxr_desktop.core.runs.checkpoint import load_checkpoint
from cxr_desktop.core.runs.folder import DATASET_NAME, RunFolder, jsonable, new_run_dir, os_reason
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.core.train import distributed
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.data import (
    EventSink,
    TrainingData,
    check_data_classes,
    check_spec_classes,
    prepare_data,
)
from cxr_desktop.core.train.schedule import SchedulePlan, plan_schedule
from cxr_desktop.core.train.scope_fit import fit_best_scope
from cxr_desktop.core.train.session import TrainingSession

DATASET_SNAPSHOT = DATASET_NAME


@dataclass
class RunResult:
    """How a call to ``fit`` or ``resume`` ended; ``status`` is ``done`` or ``stopped``."""

    run_dir: Path
    status: str
    epochs: int
    epochs_done: int
    best_epoch: int | None
    best_val_auc: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "run_dir": str(self.run_dir), "status": self.status, "epochs": self.epochs,
            "epochs_done": self.epochs_done, "best_epoch": self.best_epoch,
            "best_val_auc": self.best_val_auc, "excluded": self.excluded,
            "world_size": self.world_size,
        })


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise CxrError("device cuda asked for, but PyTorch sees no CUDA GPU on this machine")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _never() -> bool:
    return False


def _ignore(event: dict[str, Any]) -> None:
    """The event sink of a rank other than 0: rank 0 alone reports."""


class _Unrecorded:
    """The run registry of a rank other than 0: rank 0 alone records the run."""

    def start(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


def open_spec(config: TrainConfig) -> DatasetSpec:
    """The dataset ``config`` names, opened with its options."""
    return open_dataset(config.dataset, **config.dataset_options)


def _open_spec(config: TrainConfig, folder: RunFolder) -> DatasetSpec:
    snapshot = folder.path / DATASET_SNAPSHOT
    return DatasetSpec.load(snapshot) if snapshot.is_file() else open_spec(config)


def fit(
    config: TrainConfig,
    on_event: EventSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    spec: DatasetSpec | None = None,
    registry: RunRegistry | None = None,
) -> RunResult:
    """Train a new run as ``config`` says; returns when done, stopped or early-stopped.

    ``spec`` is the dataset already opened (else ``open_dataset(config.dataset)``); it is
    saved in the run folder as ``dataset.json`` so ``resume`` sees the same splits.
    ``should_stop()`` is checked before every batch: when it turns true, ``last.pt`` is
    saved and the call returns with status ``stopped``.

    The run folder must be new or empty. The device, the dataset's classes and the model
    (its pretrained weights) are checked before anything is written; a training that fails
    before its first checkpoint removes what it wrote (and the folders it made).
    """
    if distributed.world().enabled:
        return _fit_rank(config, on_event, should_stop, spec, registry)
    config, folder, spec = _checked_new(config, spec)
    torch.manual_seed(config.seed)
    model = build_model(config.arch, spec.num_outputs, pretrained=config.pretrained)
    created = folder.create()
    try:
        _write_new(config, folder, spec)
        return _execute(config, folder, spec, None, on_event, should_stop, registry, model)
    except Exception:
        discard_unstarted(folder, created, registry)
        raise


def _checked_new(config: TrainConfig,
                 spec: DatasetSpec | None) -> tuple[TrainConfig, RunFolder, DatasetSpec]:
    """The settings, the new run folder (not made yet) and the dataset, all checked."""
    config.validate()
    get_arch(config.arch)
    folder = RunFolder(config.out or new_run_dir(config.arch))
    folder.check_new()
    config = replace(config, out=str(folder.path.resolve()))
    if spec is None:
        spec = _open_spec(config, folder)
    check_spec_classes(spec)
    pick_device(config.device)
    return config, folder, spec


def _write_new(config: TrainConfig, folder: RunFolder, spec: DatasetSpec) -> None:
    folder.write_config(config)
    try:
        spec.save(folder.path / DATASET_SNAPSHOT)
    except OSError as exc:
        raise FileError(folder.path / DATASET_SNAPSHOT,
                        f"cannot write ({os_reason(exc)})") from None


def prepare_run(config: TrainConfig,
                spec: DatasetSpec | None = None) -> tuple[TrainConfig, RunFolder, list[Path]]:
    """A new run folder that has not started (``config.json``, ``dataset.json``): what
    ``resume`` trains from its first epoch, in this process or as N ranks of torchrun (the
    ``--nproc`` launch, a cluster job). Returns the settings as written, the folder and the
    folders made (for :func:`discard_unstarted`)."""
    config, folder, spec = _checked_new(config, spec)
    created = folder.create()
    try:
        _write_new(config, folder, spec)
    except Exception:
        folder.discard(created)
        raise
    return config, folder, created


def discard_unstarted(folder: RunFolder, created: list[Path],
                      registry: RunRegistry | None = None) -> None:
    """Remove a run that ended before its first checkpoint (and forget it); a run with a
    checkpoint is kept, to resume."""
    if not (folder.last_path.exists() or folder.best_path.exists()):
        folder.discard(created)
        _forget(registry, folder)


def _fit_rank(config: TrainConfig, on_event: EventSink | None,
              should_stop: Callable[[], bool] | None, spec: DatasetSpec | None,
              registry: RunRegistry | None) -> RunResult:
    """``fit`` as one rank of N: rank 0 checks and writes the new run folder and tells the
    others where it is; every rank then trains it from its start, as ``resume`` would."""
    created: list[Path] = []

    def start() -> str:
        nonlocal created
        checked, folder, created = prepare_run(config, spec)
        return checked.out

    out = distributed.on_main(start)
    try:
        return resume(out, on_event, should_stop, registry=registry)
    except Exception:
        if distributed.world().is_main:
            discard_unstarted(RunFolder(out), created, registry)
        raise


def _forget(registry: RunRegistry | None, folder: RunFolder) -> None:
    """Drop a discarded run from the registry (a registry that fails is left as it is: the
    error that ended the training is the one to report)."""
    with contextlib.suppress(CxrError):
        (registry or RunRegistry()).remove(folder.path)


def resume(
    run_dir: str | Path,
    on_event: EventSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    registry: RunRegistry | None = None,
) -> RunResult:
    """Continue a stopped or killed run from ``last.pt`` to its planned epoch count.

    A run with no ``last.pt`` (stopped while its cache was built, or killed in its first
    epoch) starts again from the beginning; a finished run returns at once.
    """
    folder = RunFolder(run_dir)
    config = folder.read_config()
    checkpoint = load_checkpoint(folder.last_path) if folder.last_path.exists() else None
    spec = _open_spec(config, folder)
    return _execute(config, folder, spec, checkpoint, on_event, should_stop, registry)


def _execute(
    config: TrainConfig,
    folder: RunFolder,
    spec: DatasetSpec,
    checkpoint: dict[str, Any] | None,
    on_event: EventSink | None,
    should_stop: Callable[[], bool] | None,
    registry: RunRegistry | None,
    model: CxrNet | None = None,
) -> RunResult:
    main = distributed.world().is_main
    sink = (on_event or _ignore) if main else _ignore
    should_stop = should_stop or _never
    registry = (registry or RunRegistry()) if main else _Unrecorded()
    registry.start(folder.path, arch=config.arch, dataset=config.dataset, task=spec.task,
                   epochs=config.epochs)

    def emit(event: dict[str, Any]) -> None:
        """Pass events on; each finished epoch is in the registry before anyone hears of it,
        so a history refreshed on the event shows it."""
        if event["type"] == "epoch":
            registry.update(folder.path, epochs_done=event["epoch"],
                            best_val_auc=event["best_val_auc"], best_epoch=event["best_epoch"])
        sink(event)

    status = "failed"
    result: RunResult | None = None
    try:
        result = _train(config, folder, spec, checkpoint, emit, should_stop, model)
        status = result.status
        return result
    except KeyboardInterrupt:
        status = "stopped"
        raise
    finally:
        registry.update(
            folder.path, status=status,
            epochs_done=result.epochs_done if result else None,
            best_val_auc=result.best_val_auc if result else None,
            best_epoch=result.best_epoch if result else None,
        )
        if result is not None:
            emit({"type": "done", **result.to_dict()})


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _train(
    config: TrainConfig,
    folder: RunFolder,
    spec: DatasetSpec,
    checkpoint: dict[str, Any] | None,
    emit: EventSink,
    should_stop: Callable[[], bool],
    model: CxrNet | None = None,
) -> RunResult:
    if checkpoint is not None and checkpoint.get("finished"):
        return _already_complete(config, folder, spec, checkpoint, emit, should_stop)
    device = distributed.rank_device(pick_device(config.device))
    info = get_arch(config.arch)
    size = config.size or info.input_size
    world_size = distributed.world().size
    data = _shared_data(config, spec, size, emit, should_stop)
    if data is None or not data.cache.complete:
        done = int(checkpoint["epoch"]) if checkpoint else 0
        return RunResult(folder.path, "stopped", config.epochs, done, None, None,
                         folder.read_metrics(), data.excluded if data else [], world_size)
    for message in check_data_classes(data):
        emit({"type": "message", "text": message})
    if model is None:
        torch.manual_seed(config.seed)
    if checkpoint is None:
        if model is None:
            model = build_model(config.arch, spec.num_outputs, pretrained=config.pretrained)
        if model.pretrained_note:
            emit({"type": "message", "text": model.pretrained_note})
    else:
        model = build_model(config.arch, spec.num_outputs, pretrained="none")
        model.load_state_dict(checkpoint["model"])
        meta = checkpoint["metadata"]
        model.pretrained_source = meta.get("pretrained_source")
        model.pretrained_note = meta.get("pretrained_note", "")
    plan = _plan(config, checkpoint, len(data.train_rows), size, model, info.min_input_size)
    session = TrainingSession(config, folder, data, model, device, plan, emit, should_stop)
    if checkpoint is not None:
        session.restore(checkpoint)
    else:
        folder.write_metrics([])
    status = session.run()
    if status == "done" and folder.best_path.exists() and distributed.world().is_main:
        fit_best_scope(folder, spec, device, emit, should_stop, session)
    best = session.best
    return RunResult(folder.path, status, config.epochs, session.epoch, best.epoch,
                     _finite(best.val_auc), folder.read_metrics(), data.excluded, world_size)


def _shared_data(config: TrainConfig, spec: DatasetSpec, size: int, emit: EventSink,
                 should_stop: Callable[[], bool]) -> TrainingData | None:
    """The training images, cached once: in a distributed run rank 0 builds the cache while
    the others wait, then each machine's first rank opens it (and builds it when its cache
    folder is not the one rank 0 wrote), then the other ranks. None on every rank when rank
    0 was stopped while building."""
    def prepare(sink: EventSink, stop: Callable[[], bool]) -> TrainingData:
        return prepare_data(spec, size, cache_root=config.cache_dir or None,
                            workers=config.workers, on_event=sink, should_stop=stop)

    here = distributed.world()
    if not here.enabled:
        return prepare(emit, should_stop)
    data: TrainingData | None = None

    def first() -> bool:
        nonlocal data
        data = prepare(emit, should_stop)
        return data.cache.complete

    if not distributed.on_main(first):
        return data
    for turn in (here.local_rank == 0, True):
        if data is None and turn:
            data = prepare(_ignore, _never)
        distributed.barrier()
    return data


def _plan(config: TrainConfig, checkpoint: dict[str, Any] | None, train_images: int,
          size: int, model: CxrNet, min_size: int) -> SchedulePlan:
    """The plan recorded in the checkpoint or in ``config.json``, else a new one. A run
    saved before plans existed resumes at its one size."""
    recorded = (checkpoint or {}).get("plan") or config.plan
    if recorded:
        return SchedulePlan.from_dict(recorded)
    plan = plan_schedule(config, train_images, size=size,
                         pretrained=model.pretrained_source is not None, min_size=min_size)
    if checkpoint is not None:
        plan = replace(plan, sizes=[size] * plan.epochs)
    return plan


def _already_complete(config: TrainConfig, folder: RunFolder, spec: DatasetSpec,
                      checkpoint: dict[str, Any], emit: EventSink,
                      should_stop: Callable[[], bool]) -> RunResult:
    """A finished run: said at once, without preparing its images; only an out-of-scope
    model that was never fitted (a kill after the last epoch) is fitted now."""
    emit({"type": "message", "text": "this run is already complete"})
    if folder.best_path.exists() and not (folder.path / SCOPE_NAME).exists() \
            and distributed.world().is_main:
        fit_best_scope(folder, spec, pick_device("auto"), emit, should_stop)
    best = checkpoint.get("best") or {}
    epoch = best.get("epoch")
    return RunResult(folder.path, "done", config.epochs, int(checkpoint["epoch"]),
                     None if epoch is None else int(epoch), _finite(best.get("val_auc")),
                     folder.read_metrics(), world_size=distributed.world().size)
