"""Report files for multi-label and multi-class results (binary is covered by the CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cxr_desktop.core.evaluate.evaluation import evaluate
from cxr_desktop.core.evaluate.predictions import Predictions
from cxr_desktop.core.evaluate.report import write_report
from cxr_desktop.core.evaluate.suite import EvaluationSet


def test_multilabel_report_has_per_finding_columns_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, (30, 2)).astype(np.float32)
    targets[::4, 0] = np.nan
    probs = np.clip(np.nan_to_num(targets) * 0.4 + rng.uniform(0, 0.6, (30, 2)), 0, 1)
    preds = Predictions([f"{i}.png" for i in range(30)], targets, probs, ["nodule", "mass"],
                        "multilabel", None)
    evaluation = evaluate(preds, "youden", n_boot=50)
    written = write_report(tmp_path, EvaluationSet([evaluation], weights=[1.0]))
    assert sorted(p.name for p in written) == ["confusion.png", "predictions.csv", "roc.png",
                                               "summary.json"]
    table = pd.read_csv(tmp_path / "predictions.csv")
    assert table["target_nodule"].isna().sum() == 8
    known = table["target_nodule"].notna()
    assert evaluation.per_class[0].auc == roc_auc_score(table["target_nodule"][known],
                                                        table["prob_nodule"][known])
    threshold = evaluation.threshold["mass"]
    assert (table["predicted_mass"] == (table["prob_mass"] >= threshold)).all()


def test_multiclass_report_names_the_classes(tmp_path):
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4]])
    preds = Predictions(list("abcd"), np.array([0, 1, 2, 2]), probs, ["x", "y", "z"],
                        "multiclass", None)
    write_report(tmp_path, EvaluationSet([evaluate(preds, n_boot=20)], weights=[1.0]))
    table = pd.read_csv(tmp_path / "predictions.csv")
    assert table["target"].tolist() == ["x", "y", "z", "z"]
    assert table["predicted"].tolist() == ["x", "y", "z", "x"]
    assert (tmp_path / "confusion.png").stat().st_size > 1000
