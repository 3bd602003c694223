"""Predictions of real tiny runs: right numbers, saved and reused, errors that name files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from blobs import make_blob_dataset
from evaluation_runs import trained_runs

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.errors import CxrError, DatasetError
from cxr_desktop.core.evaluate import predictions as predictions_module
from cxr_desktop.core.evaluate.predictions import PREDICTIONS_DIR, predict
from cxr_desktop.core.evaluate.suite import evaluate_runs, run_dataset
from cxr_desktop.core.io import load_image, model_input
from cxr_desktop.core.runs import RunRegistry, load_run
from cxr_desktop.core.train import TrainConfig, fit


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return trained_runs(tmp_path_factory.mktemp("evaluation-runs"))


def test_predictions_equal_the_model_on_each_image_and_are_reused(tiny, monkeypatch):
    spec = open_dataset(tiny.dataset)
    preds = predict(tiny.runs[0], spec, "test", device="cpu")
    test_rows = spec.split_indices("test")
    assert len(preds) == len(test_rows) == 40 and preds.task == "binary"
    assert preds.output_names == ["blob"] and preds.val_auc is not None
    np.testing.assert_array_equal(preds.targets, spec.targets()[test_rows])
    assert preds.notes == []
    model = load_run(tiny.runs[0]).model
    for row in (0, 17, 39):
        image = model_input(load_image(preds.paths[row]), 64)
        with torch.inference_mode():
            logit = model(torch.from_numpy(np.array(image)).float().div(255).view(1, 1, 64, 64))
        assert preds.probs[row] == pytest.approx(float(torch.sigmoid(logit)), abs=1e-5)
    saved = list((tiny.runs[0] / PREDICTIONS_DIR).glob("*.npz"))
    assert saved

    def no_inference(*args, **kwargs):
        raise AssertionError("predictions should have been read back")

    real_infer = predictions_module._infer
    monkeypatch.setattr(predictions_module, "_infer", no_inference)
    again = predict(tiny.runs[0], spec, "test", device="cpu")
    np.testing.assert_array_equal(again.probs, preds.probs)
    with pytest.raises(AssertionError, match="read back"):
        predict(tiny.runs[0], spec, "val", device="cpu")
    monkeypatch.setattr(predictions_module, "_infer", real_infer)
    for path in saved:
        path.write_bytes(b"torn")
    np.testing.assert_allclose(predict(tiny.runs[0], spec, "test", device="cpu").probs,
                               preds.probs)


def test_evaluating_training_images_is_pointed_out(tiny):
    spec = open_dataset(tiny.dataset)
    preds = predict(tiny.runs[0], spec, "all", device="cpu")
    assert len(preds) == len(spec.items)
    assert preds.notes == []
    assert preds.warnings == [f"{tiny.runs[0]}: 36 of the 76 images evaluated were used to "
                              "train or validate this run (the split asked for holds them): "
                              "these numbers overstate how well it does on new images"]


def test_unreadable_images_are_left_out_and_named(tiny):
    spec = open_dataset(tiny.dataset)
    (spec.root / "broken.png").write_bytes(b"not a png")
    items = [item for item in spec.items if item.split == "test"][:6]
    items.append(ImageItem("broken.png", "test", None, "blob"))
    small = DatasetSpec(spec.root, "binary", spec.classes, "blob", items)
    preds = predict(tiny.runs[0], small, "test", device="cpu")
    assert len(preds) == 6 and len(preds.excluded) == 1 and "broken.png" in preds.excluded[0]


def test_other_classes_or_an_empty_split_are_errors(tiny):
    spec = open_dataset(tiny.dataset)
    other = DatasetSpec(spec.root, "binary", ["normal", "nodule"], "nodule",
                        [ImageItem(i.path, i.split, None, "nodule") for i in spec.items])
    with pytest.raises(CxrError, match="classes"):
        predict(tiny.runs[0], other, "test")
    with pytest.raises(DatasetError, match="no images in split 'holdout'"):
        predict(tiny.runs[0], spec, "holdout")


def test_evaluate_runs_reports_members_and_all_ensembles(tiny):
    spec = open_dataset(tiny.dataset)
    result = evaluate_runs(tiny.runs, spec, "test", n_boot=200, device="cpu")
    assert list(result.ensembles) == ["mean", "vote", "auc-weighted"]
    assert result.headline is result.ensembles["mean"]
    assert sum(result.weights) == pytest.approx(1.0)
    data = result.to_dict()
    assert [m["run_dir"] for m in data["members"]] == [str(r) for r in tiny.runs]
    for member, evaluation in zip(data["members"], result.members, strict=True):
        assert member["auc"] == pytest.approx(evaluation.auc)
    mean_probs = np.mean([e.predictions.probs for e in result.members], axis=0)
    np.testing.assert_allclose(result.ensembles["mean"].predictions.probs, mean_probs,
                               atol=1e-6)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A class-folder dataset and a run trained on it with its own split options."""
    base = tmp_path_factory.mktemp("own-splits")
    blobs = make_blob_dataset(base / "blobs", n_train=40, n_val=0)
    for item in blobs.items:
        target = base / "folds" / item.labels / Path(item.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(blobs.abspath(item), target)
    options = {"seed": 7, "val_fraction": 0.3, "test_fraction": 0.3}
    spec = open_dataset(base / "folds", **options)
    config = TrainConfig(dataset=str(base / "folds"), dataset_options=options,
                         arch="small_cnn", size=32, epochs=1, batch_size=8,
                         pretrained="none", workers=1, out=str(base / "run"),
                         cache_dir=str(base / "cache"))
    result = fit(config, registry=RunRegistry(base / "runs.sqlite"))
    assert result.status == "done"
    return base / "folds", result.run_dir, spec


def _split_paths(spec, split):
    return sorted(str(spec.abspath(spec.items[int(i)])) for i in spec.split_indices(split))


def test_a_run_is_evaluated_on_its_own_splits_of_its_dataset(folder_run):
    dataset, run_dir, trained = folder_run
    other_options = open_dataset(dataset)  # default seed and fractions: other splits
    assert _split_paths(other_options, "test") != _split_paths(trained, "test")
    preds = predict(run_dir, other_options, "test", device="cpu")
    assert sorted(preds.paths) == _split_paths(trained, "test") and len(preds) == 12
    assert preds.warnings == []
    assert len(preds.notes) == 1 and "its own splits are used" in preds.notes[0]
    # The GUI's path: its own dataset.json, no note at all.
    same = predict(run_dir, run_dataset(run_dir), "test", device="cpu")
    assert sorted(same.paths) == sorted(preds.paths) and same.notes == same.warnings == []
    result = evaluate_runs([run_dir], other_options, "test", n_boot=10, device="cpu")
    assert result.headline.n == 12


def test_another_dataset_with_the_runs_images_gets_a_clear_warning(folder_run, tmp_path):
    dataset, run_dir, trained = folder_run
    spec = open_dataset(dataset)
    elsewhere = dataclasses.replace(spec, source={**spec.source,
                                                  "path": str(tmp_path / "other.csv")})
    preds = predict(run_dir, elsewhere, "test", device="cpu")
    assert sorted(preds.paths) == _split_paths(spec, "test")  # its own splits, as before
    [warning] = preds.warnings
    assert "were used to train or validate this run" in warning
    assert "is not the dataset the run was trained on" in warning
    assert "overstate" in warning
