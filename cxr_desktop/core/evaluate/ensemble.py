"""Ensembles of runs with the same task and classes: mean, majority vote, AUC-weighted mean.

- ``mean``: the average of the members' probabilities.
- ``vote``: each member votes with its own operating point (its run threshold; the arg-max
  for multi-class). The ensemble's score is ``(votes + mean probability) / (members + 1)``:
  the mean probability acts as a fractional extra voter, so the score orders images by
  votes first and breaks ties by the mean probability, is still a probability (it sums to 1
  over classes for multi-class) and is called positive at 0.5 exactly when most members
  say positive (a tie goes to the side the mean probability is on).
- ``auc-weighted``: a weighted mean with weights ``softmax(val_auc / temperature)`` over the
  members' best validation AUCs (a member without one counts as chance, 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.evaluate.options import DEFAULT_TEMPERATURE, METHODS
from cxr_desktop.core.evaluate.predictions import Predictions

CHANCE_AUC = 0.5


def check_compatible(members: Sequence[Predictions]) -> None:
    """CxrError naming the runs when their tasks or classes differ."""
    if not members:
        raise CxrError("an ensemble needs at least one run")
    first = members[0]
    for other in members[1:]:
        same = (other.task == first.task and other.classes == first.classes
                and other.positive_class == first.positive_class)
        if not same:
            raise CxrError(
                f"{other.source}: cannot ensemble with {first.source}: classes differ "
                f"({other.task} {other.classes} vs {first.task} {first.classes})")


def align(members: Sequence[Predictions]) -> list[Predictions]:
    """The members restricted to the images all of them predicted, in the first's order."""
    check_compatible(members)
    common = set(members[0].paths)
    for other in members[1:]:
        common &= set(other.paths)
    if not common:
        raise CxrError(f"{members[0].source}: the runs share no predicted image")
    out = []
    for preds in members:
        where = {path: row for row, path in enumerate(preds.paths)}
        out.append(preds.subset(np.array([where[p] for p in members[0].paths if p in common],
                                         dtype=np.int64)))
    return out


def auc_weights(val_aucs: Sequence[float | None],
                temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """``softmax(auc / temperature)``; a missing AUC counts as chance (0.5)."""
    if temperature <= 0:
        raise CxrError(f"ensemble temperature must be positive, not {temperature}")
    aucs = np.array([CHANCE_AUC if a is None or not np.isfinite(a) else a for a in val_aucs],
                    dtype=np.float64)
    logits = aucs / temperature
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def vote_score(task: str, probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """``(votes + mean probability) / (members + 1)``; ``probs`` is (members, N[, C])."""
    members = probs.shape[0]
    mean = probs.mean(axis=0)
    if task == "multiclass":
        called = probs.argmax(axis=2)
        votes = np.stack([(called == c).sum(axis=0) for c in range(probs.shape[2])], axis=1)
    else:
        cut = np.asarray(thresholds, dtype=np.float64).reshape((members,) + (1,) * (probs.ndim - 1))
        votes = (probs >= cut).sum(axis=0)
    return (votes + mean) / (members + 1)


def combine(members: Sequence[Predictions], method: str,
            temperature: float = DEFAULT_TEMPERATURE) -> Predictions:
    """One :class:`Predictions` for the ensemble of ``members`` (aligned first)."""
    if method not in METHODS:
        raise CxrError(f"unknown ensemble method {method!r} (known: {', '.join(METHODS)})")
    members = align(members)
    first = members[0]
    probs = np.stack([np.asarray(p.probs, dtype=np.float64) for p in members])
    thresholds = [p.threshold for p in members]
    if method == "mean":
        combined, threshold = probs.mean(axis=0), float(np.mean(thresholds))
    elif method == "vote":
        combined, threshold = vote_score(first.task, probs, thresholds), 0.5
    else:
        weights = auc_weights([p.val_auc for p in members], temperature)
        combined = np.tensordot(weights, probs, axes=1)
        threshold = float(np.dot(weights, thresholds))
    return Predictions(
        paths=list(first.paths), targets=first.targets, probs=combined.astype(np.float32),
        classes=list(first.classes), task=first.task, positive_class=first.positive_class,
        threshold=threshold, source=f"ensemble:{method}", split=first.split, val_auc=None,
        excluded=sorted({e for p in members for e in p.excluded}),
        notes=[n for p in members for n in p.notes],
        warnings=[w for p in members for w in p.warnings],
    )
