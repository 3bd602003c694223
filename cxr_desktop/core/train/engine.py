"""``fit`` and ``resume``: the training engine, free of Qt.

A run is ``epochs`` epochs: the first ``freeze_epochs`` train the head of a pretrained model
with its backbone frozen, the rest train everything with discriminative learning rates
(half the base LR for the head, as fastai's ``fine_tune``; early blocks at
``lr_mult_early`` of that). Each phase has its own AdamW and its own one-cycle or cosine
schedule. After every epoch the validation metrics go to ``metrics.jsonl``, ``best.pt`` is
replaced when the validation AUC improves and ``last.pt`` always; on a stop, ``last.pt``
records the position inside the epoch so ``resume`` continues exactly where it was.

Events (``on_event``) are plain dicts of plain values: ``cache``, ``message``, ``batch``,
``epoch`` and one ``done``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.infer.scope import fit_run_scope
from cxr_desktop.core.models import build_model, get_arch
from cxr_desktop.core.runs.checkpoint import load_checkpoint
from cxr_desktop.core.runs.folder import RunFolder, jsonable, new_run_dir
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.data import EventSink, prepare_data
from cxr_desktop.core.train.session import TrainingSession

DATASET_SNAPSHOT = "dataset.json"


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

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "run_dir": str(self.run_dir), "status": self.status, "epochs": self.epochs,
            "epochs_done": self.epochs_done, "best_epoch": self.best_epoch,
            "best_val_auc": self.best_val_auc, "excluded": self.excluded,
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
    """
    config.validate()
    get_arch(config.arch)
    folder = RunFolder(config.out or new_run_dir(config.arch))
    if folder.config_path.exists() or folder.last_path.exists():
        raise FileError(folder.path, "already holds a run: resume it or choose another folder")
    config = replace(config, out=str(folder.path.resolve()))
    if spec is None:
        spec = _open_spec(config, folder)
    folder.write_config(config)
    spec.save(folder.path / DATASET_SNAPSHOT)
    return _execute(config, folder, spec, None, on_event, should_stop, registry)


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
) -> RunResult:
    sink = on_event or (lambda event: None)
    should_stop = should_stop or _never
    registry = registry or RunRegistry()
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
        result = _train(config, folder, spec, checkpoint, emit, should_stop)
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


def _fit_scope(folder: RunFolder, spec: DatasetSpec, device: torch.device,
               emit: EventSink, should_stop: Callable[[], bool]) -> None:
    """The out-of-scope model of the best checkpoint (features of train and val images);
    a run is still done without it: the viewer then checks DICOM tags only."""
    try:
        scope = fit_run_scope(folder.path, spec, device=str(device), should_stop=should_stop)
    except (CxrError, ValueError) as exc:
        emit({"type": "message", "text": f"no feature-based scope check for this run: {exc}"})
        return
    if scope is None:
        emit({"type": "message", "text": "stopped before the out-of-scope model was fitted: "
              "the viewer checks this run's images by their DICOM tags only"})


def _train(
    config: TrainConfig,
    folder: RunFolder,
    spec: DatasetSpec,
    checkpoint: dict[str, Any] | None,
    emit: EventSink,
    should_stop: Callable[[], bool],
) -> RunResult:
    device = pick_device(config.device)
    size = config.size or get_arch(config.arch).input_size
    data = prepare_data(spec, size, cache_root=config.cache_dir or None,
                        workers=config.workers, on_event=emit, should_stop=should_stop)
    if not data.cache.complete:
        done = int(checkpoint["epoch"]) if checkpoint else 0
        return RunResult(folder.path, "stopped", config.epochs, done, None, None,
                         folder.read_metrics(), data.excluded)
    torch.manual_seed(config.seed)
    if checkpoint is None:
        model = build_model(config.arch, spec.num_outputs, pretrained=config.pretrained)
        if model.pretrained_note:
            emit({"type": "message", "text": model.pretrained_note})
    else:
        model = build_model(config.arch, spec.num_outputs, pretrained="none")
        model.load_state_dict(checkpoint["model"])
        meta = checkpoint["metadata"]
        model.pretrained_source = meta.get("pretrained_source")
        model.pretrained_note = meta.get("pretrained_note", "")
    session = TrainingSession(config, folder, data, model, device, size, emit, should_stop)
    if checkpoint is not None:
        session.restore(checkpoint)
    else:
        folder.write_metrics([])
    status = session.run()
    if status == "done" and folder.best_path.exists():
        _fit_scope(folder, spec, device, emit, should_stop)
    best = session.best
    return RunResult(folder.path, status, config.epochs, session.epoch, best.epoch,
                     best.val_auc if best.val_auc is not None and math.isfinite(best.val_auc)
                     else None, folder.read_metrics(), data.excluded)
