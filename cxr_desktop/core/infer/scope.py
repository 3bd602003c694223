"""Is this image what the model was trained on? An image score and, separately, DICOM tags.

**Image score.** A detector of :mod:`cxr_desktop.core.infer.ood` (default ``layers``: the
Mahalanobis distances of the channel statistics of the deeper half of the backbone's
stages, standardised and summed) scores the image against the validation images of the
checkpoint. The threshold is set for a stated false-alarm rate (default 5 %): the order
statistic of the validation images' **cross-fitted** scores (each fold scored by a detector
fitted on the other folds; the detector kept is one of those, or for ``layers`` all of them
averaged, so it is not set on images the fit saw) that flags at most that rate of images
like them with 95 % confidence (``ood.threshold_for``; with few validation images, their
largest score).
``bench/scope.py`` compares the detectors on real radiographs.

Training fits it without a pass of its own: on what the best epoch's validation pass computed
anyway (pooled features, logits, and the stage statistics that forward hooks recorded during
that pass), see ``fit_scope_inputs``. ``fit_run_scope`` does the same for a finished run with
one float32 pass over its validation images: after a resume, and after a validation pass
under autocast (bf16 or fp16), whose statistics are far from the float32 Predictor's (up to
76 % on EfficientNet-Lite0 in bf16; the scope fitted on them flagged 59 % of unseen chests
of ``bench/scope.py``). Both save
``scope.npz`` beside the checkpoints; the Predictor loads it when it belongs to the
checkpoint it loaded. A ``scope.npz`` of an older version (a pooled-feature distance at the
99th percentile) still loads and says so in ``meta["legacy"]``.

**Tags** (:mod:`.scope_tags`) are the second, independent signal; ``check_scope`` reports both
and combines them into ``in_scope`` (out when either says out).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cxr_desktop.core.atomic import atomic_write
from cxr_desktop.core.errors import CxrError, FileError, first_line
from cxr_desktop.core.infer.ood import (
    DEFAULT_FOLDS,
    DETECTORS,
    Detector,
    LedoitWolf,
    OodInputs,
    PooledMahalanobis,
    deep_half,
    threshold_for,
)
from cxr_desktop.core.infer.scope_layers import LayerRecorder, stage_names
from cxr_desktop.core.infer.scope_tags import tag_check, tag_problems
from cxr_desktop.core.io import Radiograph
from cxr_desktop.core.models import CxrNet

__all__ = ["DEFAULT_FALSE_ALARM_RATE", "DEFAULT_METHOD", "SCOPE_NAME", "ImageScope",
           "ScopeCheck", "ScopeModel", "check_scope", "checkpoint_meta", "fit_run_scope",
           "fit_scope", "fit_scope_inputs", "inputs_of", "tag_problems"]

SCOPE_NAME = "scope.npz"
SCOPE_FORMAT = 2
DEFAULT_METHOD = "layers"
DEFAULT_FALSE_ALARM_RATE = 0.05
SCOPE_FOLDS = DEFAULT_FOLDS


def method_label(name: str) -> str:
    """The ``meta["method"]`` of a scope fitted by detector ``name`` on validation images."""
    return f"{name}/validation-crossfit/v2"


SCOPE_METHOD_VALIDATION = method_label(DEFAULT_METHOD)
LEGACY_METHOD = "mahalanobis/pooled-features/99th-percentile/v1"


@dataclass
class ImageScope:
    """The image score against its threshold, and what the threshold means."""

    score: float
    threshold: float
    false_alarm_rate: float
    method: str
    in_scope: bool

    def describe(self) -> str:
        """``scope score 12.3 (threshold 9.8 at 5% false alarms)``."""
        return (f"scope score {self.score:.1f} (threshold {self.threshold:.1f} at "
                f"{self.false_alarm_rate:.0%} false alarms)")

    def to_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 3), "threshold": round(self.threshold, 3),
                "false_alarm_rate": self.false_alarm_rate, "method": self.method,
                "in_scope": self.in_scope}


@dataclass
class ScopeCheck:
    """Combined ``in_scope`` and reason; the image score and the tag check apart."""

    in_scope: bool
    reason: str
    image: ImageScope | None = None
    tags_in_scope: bool = True
    tags_reason: str = ""

    @property
    def score(self) -> float | None:
        return None if self.image is None else self.image.score

    @property
    def threshold(self) -> float | None:
        return None if self.image is None else self.image.threshold


@dataclass
class ScopeModel:
    """A fitted detector, its threshold and the cross-fitted validation scores behind it."""

    detector: Detector
    threshold: float
    val_scores: np.ndarray
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.detector.name

    @property
    def needs_layers(self) -> bool:
        return self.detector.needs_layers

    @property
    def legacy(self) -> bool:
        return bool(self.meta.get("legacy"))

    def score(self, inputs: OodInputs) -> np.ndarray:
        return self.detector.score(inputs)

    def judge(self, inputs: OodInputs) -> ImageScope:
        """The first image of ``inputs`` against the threshold."""
        value = float(self.score(inputs)[0])
        return ImageScope(value, self.threshold, self.false_alarm_rate, self.method,
                          value <= self.threshold)

    def save(self, path: str | Path) -> Path:
        """``np.savez`` through a temporary file: readers see the old file or the new one."""
        meta = dict(self.meta, format=SCOPE_FORMAT, detector=self.detector.name,
                    options=self.detector.options(), false_alarm_rate=self.false_alarm_rate)
        arrays = {**self.detector.arrays(), "threshold": np.float64(self.threshold),
                  "val_scores": np.asarray(self.val_scores, dtype=np.float64),
                  "meta": np.array(json.dumps(meta, sort_keys=True))}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))

    @classmethod
    def load(cls, path: str | Path) -> ScopeModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            meta = json.loads(str(arrays.pop("meta")))
            if "format" not in meta:
                return _legacy(arrays, meta)
            kind = DETECTORS.get(str(meta.get("detector")))
            if kind is None:
                raise ValueError(f"unknown detector {meta.get('detector')!r}")
            return cls(kind.from_arrays(arrays, meta), float(arrays["threshold"]),
                       arrays["val_scores"], float(meta["false_alarm_rate"]), meta)
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise FileError(path, f"not a readable scope file ({first_line(exc)})") from exc


def _legacy(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ScopeModel:
    """A scope.npz of cxr-desktop before format 2: pooled-feature Mahalanobis, threshold at
    a percentile (99) of the validation distances."""
    model = LedoitWolf(np.asarray(arrays["mean"], dtype=np.float64), 0.0,
                       float(meta.get("shrinkage", 0.0)),
                       precision=np.asarray(arrays["precision"], dtype=np.float64))
    rate = 1.0 - float(meta.get("percentile", 99.0)) / 100.0
    meta = dict(meta, legacy=True, fitted_method=meta.get("method"), method=LEGACY_METHOD)
    return ScopeModel(PooledMahalanobis(model), float(arrays["threshold"]),
                      np.asarray(arrays["val_distances"]), rate, meta)


def fit_scope_inputs(inputs: OodInputs, method: str = DEFAULT_METHOD,
                     false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
                     folds: int = SCOPE_FOLDS, **options: Any) -> ScopeModel:
    """The scope from the validation images' inputs alone: the detector of the first fold
    (``Detector.fit_crossfit``), the threshold from the cross-fitted scores over ``folds``
    folds (fewer with fewer than ``2 * folds`` images) by ``ood.threshold_for``; the
    confidence it reached is ``meta["confidence"]``."""
    if method not in DETECTORS:
        raise CxrError(f"scope: unknown detector {method!r}: one of {', '.join(DETECTORS)}")
    if not 0.0 < false_alarm_rate < 1.0:
        raise CxrError(f"scope: the false-alarm rate must be in (0, 1), not {false_alarm_rate}")
    if len(inputs) < 4:
        raise CxrError(f"scope: needs 4 validation images at least, got {len(inputs)}")
    detector, scores = DETECTORS[method].fit_crossfit(inputs, folds, **options)
    threshold, confidence = threshold_for(scores, false_alarm_rate)
    meta = {"method": method_label(method), "train_images": 0, "val_images": len(inputs),
            "confidence": round(confidence, 4),
            "folds": min(folds, len(inputs) // 2), "features": int(inputs.pooled.shape[1])}
    return ScopeModel(detector, threshold, scores, false_alarm_rate, meta)


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
def inputs_of(model: CxrNet, batches: Iterable[Tensor | np.ndarray],
              layers: bool | str = True) -> OodInputs:
    """Pooled features, logits and stage statistics of every image in ``batches`` ((B, S,
    S) or (B, 1, S, S), uint8 or float in [0, 1]), the model in eval mode. ``layers``: True
    records the stages the default detector reads (``deep_half``), ``"all"`` every stage,
    False none."""
    model.eval()
    device = next(model.parameters()).device
    features, logits = [], []
    stages = stage_names(model)
    recorder = LayerRecorder(model, stages if layers == "all" else deep_half(stages)) \
        if layers else None
    with recorder or nullcontext():
        for batch in batches:
            vector = pooled(model, model.forward_features(_as_input(batch, device)))
            features.append(vector.double().cpu().numpy())
            logits.append(model.head(vector).double().cpu().numpy())
    if not features:
        return OodInputs(np.zeros((0, model.num_features)), np.zeros((0, model.num_outputs)))
    return OodInputs(np.concatenate(features), np.concatenate(logits),
                     recorder.take() if recorder is not None else {})


def fit_scope(model: CxrNet, val_batches: Iterable[Tensor | np.ndarray],
              method: str = DEFAULT_METHOD,
              false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE) -> ScopeModel:
    """The scope of ``model`` from one pass over validation images (see ``inputs_of``)."""
    detector = DETECTORS.get(method)
    inputs = inputs_of(model, val_batches, layers=detector is not None and detector.needs_layers)
    return fit_scope_inputs(inputs, method, false_alarm_rate)


class _Stopped(Exception):
    """``should_stop`` turned true between two batches of a scope fit."""


def _chunks(images: np.ndarray, rows: np.ndarray, size: int,
            should_stop: Callable[[], bool]) -> Iterable[np.ndarray]:
    for start in range(0, len(rows), size):
        if should_stop():
            raise _Stopped
        yield np.ascontiguousarray(images[np.sort(rows[start:start + size])])


def fit_run_scope(run_dir: str | Path, spec: Any = None, device: str = "cpu",
                  batch_size: int = 64, should_stop: Callable[[], bool] | None = None,
                  method: str = DEFAULT_METHOD,
                  false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE) -> ScopeModel | None:
    """Fit the scope of a finished run on its best checkpoint; save ``scope.npz`` in it.

    ``spec`` is the run's DatasetSpec (default: the ``dataset.json`` snapshot in the run
    folder). The validation images come from the training cache, reused, not rebuilt.
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
    stop = should_stop or (lambda: False)
    try:
        scope = fit_scope(run.model, _chunks(data.cache.images, data.val_rows, batch_size,
                                             stop), method, false_alarm_rate)
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


def check_scope(radiograph: Radiograph, training_scope: dict[str, Any] | None,
                ood: ScopeModel | None = None, inputs: OodInputs | None = None) -> ScopeCheck:
    """The tags and (when a scope model and the image's inputs are given) the image score,
    each on its own; ``in_scope`` is False when either says out."""
    tags_ok, tags_reason = tag_check(radiograph, training_scope)
    image = ood.judge(inputs) if ood is not None and inputs is not None else None
    if image is None:
        image_reason = "no image score (the run has no scope.npz)"
    elif image.in_scope:
        image_reason = f"like the validation images: {image.describe()}"
    else:
        image_reason = f"unlike the validation images: {image.describe()}"
    in_scope = tags_ok and (image is None or image.in_scope)
    if in_scope:
        reason = f"{tags_reason}; {image_reason}"
    else:
        reason = "; ".join(([] if tags_ok else [tags_reason])
                           + ([] if image is None or image.in_scope else [image_reason]))
    return ScopeCheck(in_scope, reason, image, tags_ok, tags_reason)
