"""Array-level evaluation metrics for one output (a class or a finding) at a time.

Conventions: ``target`` holds 0/1 (NaN entries, masked multi-label labels, are dropped by
:func:`known`), ``score`` the predicted probability; an image is called positive when
``score >= threshold``. Curves and areas come from scikit-learn; the bootstrap is ours
because it must be fast: every resample is a vector of counts over the sorted distinct
scores, so 1000 AUCs cost a few array passes instead of 1000 calls to ``roc_auc_score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from cxr_desktop.core.evaluate.options import parse_threshold

NAN = float("nan")
BOOTSTRAP_CHUNK_CELLS = 4_000_000  # resamples x distinct scores per array pass (~32 MB)
EPS = 1e-7


def known(target: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``target`` and ``score`` without the entries whose target is NaN (masked)."""
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    keep = ~np.isnan(target)
    return target[keep], score[keep]


def defined(target: np.ndarray) -> bool:
    """True when ``target`` holds both classes, so ROC AUC is defined."""
    return np.unique(target).size == 2


def auc(target: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, NaN when the targets hold a single value."""
    target, score = known(target, score)
    return float(skm.roc_auc_score(target, score)) if defined(target) else NAN


def roc_curve(target: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """(fpr, tpr, thresholds) as scikit-learn gives them; empty when undefined."""
    target, score = known(target, score)
    if not defined(target):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return skm.roc_curve(target, score)


def pr_curve(target: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """(precision, recall, thresholds); empty when there is no positive."""
    target, score = known(target, score)
    if not np.any(target == 1):
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return skm.precision_recall_curve(target, score)


def average_precision(target: np.ndarray, score: np.ndarray) -> float:
    target, score = known(target, score)
    return float(skm.average_precision_score(target, score)) if np.any(target == 1) else NAN


# --- bootstrap -------------------------------------------------------------------------
def _levels(score: np.ndarray) -> np.ndarray:
    """Index of each score among the sorted distinct scores (ties share a level)."""
    return np.unique(score, return_inverse=True)[1].reshape(-1)


def weighted_auc(target: np.ndarray, score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUC of many resamples at once: ``counts`` (B, N) says how often each image is drawn.

    AUC = P(score of a positive > score of a negative) + 0.5 P(tie), the Mann-Whitney form;
    NaN for a resample without a positive or without a negative.
    """
    target = np.asarray(target).astype(bool)
    level = _levels(np.asarray(score))
    n_levels = int(level.max()) + 1 if level.size else 0
    out = np.empty(counts.shape[0], dtype=np.float64)
    chunk = max(1, BOOTSTRAP_CHUNK_CELLS // max(n_levels, 1))
    for start in range(0, counts.shape[0], chunk):
        block = counts[start:start + chunk].astype(np.float64)
        pos = _sum_by_level(block[:, target], level[target], n_levels)
        neg = _sum_by_level(block[:, ~target], level[~target], n_levels)
        below = np.cumsum(neg, axis=1) - neg
        wins = np.sum(pos * (below + 0.5 * neg), axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + chunk] = np.where(pairs > 0, wins / pairs, NAN)
    return out


def _sum_by_level(weights: np.ndarray, level: np.ndarray, n_levels: int) -> np.ndarray:
    """(B, L): per row of ``weights`` (B, n), the sum of the columns at each level."""
    rows = weights.shape[0]
    index = (np.arange(rows)[:, None] * n_levels + level[None, :]).ravel()
    return np.bincount(index, weights=weights.ravel(), minlength=rows * n_levels).reshape(
        rows, n_levels)


def resample_counts(n: int, n_boot: int, rng: np.random.Generator,
                    strata: np.ndarray | None = None) -> np.ndarray:
    """(n_boot, n) draw counts of a bootstrap with replacement, within each stratum."""
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == v)
                                                    for v in np.unique(strata)]
    offsets = np.arange(n_boot)[:, None] * n
    flat = [(offsets + g[rng.integers(0, g.size, size=(n_boot, g.size))]).ravel()
            for g in groups if g.size]
    drawn = np.concatenate(flat) if flat else np.zeros(0, np.int64)
    return np.bincount(drawn, minlength=n_boot * n).reshape(n_boot, n).astype(np.int32)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return NAN, NAN
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_auc_ci(target: np.ndarray, score: np.ndarray, n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the AUC over a bootstrap stratified by class (as pROC)."""
    target, score = known(target, score)
    if not defined(target) or n_boot < 1:
        return NAN, NAN
    counts = resample_counts(target.size, n_boot, np.random.default_rng(seed), target)
    return percentile_interval(weighted_auc(target, score, counts), level)


def bootstrap_macro_auc_ci(targets: np.ndarray, scores: np.ndarray, n_boot: int = 1000,
                           seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Interval of the mean AUC over columns, with images (rows) resampled together.

    ``targets`` (N, C) 0/1 with NaN masked; classes undefined in a resample are left out of
    that resample's mean.
    """
    targets = np.asarray(targets, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    usable = [c for c in range(targets.shape[1]) if defined(known(targets[:, c], scores[:, c])[0])]
    if not usable or n_boot < 1:
        return NAN, NAN
    counts = resample_counts(targets.shape[0], n_boot, np.random.default_rng(seed))
    per_class = []
    for c in usable:
        keep = ~np.isnan(targets[:, c])
        per_class.append(weighted_auc(targets[keep, c], scores[keep, c], counts[:, keep]))
    stacked = np.stack(per_class, axis=1)
    finite = np.isfinite(stacked)
    with np.errstate(invalid="ignore"):
        macro = np.where(finite, stacked, 0).sum(axis=1) / finite.sum(axis=1)
    return percentile_interval(macro, level)


# --- operating point -------------------------------------------------------------------
@dataclass(frozen=True)
class Counts:
    """The 2x2 confusion of one output at one threshold."""

    tp: int
    fp: int
    tn: int
    fn: int

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        return num / den if den else NAN

    @property
    def sensitivity(self) -> float:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return self._ratio(self.tn, self.tn + self.fp)

    @property
    def precision(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def accuracy(self) -> float:
        return self._ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn)

    def matrix(self) -> np.ndarray:
        """Rows: true negative, true positive; columns: predicted negative, positive."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)

    def to_dict(self) -> dict[str, float]:
        return {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn,
                "sensitivity": self.sensitivity, "specificity": self.specificity,
                "precision": self.precision, "accuracy": self.accuracy}


def counts_at(target: np.ndarray, score: np.ndarray, threshold: float) -> Counts:
    """Confusion counts calling ``score >= threshold`` positive (NaN targets dropped)."""
    target, score = known(target, score)
    truth = target == 1
    called = score >= threshold
    return Counts(int(np.sum(truth & called)), int(np.sum(~truth & called)),
                  int(np.sum(~truth & ~called)), int(np.sum(truth & ~called)))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows the true class, columns the predicted one."""
    return skm.confusion_matrix(labels, predicted, labels=np.arange(n_classes))


def choose_threshold(target: np.ndarray, score: np.ndarray, how: str | float,
                     run_threshold: float = 0.5) -> float:
    """The operating point: the run's, a number, Youden's J, or a target sensitivity.

    ``youden`` maximises sensitivity + specificity - 1 over the ROC points; ``sens:X``
    is the highest threshold whose sensitivity reaches X (the best specificity there).
    Both fall back to the run's threshold when the ROC is undefined.
    """
    how = parse_threshold(how) if isinstance(how, str) else float(how)
    if isinstance(how, float):
        return how
    if how == "run":
        return float(run_threshold)
    fpr, tpr, thresholds = roc_curve(target, score)
    if thresholds.size == 0:
        return float(run_threshold)
    if how == "youden":
        index = int(np.argmax(tpr - fpr))
    else:
        wanted = float(how.split(":")[1])
        index = int(np.argmax(tpr >= wanted - 1e-12))
    chosen = float(thresholds[index])
    # scikit-learn's first threshold is +inf (nothing called positive).
    return chosen if math.isfinite(chosen) else float(np.nextafter(np.max(score), np.inf))


# --- calibration and losses ------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """Reliability diagram over equal-width bins and the expected calibration error."""

    mean_predicted: np.ndarray
    fraction_positive: np.ndarray
    counts: np.ndarray
    ece: float


def calibration(target: np.ndarray, score: np.ndarray, n_bins: int = 10) -> Calibration:
    """ECE = sum over bins of (bin share) x |fraction positive - mean probability|.

    Empty bins are dropped from the returned curve and weigh nothing in the ECE.
    """
    target, score = known(target, score)
    if target.size == 0:
        empty = np.zeros(0)
        return Calibration(empty, empty, np.zeros(0, np.int64), NAN)
    bins = np.clip((score * n_bins).astype(np.int64), 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    sum_score = np.bincount(bins, weights=score, minlength=n_bins)
    sum_target = np.bincount(bins, weights=target, minlength=n_bins)
    used = counts > 0
    mean_predicted = sum_score[used] / counts[used]
    fraction_positive = sum_target[used] / counts[used]
    ece = float(np.sum(counts[used] / target.size * np.abs(fraction_positive - mean_predicted)))
    return Calibration(mean_predicted, fraction_positive, counts[used], ece)


def binary_log_loss(target: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per-entry cross-entropy of probabilities; NaN where the target is NaN."""
    score = np.clip(np.asarray(score, dtype=np.float64), EPS, 1 - EPS)
    target = np.asarray(target, dtype=np.float64)
    return -(target * np.log(score) + (1 - target) * np.log1p(-score))


def multiclass_log_loss(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-image cross-entropy: -log p(true class)."""
    picked = probs[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return -np.log(np.clip(picked, EPS, 1.0))
