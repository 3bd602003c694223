"""Ensembles and evaluations of hand-built predictions, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.evaluate.ensemble import align, auc_weights, combine
from cxr_desktop.core.evaluate.evaluation import evaluate, top_losses
from cxr_desktop.core.evaluate.predictions import Predictions


def binary(probs, targets=(1, 0, 1), source="a", val_auc=None, paths=None, threshold=0.5):
    return Predictions(paths or [f"img{i}.png" for i in range(len(probs))],
                       np.asarray(targets, np.float32), np.asarray(probs, np.float32),
                       ["clear", "blob"], "binary", "blob", threshold, source, "test", val_auc)


def test_mean_of_two_members():
    combined = combine([binary([0.2, 0.8, 0.5]), binary([0.4, 0.6, 0.1], source="b")], "mean")
    np.testing.assert_allclose(combined.probs, [0.3, 0.7, 0.3], atol=1e-6)
    assert combined.threshold == 0.5 and combined.source == "ensemble:mean"


def test_majority_vote_by_hand():
    members = [binary([0.6, 0.2, 0.9]), binary([0.7, 0.4, 0.1], source="b"),
               binary([0.1, 0.45, 0.2], source="c", threshold=0.4)]
    # votes: image 0: 2 (a, b); image 1: 1 (c, 0.45 >= its 0.4); image 2: 1 (a)
    combined = combine(members, "vote")
    mean = np.array([1.4, 1.05, 1.2]) / 3
    np.testing.assert_allclose(combined.probs, (np.array([2, 1, 1]) + mean) / 4, atol=1e-6)
    assert (combined.probs >= 0.5).tolist() == [True, False, False]


def test_a_two_member_tie_goes_the_way_of_the_mean_probability():
    combined = combine([binary([0.9, 0.6]), binary([0.3, 0.05], source="b")], "vote")
    assert (combined.probs >= 0.5).tolist() == [True, False]


def test_multiclass_vote_counts_arg_max_votes():
    classes = ["a", "b", "c"]
    probs = [np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]),
             np.array([[0.2, 0.6, 0.2], [0.1, 0.5, 0.4]]),
             np.array([[0.6, 0.1, 0.3], [0.3, 0.3, 0.4]])]
    members = [Predictions(["x", "y"], np.array([0, 2]), p, classes, "multiclass", None,
                           source=str(i)) for i, p in enumerate(probs)]
    combined = combine(members, "vote")
    votes = np.array([[2, 1, 0], [0, 1, 2]])
    np.testing.assert_allclose(combined.probs, (votes + np.mean(probs, axis=0)) / 4, atol=1e-6)
    np.testing.assert_allclose(combined.probs.sum(axis=1), 1.0, atol=1e-6)


def test_auc_weighted_is_a_softmax_of_validation_aucs():
    weights = auc_weights([0.9, 0.8], temperature=0.1)
    e = math.exp(1.0)
    np.testing.assert_allclose(weights, [e / (1 + e), 1 / (1 + e)])
    members = [binary([0.2, 0.8, 0.5], val_auc=0.9), binary([0.4, 0.6, 0.1], source="b",
                                                           val_auc=0.8)]
    combined = combine(members, "auc-weighted", temperature=0.1)
    np.testing.assert_allclose(combined.probs, weights[0] * np.array([0.2, 0.8, 0.5])
                               + weights[1] * np.array([0.4, 0.6, 0.1]), atol=1e-6)
    np.testing.assert_allclose(auc_weights([None, 0.5]), [0.5, 0.5])


def test_members_must_share_classes():
    other = Predictions(["img0.png"], np.array([1.0]), np.array([0.5]), ["normal", "nodule"],
                        "binary", "nodule", source="runB")
    with pytest.raises(CxrError, match="runB.*classes differ"):
        combine([binary([0.5]), other], "mean")


def test_members_are_aligned_on_the_images_they_share():
    a = binary([0.1, 0.2, 0.3], paths=["p", "q", "r"])
    b = binary([0.6, 0.5], targets=(1, 0), source="b", paths=["r", "p"])
    first, second = align([a, b])
    assert first.paths == second.paths == ["p", "r"]
    np.testing.assert_allclose(second.probs, [0.5, 0.6])


def test_binary_evaluation_matches_sklearn_and_finds_the_confident_mistakes():
    rng = np.random.default_rng(0)
    target = (np.arange(60) % 2).astype(np.float32)
    probs = np.clip(0.5 + 0.3 * (target - 0.5) + rng.normal(0, 0.2, 60), 0.01, 0.99)
    probs[4], probs[7] = 0.97, 0.02  # a confident false positive and false negative
    result = evaluate(binary(probs, target), "run", n_boot=200)
    assert result.auc == pytest.approx(roc_auc_score(target, probs))
    assert result.auc_ci[0] <= result.auc <= result.auc_ci[1]
    tn, fp, fn, tp = confusion_matrix(target, probs >= 0.5).ravel()
    assert result.confusion.tolist() == [[tn, fp], [fn, tp]]
    assert result.sensitivity == pytest.approx(tp / (tp + fn))
    assert result.accuracy == pytest.approx((tp + tn) / 60)
    assert {t.row for t in result.top_losses[:2]} == {4, 7}
    first = result.top_losses[0]  # -log(0.02) beats -log(1 - 0.97)
    assert (first.row, first.truth, first.predicted) == (7, "blob", "clear")
    assert first.probability == pytest.approx(0.98)
    losses = [t.loss for t in result.top_losses]
    assert losses == sorted(losses, reverse=True)
    data = result.to_dict()
    assert set(data["per_class"]) == {"blob"} and data["threshold"] == 0.5


def test_multilabel_evaluation_is_per_finding_and_ignores_masked_labels():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, (80, 2)).astype(np.float32)
    targets[::5, 1] = np.nan
    probs = np.clip(0.5 + 0.35 * (np.nan_to_num(targets) - 0.5) + rng.normal(0, 0.2, (80, 2)),
                    0, 1)
    probs[::5, 1] = 1 - np.nan_to_num(targets[::5, 1])  # would be wrong, but is masked
    preds = Predictions([f"{i}.png" for i in range(80)], targets, probs, ["nodule", "effusion"],
                        "multilabel", None)
    result = evaluate(preds, "youden", n_boot=200)
    known = ~np.isnan(targets[:, 1])
    assert result.per_class[1].auc == pytest.approx(roc_auc_score(targets[known, 1],
                                                                  probs[known, 1]))
    assert result.per_class[1].n == known.sum()
    assert isinstance(result.threshold, dict) and set(result.threshold) == {"nodule", "effusion"}
    assert result.confusion.shape == (2, 2, 2)
    assert all(t.row % 5 or "nodule" in t.truth for t in top_losses(preds, 0.5, 80))


def test_multiclass_evaluation_uses_the_arg_max():
    classes = ["a", "b", "c"]
    labels = np.array([0, 1, 2, 2, 1, 0])
    probs = np.array([[.7, .2, .1], [.2, .5, .3], [.1, .1, .8], [.5, .1, .4], [.3, .3, .4],
                      [.6, .3, .1]])
    result = evaluate(Predictions(list("uvwxyz"), labels, probs, classes, "multiclass", None),
                      n_boot=100)
    assert result.confusion.tolist() == confusion_matrix(labels, probs.argmax(1)).tolist()
    assert result.accuracy == pytest.approx(4 / 6) and result.threshold is None
    assert result.auc == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))
    # y: p(true b) = 0.3, loss 1.20; x: p(true c) = 0.4, loss 0.92
    assert [t.path for t in result.top_losses] == ["y", "x"]
