"""All the numbers of one set of predictions: per class (finding) and summarised.

Binary: one output, a threshold. Multi-class: the predicted class is the arg-max (no
threshold); per-class values are one-vs-rest. Multi-label: every finding has its own
threshold (the same rule applied to each), masked labels count nowhere, and the summary is
the mean over findings. ``auc`` is the macro mean of the per-class AUCs that are defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cxr_desktop.core.evaluate import metrics as m
from cxr_desktop.core.evaluate.predictions import Predictions
from cxr_desktop.core.runs.folder import jsonable


@dataclass
class ClassResult:
    """One output's curves and operating point."""

    name: str
    n: int
    positives: int
    auc: float
    auc_ci: tuple[float, float]
    average_precision: float
    threshold: float | None
    counts: m.Counts
    calibration: m.Calibration
    roc: tuple[np.ndarray, np.ndarray, np.ndarray]
    pr: tuple[np.ndarray, np.ndarray, np.ndarray]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "positives": self.positives, "auc": self.auc,
                "auc_ci": list(self.auc_ci), "average_precision": self.average_precision,
                "threshold": self.threshold, "ece": self.calibration.ece,
                **self.counts.to_dict()}


@dataclass
class TopLoss:
    """One confidently wrong image: ``probability`` is the model's for ``predicted``."""

    row: int
    path: str
    loss: float
    truth: str
    predicted: str
    probability: float


@dataclass
class Evaluation:
    predictions: Predictions
    per_class: list[ClassResult]
    auc: float
    auc_ci: tuple[float, float]
    accuracy: float
    sensitivity: float
    specificity: float
    threshold: float | dict[str, float] | None
    confusion: np.ndarray
    ece: float
    top_losses: list[TopLoss] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.predictions)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN becomes None); curves are left out."""
        preds = self.predictions
        return jsonable({
            "source": preds.source, "split": preds.split, "task": preds.task,
            "classes": preds.classes, "n": self.n, "auc": self.auc, "auc_ci": list(self.auc_ci),
            "accuracy": self.accuracy, "sensitivity": self.sensitivity,
            "specificity": self.specificity, "threshold": self.threshold, "ece": self.ece,
            "confusion": self.confusion.tolist(),
            "per_class": {c.name: c.to_dict() for c in self.per_class},
            "excluded": preds.excluded, "notes": preds.notes, "warnings": preds.warnings,
            "top_losses": [vars(t) for t in self.top_losses],
        })


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else m.NAN


def _class_result(name: str, target: np.ndarray, score: np.ndarray, threshold: float | None,
                  counts: m.Counts, n_boot: int, seed: int, n_bins: int) -> ClassResult:
    target, score = m.known(target, score)
    return ClassResult(
        name=name, n=int(target.size), positives=int(np.sum(target == 1)),
        auc=m.auc(target, score), auc_ci=m.bootstrap_auc_ci(target, score, n_boot, seed),
        average_precision=m.average_precision(target, score), threshold=threshold,
        counts=counts, calibration=m.calibration(target, score, n_bins),
        roc=m.roc_curve(target, score), pr=m.pr_curve(target, score),
    )


def evaluate(preds: Predictions, threshold: str | float = "run", *, n_boot: int = 1000,
             seed: int = 0, n_bins: int = 10, n_top: int = 16) -> Evaluation:
    """Evaluate ``preds``; ``threshold`` is ``run``, ``youden``, ``sens:X`` or a number."""
    columns = preds.columns()
    if preds.task == "multiclass":
        labels = preds.targets.astype(np.int64)
        called = preds.probs.argmax(axis=1) if len(preds) else np.zeros(0, np.int64)
        per_class = [
            _class_result(name, target, score, None,
                          m.counts_at(target, (called == c).astype(np.float64), 0.5),
                          n_boot, seed, n_bins)
            for c, (name, target, score) in enumerate(columns)]
        confusion = m.confusion_matrix(labels, called, len(preds.classes))
        accuracy = float(np.mean(called == labels)) if len(preds) else m.NAN
        chosen: float | dict[str, float] | None = None
        top_label = m.calibration((called == labels).astype(np.float64),
                                  preds.probs.max(axis=1) if len(preds) else np.zeros(0), n_bins)
        ece = top_label.ece
    else:
        thresholds = {name: m.choose_threshold(target, score, threshold, preds.threshold)
                      for name, target, score in columns}
        per_class = [
            _class_result(name, target, score, thresholds[name],
                          m.counts_at(target, score, thresholds[name]), n_boot, seed, n_bins)
            for name, target, score in columns]
        confusion = np.stack([c.counts.matrix() for c in per_class])
        if preds.task == "binary":
            confusion = confusion[0]
        right = sum(c.counts.tp + c.counts.tn for c in per_class)
        accuracy = right / sum(c.n for c in per_class) if any(c.n for c in per_class) else m.NAN
        values = set(thresholds.values())
        chosen = values.pop() if len(values) == 1 else thresholds
        ece = _mean([c.calibration.ece for c in per_class])
    if preds.task == "binary":
        auc_ci = per_class[0].auc_ci
    else:
        targets = np.stack([target for _, target, _ in columns], axis=1)
        auc_ci = m.bootstrap_macro_auc_ci(targets, np.asarray(preds.probs), n_boot, seed)
    result = Evaluation(
        predictions=preds, per_class=per_class, auc=_mean([c.auc for c in per_class]),
        auc_ci=auc_ci, accuracy=float(accuracy),
        sensitivity=_mean([c.counts.sensitivity for c in per_class]),
        specificity=_mean([c.counts.specificity for c in per_class]),
        threshold=chosen, confusion=confusion, ece=ece,
    )
    result.top_losses = top_losses(preds, chosen, n_top)
    return result


def _threshold_of(chosen: float | dict[str, float] | None, name: str) -> float:
    if isinstance(chosen, dict):
        return chosen[name]
    return 0.5 if chosen is None else float(chosen)


def top_losses(preds: Predictions, threshold: float | dict[str, float] | None = None,
               k: int = 16) -> list[TopLoss]:
    """The ``k`` wrongly called images with the highest cross-entropy, highest first.

    Multi-label: an image's loss is that of its worst finding, among the wrong ones.
    """
    if len(preds) == 0 or k <= 0:
        return []
    names = preds.output_names
    if preds.task == "multiclass":
        labels = preds.targets.astype(np.int64)
        called = preds.probs.argmax(axis=1)
        loss = m.multiclass_log_loss(labels, preds.probs)
        wrong = called != labels
        truth = [preds.classes[i] for i in labels]
        said = [preds.classes[i] for i in called]
        prob = preds.probs[np.arange(len(preds)), called]
    else:
        probs = np.asarray(preds.probs, dtype=np.float64).reshape(len(preds), -1)
        targets = np.asarray(preds.targets, dtype=np.float64).reshape(len(preds), -1)
        cut = np.array([_threshold_of(threshold, name) for name in names])
        called_all = probs >= cut
        wrong_all = ~np.isnan(targets) & (called_all != (targets == 1))
        entry_loss = np.where(wrong_all, m.binary_log_loss(np.nan_to_num(targets), probs),
                              -np.inf)
        worst = entry_loss.argmax(axis=1)
        rows = np.arange(len(preds))
        loss = entry_loss[rows, worst]
        wrong = wrong_all[rows, worst]
        prob_pos = probs[rows, worst]
        called = called_all[rows, worst]
        prob = np.where(called, prob_pos, 1 - prob_pos)
        if preds.task == "binary":
            negative = next(c for c in preds.classes if c != preds.positive_class)
            truth = [names[0] if t == 1 else negative for t in targets[:, 0]]
            said = [names[0] if c else negative for c in called]
        else:
            truth = [f"{names[w]}: {'present' if targets[r, w] == 1 else 'absent'}"
                     for r, w in zip(rows, worst, strict=True)]
            said = [f"{names[w]}: {'present' if c else 'absent'}"
                    for w, c in zip(worst, called, strict=True)]
    order = [int(r) for r in np.argsort(-np.where(wrong, loss, -np.inf), kind="stable")
             if wrong[r]][:k]
    return [TopLoss(r, preds.paths[r], float(loss[r]), truth[r], said[r], float(prob[r]))
            for r in order]
