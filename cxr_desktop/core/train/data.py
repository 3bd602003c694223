"""Training data: the dataset's train and validation images in the cache, their targets,
each epoch's sample order and the batches, read from the memory-mapped cache."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cxr_desktop.core.data.cache import ImageCache, ShouldStop, build_cache
from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import DatasetError

EventSink = Callable[[dict[str, Any]], None]
SCOPE_FIELDS = ("modalities", "body_parts", "views")


@dataclass
class TrainingData:
    """Cache rows are the dataset's train then validation items (test images are not cached
    for training). ``train_rows`` / ``val_rows`` index the cache and ``targets``."""

    spec: DatasetSpec
    cache: ImageCache
    items: np.ndarray
    targets: np.ndarray
    train_rows: np.ndarray
    val_rows: np.ndarray
    excluded: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def output_names(self) -> list[str]:
        """One name per model output (the positive class for a binary task)."""
        return [str(self.spec.positive_class)] if self.task == "binary" else self.classes

    def fingerprint(self) -> str:
        """Changes when an image, a label or the train/validation split changes."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self.cache.fingerprint().encode())
        digest.update(np.ascontiguousarray(self.targets).tobytes())
        digest.update(self.train_rows.tobytes())
        return digest.hexdigest()

    def scope(self) -> dict[str, dict[str, int]]:
        """How many training images had each DICOM modality, body part and view."""
        counters = {name: Counter() for name in SCOPE_FIELDS}
        for row in self.train_rows:
            values = self.cache.scope[int(row)] or [None, None, None]
            for name, value in zip(SCOPE_FIELDS, values, strict=True):
                if value:
                    counters[name][str(value)] += 1
        return {name: dict(sorted(c.items())) for name, c in counters.items()}


def prepare_data(
    spec: DatasetSpec,
    size: int,
    *,
    cache_root: str | None = None,
    workers: int = 0,
    on_event: EventSink | None = None,
    should_stop: ShouldStop | None = None,
) -> TrainingData:
    """Build or open the cache of the train and validation images at ``size``.

    Unreadable images are excluded and reported in a message event. When ``should_stop``
    ends the build early, ``data.cache.complete`` is False.
    """
    train_items = spec.split_indices("train")
    val_items = spec.split_indices("val")
    items = np.concatenate([train_items, val_items])
    emit = on_event or (lambda event: None)

    def progress(done: int, total: int) -> None:
        emit({"type": "cache", "done": int(done), "total": int(total)})

    cache = build_cache(
        [spec.abspath(spec.items[int(i)]) for i in items], size, root=cache_root or None,
        workers=workers, progress=progress, should_stop=should_stop,
    )
    all_targets = spec.targets()
    targets = all_targets[items]
    valid = cache.valid
    rows = np.arange(len(items))
    train_rows = rows[: len(train_items)][valid[: len(train_items)]]
    val_rows = rows[len(train_items):][valid[len(train_items):]]
    excluded = [cache.failed[row] for row in sorted(cache.failed)]
    if excluded:
        emit({"type": "message", "text": f"{len(excluded)} unreadable image(s) left out, "
              f"first: {excluded[0]}"})
    data = TrainingData(spec, cache, items, targets, train_rows, val_rows, excluded)
    if cache.complete:
        _check_splits(data)
    return data


def _check_splits(data: TrainingData) -> None:
    where = data.spec.source.get("path") or data.spec.root
    if len(data.train_rows) == 0:
        raise DatasetError(where, "no readable training images (split 'train')")
    if len(data.val_rows) == 0:
        raise DatasetError(where, "no readable validation images (split 'val'): "
                           "give the dataset a validation split")


def missing_classes(task: str, classes: list[str], positive_class: str | None,
                    targets: np.ndarray) -> list[str]:
    """The classes no image of ``targets`` belongs to (multi-label: no positive image)."""
    if task == "multiclass":
        counts = np.bincount(targets.astype(np.int64).reshape(-1), minlength=len(classes))
        return [name for name, count in zip(classes, counts, strict=True) if count == 0]
    if task == "binary":
        values = targets.astype(np.float64).reshape(-1)
        negative = next(c for c in classes if c != positive_class)
        present = {str(positive_class): bool(np.any(values == 1)),
                   negative: bool(np.any(values == 0))}
        return [name for name in classes if not present[name]]
    values = targets.astype(np.float64).reshape(len(targets), -1)
    positives = (values == 1).sum(axis=0)
    return [name for name, count in zip(classes, positives, strict=True) if count == 0]


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _class_problems(where: object, task: str, missing_train: list[str],
                    missing_val: list[str]) -> list[str]:
    """DatasetError when training images lack a class (binary, multi-class); else the
    messages to show about classes missing from either split."""
    if missing_train and task != "multilabel":
        raise DatasetError(where, "the training split has no image of class "
                           f"{_names(missing_train)}: a model cannot learn a class it never "
                           "sees; give the training split images of every class")
    messages = []
    if missing_train:
        messages.append(f"no training image has finding {_names(missing_train)}: the model "
                        "cannot learn it")
    if missing_val:
        what = "image of class" if task != "multilabel" else "positive image of finding"
        effect = ("the validation AUC is undefined and the best epoch is chosen by validation "
                  "loss" if task == "binary" else "its validation AUC is undefined and left "
                  "out of the mean")
        messages.append(f"the validation split has no {what} {_names(missing_val)}: {effect}")
    return messages


def check_spec_classes(spec: DatasetSpec) -> list[str]:
    """Before anything is written or cached: DatasetError when the dataset has no training
    or no validation image, or (binary, multi-class) no training image of a class; the
    warnings about missing classes otherwise (``check_data_classes`` reports them)."""
    where = spec.source.get("path") or spec.root
    train, val = spec.split_indices("train"), spec.split_indices("val")
    if train.size == 0:
        raise DatasetError(where, "no training images (split 'train')")
    if val.size == 0:
        raise DatasetError(where, "no validation images (split 'val'): give the dataset a "
                                  "validation split")
    targets = spec.targets()
    args = (spec.task, list(spec.classes), spec.positive_class)
    return _class_problems(where, spec.task, missing_classes(*args, targets[train]),
                           missing_classes(*args, targets[val]))


def check_data_classes(data: TrainingData) -> list[str]:
    """As ``check_spec_classes`` on the readable images: DatasetError when the training
    images lack a class (binary, multi-class), else one message per split missing some."""
    spec = data.spec
    args = (spec.task, list(spec.classes), spec.positive_class)
    return _class_problems(spec.source.get("path") or spec.root, spec.task,
                           missing_classes(*args, data.targets[data.train_rows]),
                           missing_classes(*args, data.targets[data.val_rows]))


def class_counts(data: TrainingData) -> np.ndarray:
    """Positives per output (binary, multilabel) or images per class (multiclass)."""
    targets = data.targets[data.train_rows]
    if data.task == "multiclass":
        return np.bincount(targets, minlength=len(data.classes)).astype(np.float64)
    return np.nansum(targets.reshape(len(targets), -1), axis=0).astype(np.float64)


def loss_weights(data: TrainingData) -> torch.Tensor:
    """``pos_weight`` (negatives / positives per output) for BCE, or inverse-frequency
    class weights (mean 1) for cross-entropy; 1 where a class has no examples."""
    counts = class_counts(data)
    if data.task == "multiclass":
        weights = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 1.0)
    else:
        targets = data.targets[data.train_rows].reshape(len(data.train_rows), -1)
        known = (~np.isnan(targets)).sum(axis=0)
        negatives = known - counts
        weights = np.where(counts > 0, negatives / np.maximum(counts, 1), 1.0)
    return torch.tensor(weights, dtype=torch.float32)


def epoch_order(data: TrainingData, balance: str, seed: int, epoch: int) -> np.ndarray:
    """The cache rows of one epoch, in order: a seeded permutation, or (``sampler``, binary
    and multiclass) a class-balanced draw with replacement of the same length."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    rows = data.train_rows
    if balance == "sampler" and data.task != "multilabel":
        labels = data.targets[rows].astype(np.int64)
        counts = np.bincount(labels)
        weights = torch.from_numpy(1.0 / counts[labels])
        picks = torch.multinomial(weights, len(rows), replacement=True, generator=generator)
        return rows[picks.numpy()]
    return rows[torch.randperm(len(rows), generator=generator).numpy()]


class BatchReader:
    """Reads batches from the cache one ahead in a background thread (pinned for CUDA)."""

    def __init__(self, data: TrainingData, device: torch.device) -> None:
        self.images = data.cache.images
        self.targets = data.targets
        self.device = device
        self.pin = device.type == "cuda"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="batch-reader")
        self._ahead: tuple[bytes, Future] | None = None

    def _read(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.sort(rows)
        images = torch.from_numpy(np.ascontiguousarray(self.images[rows]))
        targets = torch.from_numpy(np.ascontiguousarray(self.targets[rows]))
        if self.pin:
            images, targets = images.pin_memory(), targets.pin_memory()
        return images, targets

    def prefetch(self, rows: np.ndarray) -> None:
        """Start reading ``rows`` now; a later ``get`` of the same rows will not wait."""
        self._ahead = (rows.tobytes(), self._pool.submit(self._read, rows))

    def get(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) uint8 images and their targets, on the device."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == rows.tobytes():
            images, targets = ahead[1].result()
        else:
            images, targets = self._read(rows)
        images = images.to(self.device, non_blocking=True).unsqueeze(1)
        return images, targets.to(self.device, non_blocking=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
