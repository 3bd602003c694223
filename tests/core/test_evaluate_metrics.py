"""Array-level metrics against scikit-learn and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxr_desktop.core.evaluate import metrics as m
from cxr_desktop.core.evaluate.options import parse_threshold


def scored(n: int, separation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = (np.arange(n) % 2).astype(np.float64)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + separation * target)))
    return target, np.round(score, 2)  # rounding makes ties


def test_weighted_auc_equals_sklearn_on_each_resample():
    target, score = scored(300, 1.0, 0)
    counts = m.resample_counts(300, 20, np.random.default_rng(1))
    fast = m.weighted_auc(target, score, counts)
    for row, value in zip(counts, fast, strict=True):
        drawn = np.repeat(np.arange(300), row)
        assert value == pytest.approx(roc_auc_score(target[drawn], score[drawn]), abs=1e-12)


def test_stratified_resamples_keep_the_class_sizes():
    strata = np.array([0] * 7 + [1] * 3)
    counts = m.resample_counts(10, 50, np.random.default_rng(0), strata)
    assert (counts[:, :7].sum(axis=1) == 7).all() and (counts[:, 7:].sum(axis=1) == 3).all()


def test_bootstrap_interval_contains_the_auc_and_narrows_with_more_data():
    small = scored(80, 1.0, 2)
    large = scored(3000, 1.0, 2)
    widths = []
    for target, score in (small, large):
        low, high = m.bootstrap_auc_ci(target, score, n_boot=1000, seed=0)
        assert low <= m.auc(target, score) <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3
    assert m.bootstrap_auc_ci(*small, seed=5) == m.bootstrap_auc_ci(*small, seed=5)


def test_macro_interval_contains_the_mean_auc_and_skips_masked_labels():
    t1, s1 = scored(400, 1.5, 4)
    t2, s2 = scored(400, 0.5, 5)
    t2[::7] = np.nan
    targets, scores = np.stack([t1, t2], 1), np.stack([s1, s2], 1)
    known = ~np.isnan(t2)
    assert m.auc(t2, s2) == pytest.approx(roc_auc_score(t2[known], s2[known]))
    mean = (m.auc(t1, s1) + m.auc(t2, s2)) / 2
    low, high = m.bootstrap_macro_auc_ci(targets, scores, n_boot=500)
    assert low < mean < high


def test_undefined_auc_is_nan_not_an_error():
    assert np.isnan(m.auc(np.ones(5), np.linspace(0, 1, 5)))
    assert all(np.isnan(m.bootstrap_auc_ci(np.zeros(5), np.linspace(0, 1, 5))))


def test_youden_threshold_maximises_j_on_a_hand_built_example():
    target = np.array([0, 0, 0, 0, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.9])
    # at 0.5: sensitivity 3/3, specificity 3/4 -> J 0.75; at 0.7: 2/3 + 4/4 - 1 = 0.667
    chosen = m.choose_threshold(target, score, "youden")
    assert chosen == pytest.approx(0.5)
    def j(t: float) -> float:
        c = m.counts_at(target, score, t)
        return c.sensitivity + c.specificity - 1
    assert j(chosen) == pytest.approx(max(j(t) for t in np.unique(score)))


def test_target_sensitivity_takes_the_highest_threshold_reaching_it():
    target = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.6, 0.25, 0.5, 0.7, 0.9])
    assert m.choose_threshold(target, score, "sens:0.75") == pytest.approx(0.5)
    assert m.choose_threshold(target, score, "sens:1") == pytest.approx(0.25)
    assert m.counts_at(target, score, 0.25).sensitivity == 1.0
    assert m.choose_threshold(target, score, "run", run_threshold=0.42) == 0.42
    assert m.choose_threshold(target, score, 0.33) == 0.33


def test_parse_threshold():
    assert parse_threshold("Youden") == "youden"
    assert parse_threshold("sens:0.9") == "sens:0.9"
    assert parse_threshold("0.3") == 0.3
    for bad in ("1.5", "sens:0", "best"):
        with pytest.raises(ValueError):
            parse_threshold(bad)


def test_counts_and_confusion():
    counts = m.counts_at(np.array([1, 1, 0, 0, np.nan]), np.array([0.9, 0.2, 0.6, 0.1, 0.9]),
                         0.5)
    assert (counts.tp, counts.fn, counts.fp, counts.tn) == (1, 1, 1, 1)
    assert counts.matrix().tolist() == [[1, 1], [1, 1]]
    matrix = m.confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 4)
    assert matrix.shape == (4, 4) and matrix[2, 1] == 1 and matrix[1, 2] == 1


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 200_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(np.float64)
    assert m.calibration(y, p).ece < 0.01
    positive = (rng.uniform(0, 1, p.size) < 0.7).astype(np.float64)  # 70% are positive...
    overconfident = m.calibration(positive, np.full(p.size, 0.99))  # ...but it says 99%
    assert overconfident.ece == pytest.approx(0.29, abs=0.01)
    assert overconfident.counts.sum() == p.size
