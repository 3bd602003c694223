"""Validation metrics: AUC per class and macro, and threshold metrics, as plain floats.

Binary and multi-label predictions are positive at ``probability >= threshold``; multi-class
predictions are the arg-max. Per-class values are one-vs-rest; the summary values are the
mean over classes where they are defined (a class whose validation labels are all one value
has no AUC and is left out of the macro mean, never a crash). Multi-label entries whose
target is NaN (masked by the dataset's uncertain-label policy) count nowhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

NAN = float("nan")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else NAN


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(sum(finite) / len(finite)) if finite else NAN


def binary_auc(target: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, or NaN when the targets hold a single value (AUC undefined)."""
    target = np.asarray(target)
    if target.size == 0 or np.unique(target).size < 2:
        return NAN
    return float(roc_auc_score(target, score))


def _counts(target: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    target = target.astype(bool)
    predicted = predicted.astype(bool)
    tp = float(np.sum(target & predicted))
    tn = float(np.sum(~target & ~predicted))
    fp = float(np.sum(~target & predicted))
    fn = float(np.sum(target & ~predicted))
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
    }


def _one_vs_rest(
    columns: list[tuple[np.ndarray, np.ndarray, np.ndarray]], classes: Sequence[str]
) -> dict[str, object]:
    """Per-class AUC and threshold counts from (target, score, predicted) per class."""
    aucs: dict[str, float] = {}
    per_class = []
    for name, (target, score, predicted) in zip(classes, columns, strict=True):
        aucs[name] = binary_auc(target, score)
        per_class.append(_counts(target, predicted))
    out: dict[str, object] = {
        "val_auc": _nanmean(list(aucs.values())),
        "auc_per_class": aucs,
    }
    for key in ("sensitivity", "specificity", "precision"):
        out[key] = _nanmean([c[key] for c in per_class])
    return out


def classification_metrics(
    task: str,
    targets: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    threshold: float = 0.5,
) -> dict[str, object]:
    """``val_auc`` (macro), ``auc_per_class``, ``accuracy``, ``sensitivity``,
    ``specificity``, ``precision`` and ``recall`` (= sensitivity) for one validation pass.

    ``probs`` are sigmoid outputs for binary (N,) and multi-label (N, C), softmax (N, C) for
    multi-class; ``targets`` follow ``DatasetSpec.targets()``.
    """
    targets = np.asarray(targets)
    probs = np.asarray(probs, dtype=np.float64)
    if task == "binary":
        target = targets.reshape(-1).astype(np.float64)
        score = probs.reshape(-1)
        predicted = score >= threshold
        out = _one_vs_rest([(target, score, predicted)], [classes[-1]])
        out["accuracy"] = _ratio(np.sum(predicted == target.astype(bool)), target.size)
    elif task == "multiclass":
        labels = targets.astype(np.int64).reshape(-1)
        predicted_class = probs.argmax(axis=1) if probs.size else np.zeros(0, np.int64)
        columns = [(labels == c, probs[:, c], predicted_class == c) for c in range(len(classes))]
        out = _one_vs_rest(columns, classes)
        out["accuracy"] = _ratio(np.sum(predicted_class == labels), labels.size)
    elif task == "multilabel":
        targets = targets.astype(np.float64).reshape(probs.shape)
        known = ~np.isnan(targets)
        columns = []
        for c in range(len(classes)):
            rows = known[:, c]
            columns.append((targets[rows, c], probs[rows, c], probs[rows, c] >= threshold))
        out = _one_vs_rest(columns, classes)
        correct = (probs >= threshold) == (np.nan_to_num(targets) > 0.5)
        out["accuracy"] = _ratio(np.sum(correct & known), np.sum(known))
    else:
        raise ValueError(f"unknown task {task!r}")
    out["recall"] = out["sensitivity"]
    return out
