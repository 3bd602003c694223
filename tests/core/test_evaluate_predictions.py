"""Predictions of real tiny runs: right numbers, saved and reused, errors that name files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evaluation_runs import trained_runs

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.errors import CxrError, DatasetError
from cxr_desktop.core.evaluate import predictions as predictions_module
from cxr_desktop.core.evaluate.predictions import PREDICTIONS_DIR, predict
from cxr_desktop.core.evaluate.suite import evaluate_runs
from cxr_desktop.core.io import load_image, model_input
from cxr_desktop.core.runs import load_run


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
    assert preds.notes == [f"{tiny.runs[0]}: 36 of the 76 images evaluated were used to train "
                           "or validate this run"]


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
