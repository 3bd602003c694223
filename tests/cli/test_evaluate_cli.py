"""``cxr-desktop evaluate``: the AUC it prints is scikit-learn's on the CSV it writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from evaluation_runs import trained_runs

from cxr_desktop.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return trained_runs(tmp_path_factory.mktemp("evaluation-runs"))


def evaluate(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["evaluate", *args, "--device", "cpu", "--bootstrap", "300"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if "--json" in args and code == 0 else None, err


def test_one_run_json_and_report_agree_with_sklearn(tiny, tmp_path, capsys):
    report = tmp_path / "report"
    code, data, _ = evaluate(capsys, str(tiny.runs[0]), str(tiny.dataset), "--json",
                             "--report", str(report))
    assert code == 0
    for key in ("n", "auc", "auc_ci", "accuracy", "sensitivity", "specificity", "threshold",
                "per_class"):
        assert key in data, key
    table = pd.read_csv(report / "predictions.csv")
    assert data["n"] == len(table) == 40 and set(table["target"]) == {0, 1}
    assert data["auc"] == pytest.approx(roc_auc_score(table["target"], table["prob"]))
    assert data["auc_ci"][0] <= data["auc"] <= data["auc_ci"][1]
    called = table["prob"] >= data["threshold"]
    assert data["sensitivity"] == pytest.approx(called[table["target"] == 1].mean())
    assert data["specificity"] == pytest.approx((~called)[table["target"] == 0].mean())
    assert (table["predicted"] == called.astype(int)).all()
    for name in ("roc.png", "confusion.png"):
        assert (report / name).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((report / "summary.json").read_text())["auc"] == data["auc"]


def test_youden_threshold_maximises_j_on_the_written_csv(tiny, tmp_path, capsys):
    report = tmp_path / "report"
    code, data, _ = evaluate(capsys, str(tiny.runs[1]), str(tiny.dataset), "--json",
                             "--threshold", "youden", "--report", str(report))
    assert code == 0
    table = pd.read_csv(report / "predictions.csv")
    positive = table["target"].to_numpy() == 1

    def j(threshold: float) -> float:
        called = table["prob"].to_numpy() >= threshold
        return called[positive].mean() + (~called)[~positive].mean() - 1

    best = max(j(t) for t in np.unique(table["prob"]))
    assert j(data["threshold"]) == pytest.approx(best)
    assert data["sensitivity"] + data["specificity"] - 1 == pytest.approx(best)


def test_two_runs_report_every_ensemble_method_beside_the_members(tiny, tmp_path, capsys):
    report = tmp_path / "report"
    code, data, _ = evaluate(capsys, *map(str, tiny.runs), str(tiny.dataset), "--json",
                             "--report", str(report))
    assert code == 0
    assert set(data["ensemble"]) == {"mean", "vote", "auc-weighted"}
    assert data["method"] == "mean" and data["auc"] == data["ensemble"]["mean"]["auc"]
    assert [m["run_dir"] for m in data["members"]] == [str(r) for r in tiny.runs]
    table = pd.read_csv(report / "predictions.csv")
    for method, values in data["ensemble"].items():
        assert values["auc"] == pytest.approx(roc_auc_score(table["target"],
                                                            table[f"{method}/prob"]))
    for index, member in enumerate(data["members"], 1):
        assert member["auc"] == pytest.approx(roc_auc_score(table["target"],
                                                            table[f"member{index}/prob"]))
    np.testing.assert_allclose(table["mean/prob"], (table["member1/prob"]
                                                    + table["member2/prob"]) / 2, atol=1e-6)

    code, data, _ = evaluate(capsys, *map(str, tiny.runs), str(tiny.dataset), "--json",
                             "--ensemble", "vote")
    assert code == 0 and list(data["ensemble"]) == ["vote"] and data["method"] == "vote"


def test_text_output_lists_members_and_ensembles(tiny, capsys):
    code = main(["evaluate", *map(str, tiny.runs), str(tiny.dataset), "--device", "cpu",
                 "--bootstrap", "100"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split(": n=")[0] for line in lines[:5]] == [
        *map(str, tiny.runs), "ensemble mean", "ensemble vote", "ensemble auc-weighted"]
    assert all("AUC" in line and "n=40" in line for line in lines[:5])


@pytest.mark.parametrize("case", ["missing run", "no dataset", "bad classes"])
def test_errors_are_one_line_naming_the_file(tiny, tmp_path, capsys, case):
    if case == "missing run":
        args, named = [str(tmp_path / "nope"), str(tiny.dataset)], tmp_path / "nope"
    elif case == "no dataset":
        args, named = [str(tiny.runs[0])], tiny.runs[0]
    else:
        spec = json.loads(tiny.dataset.read_text())
        spec.update(classes=["normal", "nodule"], positive_class="nodule")
        for item in spec["items"]:
            item["labels"] = "nodule"
        other = tmp_path / "other.json"
        other.write_text(json.dumps(spec))
        args, named = [str(tiny.runs[0]), str(other)], tiny.runs[0]
    code, _, err = evaluate(capsys, *args)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and str(named) in err
