"""The out-of-scope detectors' math on synthetic clusters, and their scope files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer.ood import (
    DETECTORS,
    Energy,
    KnnDistance,
    LayerMahalanobis,
    LedoitWolf,
    OodInputs,
    crossfit,
    deep_half,
    threshold_for,
)
from cxr_desktop.core.infer.scope import ScopeModel, fit_scope_inputs
from cxr_desktop.core.infer.scope_layers import LayerRecorder, channel_stats, stage_names
from cxr_desktop.core.models import build_model


def cluster(rng: np.random.Generator, count: int, shift: float = 0.0,
            dims: int = 24) -> OodInputs:
    """Correlated Gaussian features, logits and two 'layers'; ``shift`` moves them all."""
    mixing = np.random.default_rng(99).normal(size=(dims, dims)) / np.sqrt(dims)
    base = rng.normal(size=(count, dims)) @ mixing + 3.0
    layer = rng.normal(size=(count, 8)) * np.arange(1, 9) + 1.0
    offset = shift * np.linspace(1, -1, dims)
    logits = base[:, :2] * (1 - shift) + 4.0 * (1 - shift)
    return OodInputs(base + offset, logits, {"a": layer + shift * 3, "b": base[:, :6] + shift})


@pytest.mark.parametrize("method", list(DETECTORS))
def test_each_detector_scores_a_far_cluster_higher_at_about_its_false_alarm_rate(method):
    rng = np.random.default_rng(0)
    fit, held, far = cluster(rng, 400), cluster(rng, 2000), cluster(rng, 300, shift=3.0)
    scope = fit_scope_inputs(fit, method, false_alarm_rate=0.05)
    assert scope.threshold == threshold_for(scope.val_scores, 0.05)[0]
    assert scope.meta["confidence"] >= 0.95
    inside, outside = scope.score(held), scope.score(far)
    assert np.median(outside) > np.quantile(inside, 0.99)
    assert np.mean(outside > scope.threshold) > 0.9
    # Held-out images like the fit ones: at most 5 % false alarms (with 95 % confidence),
    # not far below (cross-fitted scores, not the fit's own).
    assert 0.01 <= np.mean(inside > scope.threshold) <= 0.06


@pytest.mark.parametrize(("count", "dims"), [(40, 128), (200, 16)])
def test_ledoit_wolf_matches_sklearn_and_the_threshold_is_cross_fitted(count, dims):
    from sklearn.covariance import LedoitWolf as SkLedoitWolf

    rng = np.random.default_rng(3)
    features = rng.normal(size=(count, dims)) @ rng.normal(size=(dims, dims)) * 0.1 + 2.0
    model = LedoitWolf.fit(features)
    reference = SkLedoitWolf().fit(features)
    # Woodbury factors when there are fewer rows than dimensions, else the precision.
    assert (model.basis is not None) == (count < dims)
    np.testing.assert_allclose(model.mean, reference.location_)
    np.testing.assert_allclose(model.full_precision(), np.linalg.inv(reference.covariance_),
                               rtol=1e-6, atol=1e-9 * np.abs(model.full_precision()).max())
    assert model.shrinkage == pytest.approx(reference.shrinkage_)
    query = rng.normal(size=(7, dims))
    delta = query - reference.location_
    expected = np.sqrt(np.einsum("nd,de,ne->n", delta, np.linalg.inv(reference.covariance_),
                                 delta))
    np.testing.assert_allclose(model.distances(query), expected, rtol=1e-6)
    # Each fold's distances come from a model that never saw it.
    scope = fit_scope_inputs(OodInputs(features), "mahalanobis", folds=4)
    fold_of = np.arange(count) % 4
    for fold in range(4):
        held = fold_of == fold
        other = SkLedoitWolf().fit(features[~held])
        delta = features[held] - other.location_
        np.testing.assert_allclose(
            scope.val_scores[held],
            np.sqrt(np.einsum("nd,de,ne->n", delta, np.linalg.inv(other.covariance_), delta)),
            rtol=1e-6)
    assert scope.meta["val_images"] == count and scope.meta["folds"] == 4
    with pytest.raises(CxrError, match="4 validation images"):
        fit_scope_inputs(OodInputs(features[:3]))


def test_knn_is_the_kth_neighbour_distance_on_unit_vectors():
    rng = np.random.default_rng(1)
    bank = rng.normal(size=(50, 6))
    query = rng.normal(size=(4, 6))
    knn = KnnDistance.fit(OodInputs(bank), k=3)
    unit = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    for row, score in zip(query, knn.score(OodInputs(query)), strict=True):
        distances = np.sort(np.linalg.norm(unit - row / np.linalg.norm(row), axis=1))
        assert score == pytest.approx(distances[2], rel=1e-5)
    # Scale does not matter, direction does.
    assert knn.score(OodInputs(query * 10)) == pytest.approx(knn.score(OodInputs(query)),
                                                             rel=1e-5)
    # Cross-fitting never scores a row against itself: a duplicate-free bank has no zero.
    kept, scores = crossfit(lambda part: KnnDistance.fit(part, k=1), OodInputs(bank))
    assert scores.min() > 0 and len(kept.bank) == 40  # the first fold's bank: 4 of 5 folds


def test_energy_is_the_negative_log_sum_exp_of_the_logits():
    logits = np.array([[2.0, -1.0], [-3.0, 0.5]])
    sigmoid = Energy.fit(OodInputs(np.zeros((2, 1)), logits)).score(
        OodInputs(np.zeros((2, 1)), logits))
    np.testing.assert_allclose(sigmoid, -np.log1p(np.exp(logits)).sum(axis=1))
    softmax = Energy(softmax=True).score(OodInputs(np.zeros((2, 1)), logits))
    np.testing.assert_allclose(softmax, -np.log(np.exp(logits).sum(axis=1)))
    with pytest.raises(CxrError, match="logits"):
        Energy.fit(OodInputs(np.zeros((2, 1))))


@pytest.mark.parametrize("method", list(DETECTORS))
def test_a_saved_scope_scores_as_the_fitted_one(method, tmp_path):
    rng = np.random.default_rng(5)
    scope = fit_scope_inputs(cluster(rng, 60, dims=80), method, false_alarm_rate=0.1)
    scope.meta["checkpoint"] = "best.pt"
    loaded = ScopeModel.load(scope.save(tmp_path / "scope.npz"))
    query = cluster(rng, 9, shift=0.5, dims=80)
    np.testing.assert_allclose(loaded.score(query), scope.score(query), rtol=1e-5)
    assert loaded.threshold == scope.threshold and loaded.false_alarm_rate == 0.1
    assert loaded.method == method and loaded.meta["checkpoint"] == "best.pt"
    assert not loaded.legacy


def test_layers_scores_new_images_by_the_mean_of_the_folds_detectors(tmp_path):
    rng = np.random.default_rng(6)
    scope = fit_scope_inputs(cluster(rng, 60, dims=40), "layers", false_alarm_rate=0.1)
    detector = scope.detector
    assert len(detector.folds) == 5
    query = cluster(rng, 7, shift=0.5, dims=40)
    per_fold = [LayerMahalanobis(detector.names, [models], detector.centers,
                                 detector.scales).score(query) for models in detector.folds]
    np.testing.assert_allclose(scope.score(query), np.mean(per_fold, axis=0))
    assert np.ptp(per_fold, axis=0).max() > 0.01  # the folds do differ

    # A scope file of before the fold ensemble (one detector, keys without a fold) still
    # loads and scores as that detector did.
    path = scope.save(tmp_path / "scope.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    old = {key.removeprefix("fold0_"): value for key, value in arrays.items()
           if not key.startswith("fold") or key.startswith("fold0_")}
    meta = json.loads(str(old["meta"]))
    del meta["options"]["folds"]
    old["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **old)
    loaded = ScopeModel.load(tmp_path / "old.npz")
    np.testing.assert_allclose(loaded.score(query), per_fold[0], rtol=1e-5)


def test_the_recorder_keeps_channel_means_and_stds_of_every_stage():
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, "none").eval()
    x = torch.rand(3, 1, 64, 64)
    recorder = LayerRecorder(model)
    with torch.no_grad(), recorder:
        model(x)
        recorder.active = False
        model(x)  # not recorded
    model(x)  # hooks removed
    layers = recorder.take()
    assert list(layers) == stage_names(model) == ["block1", "block2", "block3", "block4"]
    with torch.no_grad():
        maps = model.features[0]((x - model.mean) / model.std)
    np.testing.assert_allclose(layers["block1"], channel_stats(maps).double().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert layers["block4"].shape == (3, 2 * 256)
    assert recorder.take()["block1"].shape[0] == 0


def test_the_threshold_flags_at_most_the_rate_with_95_percent_confidence():
    from scipy.stats import norm

    rng = np.random.default_rng(4)
    above, rates = [], []
    for _ in range(1000):
        threshold, confidence = threshold_for(rng.normal(size=160), 0.05)
        rates.append(norm.sf(threshold))  # the exact false-alarm rate on new images
        above.append(rates[-1] > 0.05)
    assert confidence >= 0.95
    assert 0.01 <= np.mean(above) <= 0.06  # about 5 % of samples give more than 5 %
    assert 0.018 <= np.median(rates) <= 0.03  # not needlessly strict
    # A lower confidence gives a lower threshold, exceeded more often.
    lower, _ = threshold_for(np.random.default_rng(5).normal(size=160), 0.05, confidence=0.9)
    higher, _ = threshold_for(np.random.default_rng(5).normal(size=160), 0.05)
    assert lower < higher
    # Too few scores for 95 %: the largest one, and the confidence it reaches.
    threshold, confidence = threshold_for(np.arange(10.0), 0.05)
    assert threshold == 9.0 and confidence == pytest.approx(1 - 0.95 ** 10)


def test_the_deep_half_of_the_stages():
    stages = ["stem", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "head"]
    assert deep_half(stages) == ["s4", "s5", "s6", "s7", "head"]
    assert deep_half(stages[:4]) == ["s2", "s3"] and deep_half(["a", "b"]) == ["a", "b"]


def test_the_default_detector_reads_every_stage_recorded_and_inputs_of_records_the_deep_half():
    from cxr_desktop.core.infer.scope import inputs_of

    torch.manual_seed(0)
    model = build_model("resnet18", 1, "none")
    images = [np.random.default_rng(1).integers(0, 256, (6, 32, 32), dtype=np.uint8)]
    recorded = inputs_of(model, images)
    assert list(recorded.layers) == deep_half(stage_names(model)) == ["layer2", "layer3",
                                                                     "layer4"]
    assert list(inputs_of(model, images, layers="all").layers) == stage_names(model)
    assert not inputs_of(model, images, layers=False).layers
    scope = fit_scope_inputs(recorded, "layers", false_alarm_rate=0.2)
    assert scope.detector.names == ["layer2", "layer3", "layer4"]  # not halved again
