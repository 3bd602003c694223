"""Out-of-distribution detectors over what a model computes anyway, fitted on validation images.

Each detector scores images (higher: less like the fit images) from an :class:`OodInputs`:
the pooled features the head sees, the logits, and per-layer channel statistics that forward
hooks record (:mod:`cxr_desktop.core.infer.scope_layers`). None needs labels or
out-of-distribution examples, and none a pass of its own over the data:

- ``mahalanobis``: distance of the pooled features to their mean under a Ledoit-Wolf shrunk
  covariance (the app's first detector).
- ``knn``: distance to the k-th nearest validation image on L2-normalised pooled features
  (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors").
- ``layers``: Mahalanobis distance of each stage's channel means and standard deviations,
  each standardised by its cross-fitted validation distances and summed (after Lee et al.
  2018, who combine per-layer distances; each distance averaged over the cross-fitting
  folds' detectors), over the stages recorded (``deep_half``: the
  deeper half of the backbone, what training and the Predictor record): their
  statistics still see anatomy and orientation that the last, task-tuned pooled features
  discard, while the first stages mostly see acquisition noise and contrast.
- ``energy``: the negative free energy of the logits (Liu et al. 2020); for sigmoid outputs
  the sum over outputs of ``-softplus(z)``, the joint energy of the multi-label case.

Thresholds come from **cross-fitted** validation scores: each fold is scored by a detector
fitted on the other folds, so a threshold is never set on images the fit saw.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer.ood_ledoit_wolf import LedoitWolf

__all__ = ["DETECTORS", "Detector", "Energy", "KnnDistance", "LayerMahalanobis", "LedoitWolf",
           "OodInputs", "PooledMahalanobis", "crossfit", "deep_half", "threshold_for"]

DEFAULT_FOLDS = 5
#: How sure the threshold is to flag at most the stated rate of images like the validation ones.
#: On ``bench/scope.py`` (100 random splits of 320 held-out chests into 160 to fit and 160 to
#: count) 0.9 flagged more than 5 % of the counted chests in 14 % of the splits (mean 3.2 %),
#: 0.95 in 7 % (mean 2.5 %); every tibia, CT, MR and natural image was flagged at both.
DEFAULT_CONFIDENCE = 0.95
KNN_K = 5
#: Rows kept by the kNN bank and by each layer's covariance fit: they bound scope.npz and
#: the fit time (nine stages of EfficientNet-Lite0, 4192 statistics in all: 512 rows fit in
#: about 4 s on one CPU thread, cross-fitting included, and take 11 MB; 2048 rows 47 s, 57 MB).
MAX_BANK_ROWS = 2048
MAX_LAYER_ROWS = 512
#: Rows kept by the layer fits of all the folds together (``layers`` keeps every fold's):
#: about 21 KB a row for the deeper half of EfficientNet-Lite0's stages, so scope.npz stays
#: under about 23 MB with any number of validation images (13.6 MB with 160 of them).
MAX_LAYER_ROWS_ALL_FOLDS = 1024


@dataclass
class OodInputs:
    """What the detectors read for N images; ``layers`` maps a stage name to (N, 2C)
    channel means then standard deviations, ``logits`` is (N, K)."""

    pooled: np.ndarray
    logits: np.ndarray | None = None
    layers: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pooled)

    def take(self, rows: np.ndarray) -> OodInputs:
        return OodInputs(self.pooled[rows], None if self.logits is None else self.logits[rows],
                         {name: values[rows] for name, values in self.layers.items()})


def threshold_for(scores: np.ndarray, false_alarm_rate: float,
                  confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """The threshold among n held-out scores that flags at most ``false_alarm_rate`` of new
    images like them with probability ``confidence``, and the confidence reached.

    The k-th smallest of n exchangeable scores leaves a fraction ``Beta(n + 1 - k, k)`` of
    new images above it; the smallest k whose probability of exceeding the rate is at most
    ``1 - confidence`` is taken (the largest score, at a lower confidence, when n is too
    small). A plain quantile flags the rate only on average: on ``bench/scope.py`` its test
    false alarms spread from 1 % to 11 % between two samples of 160 chests."""
    from scipy.stats import beta

    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    count = len(ordered)
    ranks = np.arange(1, count + 1)
    exceed = beta.sf(false_alarm_rate, count + 1 - ranks, ranks)
    good = np.flatnonzero(exceed <= 1.0 - confidence)
    index = int(good[0]) if len(good) else count - 1
    return float(ordered[index]), float(1.0 - exceed[index])


def deep_half(names: list[str]) -> list[str]:
    """The deeper half of the stages (all of them when there are fewer than four).

    On ``bench/scope.py`` the first stages of EfficientNet-Lite0 (stem to stage3) answered
    to acquisition statistics (noise, gamma, contrast) that differ between two samples of
    the same chests: with them the threshold set on the validation chests flagged 12-16 %
    of the test chests; from stage4 on, 9 % and 9 %, every tibia, CT, MR, natural, rotated,
    flipped, inverted and cropped image still flagged."""
    return names if len(names) < 4 else names[len(names) // 2:]


def fold_assignment(count: int, folds: int) -> tuple[np.ndarray, int]:
    """Fold of each row (round robin) and the fold count, fewer with few rows."""
    folds = max(2, min(folds, count // 2))
    return np.arange(count) % folds, folds


def crossfit(fit: Callable[[OodInputs], Detector], inputs: OodInputs,
             folds: int = DEFAULT_FOLDS) -> tuple[Detector, np.ndarray]:
    """Each fold's scores from a detector ``fit`` on the other folds; the first fold's
    detector is returned with them (see ``Detector.fit_crossfit``)."""
    fold_of, folds = fold_assignment(len(inputs), folds)
    scores = np.empty(len(inputs))
    kept: Detector | None = None
    for fold in range(folds):
        held = fold_of == fold
        detector = fit(inputs.take(np.flatnonzero(~held)))
        scores[held] = detector.score(inputs.take(np.flatnonzero(held)))
        kept = kept or detector
    assert kept is not None
    return kept, scores


def _spread(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` row indices spread evenly over ``count`` rows."""
    return np.arange(count) if count <= limit else np.linspace(0, count - 1, limit).astype(int)


class Detector(ABC):
    """A fitted detector: ``score`` (higher is further out), saved as named arrays."""

    name: ClassVar[str] = ""
    needs_layers: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def fit(cls, inputs: OodInputs, **options: Any) -> Detector:
        """The detector fitted on in-distribution ``inputs``."""

    @abstractmethod
    def score(self, inputs: OodInputs) -> np.ndarray:
        """One score per row of ``inputs``."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """What ``from_arrays`` needs, as named arrays for the scope file."""

    @classmethod
    @abstractmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Detector:
        """The detector ``arrays`` saved."""

    def options(self) -> dict[str, Any]:
        """JSON-able settings saved in the scope file's meta."""
        return {}

    @classmethod
    def fit_crossfit(cls, inputs: OodInputs, folds: int = DEFAULT_FOLDS,
                     **options: Any) -> tuple[Detector, np.ndarray]:
        """A detector and the cross-fitted scores of ``inputs`` that set its threshold.

        The detector kept is the first fold's: it was fitted on ``(folds - 1) / folds`` of
        the images, as every cross-fitted score's detector was, so a new image scores as a
        held-out one did. One fitted on all of them would not: less shrinkage and a denser
        kNN bank score unseen images higher than the held-out scores say (on the bench, 6.5 %
        false alarms for a 5 % threshold with 160 validation images, 8-9 % with 40).
        ``layers`` keeps every fold's detector instead (``LayerMahalanobis``).
        """
        return crossfit(lambda part: cls.fit(part, **options), inputs, folds)


@dataclass
class PooledMahalanobis(Detector):
    name: ClassVar[str] = "mahalanobis"
    model: LedoitWolf

    @classmethod
    def fit(cls, inputs: OodInputs, **options: Any) -> PooledMahalanobis:
        return cls(LedoitWolf.fit(inputs.pooled))

    def score(self, inputs: OodInputs) -> np.ndarray:
        return self.model.distances(inputs.pooled)

    def arrays(self) -> dict[str, np.ndarray]:
        return self.model.arrays("pooled_")

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    meta: dict[str, Any]) -> PooledMahalanobis:
        return cls(LedoitWolf.from_arrays(arrays, "pooled_"))


def l2_normalize(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


@dataclass
class KnnDistance(Detector):
    name: ClassVar[str] = "knn"
    bank: np.ndarray  # (N, D) L2-normalised pooled features
    k: int = KNN_K

    @classmethod
    def fit(cls, inputs: OodInputs, k: int = KNN_K, **options: Any) -> KnnDistance:
        bank = l2_normalize(inputs.pooled)[_spread(len(inputs), MAX_BANK_ROWS)]
        return cls(bank.astype(np.float32), k)

    def score(self, inputs: OodInputs) -> np.ndarray:
        queries = l2_normalize(inputs.pooled).astype(np.float32)
        # Unit vectors: squared distance = 2 - 2 cos.
        similarity = queries @ self.bank.T
        k = min(self.k, self.bank.shape[0])
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
        return np.sqrt(np.maximum(2.0 - 2.0 * kth.astype(np.float64), 0.0))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"knn_bank": self.bank}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> KnnDistance:
        return cls(np.asarray(arrays["knn_bank"], dtype=np.float32),
                   int(meta.get("options", {}).get("k", KNN_K)))

    def options(self) -> dict[str, Any]:
        return {"k": self.k}


@dataclass
class LayerMahalanobis(Detector):
    """Per-stage Mahalanobis distances of channel statistics, standardised and summed.

    It keeps the detector of every cross-fitting fold and scores a new image by their mean
    distance per stage. One fold's detector alone scores new images a little off the
    held-out scores that set the threshold (each fold's shrinkage and mean differ): on
    ``bench/scope.py`` the first fold's flagged 6.2 % of the test chests at a 5 % threshold,
    the mean of the five 3.1 %, every out-of-scope image still flagged."""

    name: ClassVar[str] = "layers"
    needs_layers: ClassVar[bool] = True
    names: list[str]
    folds: list[list[LedoitWolf]]  # per fold, one model per stage of ``names``
    centers: np.ndarray  # per-layer mean of the cross-fitted validation distances
    scales: np.ndarray  # and their standard deviation

    @classmethod
    def fit(cls, inputs: OodInputs, **options: Any) -> LayerMahalanobis:
        names = options.get("names") or list(inputs.layers)
        if not names:
            raise CxrError("scope: no layer statistics were recorded")
        rows = _spread(len(inputs), int(options.get("max_rows", MAX_LAYER_ROWS)))
        models = [LedoitWolf.fit(inputs.layers[name][rows]) for name in names]
        count = len(names)
        return cls(list(names), [models], np.zeros(count), np.ones(count))

    def layer_distances(self, inputs: OodInputs) -> np.ndarray:
        """(N, layers) distances, the mean over the folds' detectors."""
        missing = [name for name in self.names if name not in inputs.layers]
        if missing:
            raise CxrError(f"scope: no statistics for layer(s) {', '.join(missing)}")
        return np.mean([np.stack([model.distances(inputs.layers[name])
                                  for name, model in zip(self.names, models, strict=True)],
                                 axis=1) for models in self.folds], axis=0)

    def score(self, inputs: OodInputs) -> np.ndarray:
        return ((self.layer_distances(inputs) - self.centers) / self.scales).sum(axis=1)

    @classmethod
    def fit_crossfit(cls, inputs: OodInputs, folds: int = DEFAULT_FOLDS,
                     **options: Any) -> tuple[Detector, np.ndarray]:
        """Cross-fitted per-layer distances set each layer's centre and scale, then sum;
        every fold's detector is kept, new images scored by their mean."""
        names = options.get("names") or list(inputs.layers)
        fold_of, folds = fold_assignment(len(inputs), folds)
        distances = np.empty((len(inputs), len(names)))
        parts = []
        for fold in range(folds):
            held = fold_of == fold
            part = cls.fit(inputs.take(np.flatnonzero(~held)), names=names,
                           max_rows=min(MAX_LAYER_ROWS, MAX_LAYER_ROWS_ALL_FOLDS // folds))
            distances[held] = part.layer_distances(inputs.take(np.flatnonzero(held)))
            parts.append(part.folds[0])
        centers = distances.mean(axis=0)
        scales = np.maximum(distances.std(axis=0), 1e-9)
        return cls(list(names), parts, centers, scales), \
            ((distances - centers) / scales).sum(axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"layers_centers": self.centers,
                                      "layers_scales": self.scales}
        for fold, models in enumerate(self.folds):
            for index, model in enumerate(models):
                out.update(model.arrays(f"fold{fold}_layer{index}_"))
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    meta: dict[str, Any]) -> LayerMahalanobis:
        names = list(meta["options"]["layers"])
        count = meta["options"].get("folds")
        # Files of before the fold ensemble hold one detector, its keys without a fold.
        prefixes = [[f"layer{i}_" for i in range(len(names))]] if count is None else \
            [[f"fold{f}_layer{i}_" for i in range(len(names))] for f in range(int(count))]
        return cls(names, [[LedoitWolf.from_arrays(arrays, p) for p in fold]
                           for fold in prefixes],
                   np.asarray(arrays["layers_centers"]), np.asarray(arrays["layers_scales"]))

    def options(self) -> dict[str, Any]:
        return {"layers": self.names, "folds": len(self.folds)}


@dataclass
class Energy(Detector):
    name: ClassVar[str] = "energy"
    softmax: bool = False  # multi-class: logsumexp; sigmoid outputs: the sum of softplus

    @classmethod
    def fit(cls, inputs: OodInputs, softmax: bool = False, **options: Any) -> Energy:
        if inputs.logits is None:
            raise CxrError("scope: the energy score needs the logits")
        return cls(softmax)

    def score(self, inputs: OodInputs) -> np.ndarray:
        if inputs.logits is None:
            raise CxrError("scope: the energy score needs the logits")
        logits = np.asarray(inputs.logits, dtype=np.float64)
        if self.softmax:
            top = logits.max(axis=1, keepdims=True)
            return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))
        return -np.logaddexp(0.0, logits).sum(axis=1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Energy:
        return cls(bool(meta.get("options", {}).get("softmax", False)))

    def options(self) -> dict[str, Any]:
        return {"softmax": self.softmax}


DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls for cls in (LayerMahalanobis, KnnDistance, PooledMahalanobis, Energy)}
