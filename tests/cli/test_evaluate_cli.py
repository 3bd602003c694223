"""``cxr-desktop evaluate``: the AUC it prints is scikit-learn's on the CSV it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
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


@pytest.mark.parametrize("target", ["afile", "afile/x"])
def test_a_report_path_that_cannot_be_a_folder_is_one_line(tiny, tmp_path, capsys, target):
    (tmp_path / "afile").write_text("mine\n")
    code, _, err = evaluate(capsys, str(tiny.runs[0]), str(tiny.dataset), "--report",
                            str(tmp_path / target))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"cxr-desktop: {tmp_path / target}: cannot create the report folder")
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_a_report_folder_is_not_left_behind_when_the_evaluation_fails(tiny, tmp_path, capsys):
    report = tmp_path / "new" / "report"
    code, _, err = evaluate(capsys, str(tmp_path / "no-run"), str(tiny.dataset), "--report",
                            str(report))
    assert code == 1 and "no-run" in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize(("option", "value"), [("--bootstrap", "-5"),
                                               ("--temperature", "0")])
def test_bad_numbers_are_refused_when_parsing(tiny, capsys, option, value):
    with pytest.raises(SystemExit) as caught:
        main(["evaluate", str(tiny.runs[0]), str(tiny.dataset), option, value])
    assert caught.value.code == 2
    assert f"argument {option}: must be" in capsys.readouterr().err


def test_training_images_in_the_split_give_a_warning_line(tiny, capsys):
    code, _, err = evaluate(capsys, str(tiny.runs[0]), str(tiny.dataset), "--split", "train")
    assert code == 0
    assert (f"cxr-desktop: warning: {tiny.runs[0]}: 24 of the 24 images evaluated were used "
            "to train or validate this run") in err


def test_evaluating_its_own_dataset_uses_the_runs_splits(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for index in range(30):
        label = ("NORMAL", "PNEUMONIA")[index % 2]
        image = rng.normal(90, 15, (48, 48))
        if label == "PNEUMONIA":
            image[16:32, 16:32] += 120
        (tmp_path / "folds" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            tmp_path / "folds" / label / f"{index}.png")
    run_dir = tmp_path / "run"
    assert main(["train", str(tmp_path / "folds"), "--arch", "small_cnn", "--size", "32",
                 "--epochs", "1", "--pretrained", "none", "--workers", "1", "--split-seed",
                 "7", "--val", "0.3", "--test", "0.3", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    code, data, err = evaluate(capsys, str(run_dir), str(tmp_path / "folds"), "--json",
                               "--report", str(tmp_path / "report"))
    assert code == 0 and "warning" not in err and "its own splits are used" in err
    trained = json.loads((run_dir / "dataset.json").read_text())
    test_images = sorted(str(Path(trained["root"]) / item["path"])
                         for item in trained["items"] if item["split"] == "test")
    table = pd.read_csv(tmp_path / "report" / "predictions.csv")
    assert data["n"] == len(test_images) == 9
    assert sorted(table["path"]) == test_images


def test_evaluate_and_predict_import_the_report_and_cam_modules_only_when_asked(tiny):
    image = next((Path(json.loads(tiny.dataset.read_text())["root"]) / "test").iterdir())
    script = (
        "import sys\n"
        "from cxr_desktop.cli import main\n"
        f"assert main(['predict', {str(tiny.runs[0])!r}, {str(image)!r}, '--device', 'cpu'])"
        " == 0\n"
        "assert 'pytorch_grad_cam' not in sys.modules, 'grad-cam imported'\n"
        f"assert main(['evaluate', {str(tiny.runs[0])!r}, {str(tiny.dataset)!r}, '--device',"
        " 'cpu', '--bootstrap', '10']) == 0\n"
        "assert 'cxr_desktop.core.evaluate.report' not in sys.modules, 'report imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
