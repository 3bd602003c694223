"""Is this image what the model was trained on? DICOM tags, then a feature distance.

**Tags.** The checkpoint records the DICOM modalities, body parts and views of the training
images (``metadata["training_scope"]``). A tag the image has and training never saw makes it
out of scope (a tibia, ``EXTREMITY``, shown to a model trained on ``CHEST``). When training
saw no value of a tag at all (a model trained on PNGs), the app's purpose decides: a chest
radiograph model is assumed, so the body part must be CHEST (or THORAX, LUNG) and the
modality CR or DX; the reason says that this was assumed. A missing tag is never evidence
against an image.

**Features.** The out-of-distribution score is the Mahalanobis distance of the image's
pooled features (the vector the head sees) to those of the training images: their mean and
a Ledoit-Wolf shrunk covariance (well defined with fewer images than features). The
threshold is the 99th percentile of the validation images' distances, so about 1 in 100
images like the validation ones is flagged. ``fit_run_scope`` computes it for a finished run
and saves ``scope.npz`` beside its checkpoints; the Predictor loads it when it belongs to the
checkpoint it loaded.

Training fits it without a pass of its own (``fit_scope_features``): on the features of the
best epoch's validation pass, which the head computed anyway. Mean and covariance then come
from the validation images, and the threshold from their cross-fitted distances (each fold's
distance to a model fitted on the other folds), so that it is not set by images the model
has already seen.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cxr_desktop.core.atomic import atomic_write
from cxr_desktop.core.errors import CxrError, FileError, first_line
from cxr_desktop.core.io import Radiograph
from cxr_desktop.core.models import CxrNet

SCOPE_NAME = "scope.npz"
SCOPE_METHOD = "mahalanobis/ledoit-wolf/pooled-features/v1"
SCOPE_METHOD_VALIDATION = "mahalanobis/ledoit-wolf/pooled-features/validation-crossfit/v1"
SCOPE_FOLDS = 5
DEFAULT_PERCENTILE = 99.0
#: The scope assumed for a tag that no training image had: a chest radiograph model.
DEFAULT_MODALITIES = ("CR", "DX")
DEFAULT_BODY_PARTS = ("CHEST",)
BODY_PART_ALIASES = {"THORAX": "CHEST", "LUNG": "CHEST", "LUNGS": "CHEST"}
# (training_scope key, Radiograph attribute, words, default when training saw no value)
_TAGS: tuple[tuple[str, str, str, tuple[str, ...] | None], ...] = (
    ("modalities", "modality", "modality", DEFAULT_MODALITIES),
    ("body_parts", "body_part", "body part", DEFAULT_BODY_PARTS),
    ("views", "view_position", "view", None),
)


@dataclass
class ScopeCheck:
    """``in_scope`` and the reason in plain words; the feature distance when known."""

    in_scope: bool
    reason: str
    distance: float | None = None
    threshold: float | None = None


@dataclass
class ScopeModel:
    """Mean and precision of the training features, and the validation threshold."""

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    val_distances: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distances (not squared) of (N, D) features."""
        delta = np.asarray(features, dtype=np.float64).reshape(-1, self.mean.size) - self.mean
        squared = np.einsum("nd,de,ne->n", delta, self.precision, delta)
        return np.sqrt(np.maximum(squared, 0.0))

    def save(self, path: str | Path) -> Path:
        """``np.savez`` through a temporary file: readers see the old file or the new one."""
        arrays = {"mean": self.mean.astype(np.float64),
                  "precision": self.precision.astype(np.float32),
                  "threshold": np.float64(self.threshold),
                  "val_distances": self.val_distances.astype(np.float64),
                  "meta": np.array(json.dumps(self.meta, sort_keys=True))}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))

    @classmethod
    def load(cls, path: str | Path) -> ScopeModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(mean=data["mean"], precision=data["precision"].astype(np.float64),
                           threshold=float(data["threshold"]),
                           val_distances=data["val_distances"],
                           meta=json.loads(str(data["meta"])))
        except (OSError, KeyError, ValueError) as exc:
            raise FileError(path, f"not a readable scope file ({first_line(exc)})") from exc


def pooled(model: CxrNet, maps: Tensor) -> Tensor:
    """The (B, D) vector the head sees for feature maps (B, D, h, w): pooled and normed."""
    return model.pool_norm(maps.mean(dim=(2, 3), keepdim=True)).flatten(1)


def _as_input(batch: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """(B, 1, S, S) float in [0, 1] from uint8 or float batches, with or without channel."""
    x = torch.as_tensor(np.asarray(batch)) if isinstance(batch, np.ndarray) else batch
    x = x.to(device)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.unsqueeze(1) if x.ndim == 3 else x


@torch.no_grad()
def features_of(model: CxrNet, batches: Iterable[Tensor | np.ndarray]) -> np.ndarray:
    """Pooled features (N, D) of every image in ``batches``, the model in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [pooled(model, model.forward_features(_as_input(b, device))).double().cpu().numpy()
              for b in batches]
    return np.concatenate(chunks) if chunks else np.zeros((0, model.num_features))


def fit_scope(model: CxrNet, train_batches: Iterable[Tensor | np.ndarray],
              val_batches: Iterable[Tensor | np.ndarray],
              percentile: float = DEFAULT_PERCENTILE) -> ScopeModel:
    """Fit the feature distance on training images and its threshold on validation images.

    Batches are (B, S, S) or (B, 1, S, S), uint8 or float in [0, 1], at the model's input
    size, made by the same chain as the model's input (the training cache is).
    """
    train = features_of(model, train_batches)
    val = features_of(model, val_batches)
    if len(train) < 2 or len(val) < 1:
        raise CxrError(f"scope: needs 2 training and 1 validation image at least, "
                       f"got {len(train)} and {len(val)}")
    scope, shrinkage = _fit_distance(train)
    scope.val_distances = scope.distance(val)
    scope.threshold = float(np.percentile(scope.val_distances, percentile))
    scope.meta = {"method": SCOPE_METHOD, "percentile": percentile, "train_images": len(train),
                  "val_images": len(val), "shrinkage": shrinkage,
                  "features": int(train.shape[1])}
    return scope


@dataclass
class _LedoitWolf:
    """Ledoit-Wolf shrinkage of the covariance of (N, D) rows, computed from the N x N Gram
    matrix (as sklearn's ``ledoit_wolf_shrinkage``, which forms D x D products): the
    covariance is ``scale * I + (1 - shrinkage) / N * C'C`` (``C`` the centred rows)."""

    mean: np.ndarray
    centered: np.ndarray
    shrinkage: float
    scale: float

    @classmethod
    def fit(cls, features: np.ndarray) -> _LedoitWolf:
        mean = features.mean(axis=0)
        centered = features - mean
        count, dims = centered.shape
        gram = centered @ centered.T
        norms = np.diag(gram)
        mu = float(norms.sum()) / (count * dims)
        delta = (float(np.sum(gram * gram)) / count ** 2 - 2 * mu * float(norms.sum()) / count
                 + dims * mu ** 2) / dims
        beta = (float(np.sum(norms * norms)) / count
                - float(np.sum(gram * gram)) / count ** 2) / (dims * count)
        beta = min(beta, delta)
        shrinkage = 0.0 if beta == 0 else beta / delta
        return cls(mean, centered, shrinkage, shrinkage * mu)

    def _inner(self) -> np.ndarray:
        """The N x N matrix of the Woodbury identity (N < D, shrinkage in (0, 1))."""
        count = len(self.centered)
        return (self.scale * count / (1.0 - self.shrinkage) * np.eye(count)
                + self.centered @ self.centered.T)

    def _woodbury(self) -> bool:
        count, dims = self.centered.shape
        return count < dims and 0.0 < self.shrinkage < 1.0 and self.scale > 0

    def precision(self) -> np.ndarray:
        """The inverse of the shrunk covariance: through the Woodbury identity when N < D
        (an N x N solve), else a plain inverse (it is positive definite)."""
        count, dims = self.centered.shape
        if self._woodbury():
            solved = np.linalg.solve(self._inner(), self.centered)
            return (np.eye(dims) - self.centered.T @ solved) / self.scale
        covariance = (1.0 - self.shrinkage) / count * self.centered.T @ self.centered
        covariance[np.diag_indices(dims)] += self.scale
        return np.linalg.inv(covariance)

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of (M, D) rows, without forming the D x D precision."""
        delta = features - self.mean
        if not self._woodbury():
            return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", delta, self.precision(),
                                                delta), 0.0))
        projected = delta @ self.centered.T
        squared = (np.einsum("nd,nd->n", delta, delta) - np.einsum(
            "nk,nk->n", projected, np.linalg.solve(self._inner(), projected.T).T)) / self.scale
        return np.sqrt(np.maximum(squared, 0.0))


def _fit_distance(features: np.ndarray) -> tuple[ScopeModel, float]:
    """Mean and shrunk precision of ``features`` (threshold still 0), and the shrinkage."""
    model = _LedoitWolf.fit(np.asarray(features, dtype=np.float64))
    scope = ScopeModel(mean=model.mean, precision=model.precision(), threshold=0.0,
                       val_distances=np.zeros(0))
    return scope, model.shrinkage


def fit_scope_features(val_features: np.ndarray, percentile: float = DEFAULT_PERCENTILE,
                       folds: int = SCOPE_FOLDS) -> ScopeModel:
    """The scope from validation features alone (N, D): mean and precision of all of them,
    the threshold the ``percentile`` of their cross-fitted distances over ``folds`` folds
    (fewer with fewer than ``2 * folds`` images)."""
    features = np.asarray(val_features, dtype=np.float64)
    if len(features) < 4:
        raise CxrError(f"scope: needs 4 validation images at least, got {len(features)}")
    folds = max(2, min(folds, len(features) // 2))
    fold_of = np.arange(len(features)) % folds
    distances = np.empty(len(features))
    for fold in range(folds):
        held = fold_of == fold
        distances[held] = _LedoitWolf.fit(features[~held]).distances(features[held])
    scope, shrinkage = _fit_distance(features)
    scope.val_distances = distances
    scope.threshold = float(np.percentile(distances, percentile))
    scope.meta = {"method": SCOPE_METHOD_VALIDATION, "percentile": percentile,
                  "train_images": 0, "val_images": len(features), "folds": folds,
                  "shrinkage": shrinkage, "features": int(features.shape[1])}
    return scope


class _Stopped(Exception):
    """``should_stop`` turned true between two batches of a scope fit."""


def _chunks(images: np.ndarray, rows: np.ndarray, size: int,
            should_stop: Callable[[], bool]) -> Iterable[np.ndarray]:
    for start in range(0, len(rows), size):
        if should_stop():
            raise _Stopped
        yield np.ascontiguousarray(images[np.sort(rows[start:start + size])])


def fit_run_scope(run_dir: str | Path, spec: Any = None, device: str = "cpu",
                  batch_size: int = 64,
                  should_stop: Callable[[], bool] | None = None) -> ScopeModel | None:
    """Fit the scope of a finished run on its best checkpoint; save ``scope.npz`` in it.

    ``spec`` is the run's DatasetSpec (default: the ``dataset.json`` snapshot in the run
    folder). The images come from the training cache, which is reused, not rebuilt.
    ``should_stop()`` is checked before every batch; when it turns true, nothing is saved
    and the call returns None.
    """
    # Imported here: training pulls in the data pipeline, inference alone does not need it.
    from cxr_desktop.core.data.spec import DatasetSpec
    from cxr_desktop.core.runs import RunFolder, load_run
    from cxr_desktop.core.train.data import prepare_data
    from cxr_desktop.core.train.engine import DATASET_SNAPSHOT

    folder = RunFolder(run_dir)
    run = load_run(folder.path, device=device)
    config = folder.read_config()
    if spec is None:
        spec = DatasetSpec.load(folder.path / DATASET_SNAPSHOT)
    size = int(run.metadata["input_size"])
    data = prepare_data(spec, size, cache_root=config.cache_dir or None,
                        workers=config.workers)
    images = data.cache.images
    stop = should_stop or (lambda: False)
    try:
        scope = fit_scope(run.model, _chunks(images, data.train_rows, batch_size, stop),
                          _chunks(images, data.val_rows, batch_size, stop))
    except _Stopped:
        return None
    scope.meta.update(checkpoint_meta(run.checkpoint_path.name, run.metadata))
    scope.save(folder.path / SCOPE_NAME)
    return scope


def checkpoint_meta(name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """What ties a scope file to one checkpoint: its name, save time, epoch and input size."""
    return {"checkpoint": name, "checkpoint_saved": metadata.get("saved"),
            "epoch": metadata.get("epoch"), "input_size": metadata.get("input_size"),
            "arch": metadata.get("arch")}


def _norm(value: str | None) -> str | None:
    text = (value or "").strip().upper()
    return BODY_PART_ALIASES.get(text, text) or None


def tag_problems(radiograph: Radiograph, training_scope: dict[str, Any] | None) -> list[str]:
    """Plain sentences, one per DICOM tag that training did not cover."""
    problems = []
    seen = training_scope or {}
    for key, attribute, words, default in _TAGS:
        value = _norm(getattr(radiograph, attribute))
        if value is None:
            continue
        known = sorted({n for n in (_norm(str(k)) for k in seen.get(key) or {}) if n})
        if known and value not in known:
            problems.append(f"{words} {value} was not in the training data "
                            f"(seen: {', '.join(known)})")
        elif not known and default is not None and value not in default:
            problems.append(f"{words} {value} is not a chest radiograph's "
                            f"({' or '.join(default)}; the training images had no DICOM "
                            f"{words} tag, so a chest model is assumed)")
    return problems


def check_scope(radiograph: Radiograph, training_scope: dict[str, Any] | None,
                ood: ScopeModel | None = None, features: np.ndarray | None = None
                ) -> ScopeCheck:
    """Tags first, then (when a scope model and the image's features are given) distance."""
    problems = tag_problems(radiograph, training_scope)
    distance = threshold = None
    if ood is not None and features is not None:
        distance, threshold = float(ood.distance(features)[0]), ood.threshold
        if distance > threshold:
            problems.append(f"unlike the training images: feature distance {distance:.1f} "
                            f"is above the validation threshold {threshold:.1f}")
    if problems:
        return ScopeCheck(False, "; ".join(problems), distance, threshold)
    reason = "DICOM tags match the training data" if radiograph.source_format == "DICOM" \
        else "no DICOM tags to check"
    if distance is not None:
        reason += f"; feature distance {distance:.1f} within {threshold:.1f}"
    else:
        reason += "; no feature distance (the run has no scope.npz)"
    return ScopeCheck(True, reason, distance, threshold)
