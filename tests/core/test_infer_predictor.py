"""Predictor: probabilities per task, a frozen copy, loading from runs, checkpoints, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cxr_desktop.core.errors import FileError
from cxr_desktop.core.infer import Predictor
from cxr_desktop.core.io import INTENSITY_CHAIN, load_image
from cxr_desktop.core.models import build_model
from cxr_desktop.core.runs import save_checkpoint


def metadata(task: str, classes: list[str], outputs: list[str], size: int = 32) -> dict:
    return {"arch": "small_cnn", "task": task, "classes": classes, "output_names": outputs,
            "num_outputs": len(outputs), "input_size": size, "threshold": 0.3,
            "intensity_chain": INTENSITY_CHAIN, "training_scope": {}, "saved": "t", "epoch": 1}


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "img.png"
    Image.fromarray(rng.integers(0, 255, (48, 40), dtype=np.uint8)).save(path)
    return load_image(path)


def logits_of(predictor: Predictor, image) -> torch.Tensor:
    with torch.no_grad():
        return predictor.model(predictor.prepare(image))[0]


def test_binary_gives_the_positive_sigmoid_and_its_complement(image):
    torch.manual_seed(0)
    predictor = Predictor(build_model("small_cnn", 1, "none"),
                          metadata("binary", ["clear", "blob"], ["blob"]))
    prediction = predictor.predict(image)
    p = torch.sigmoid(logits_of(predictor, image))[0].item()
    assert list(prediction.probabilities) == ["clear", "blob"]
    assert prediction.probabilities["blob"] == pytest.approx(p, abs=1e-6)
    assert prediction.probabilities["clear"] == pytest.approx(1 - p, abs=1e-6)
    assert prediction.top_class == ("blob" if p >= 0.5 else "clear")
    assert prediction.positives == (["blob"] if p >= 0.3 else ["clear"])
    assert prediction.threshold == 0.3 and prediction.ms > 0


def test_multiclass_softmax_sums_to_one_and_multilabel_is_per_class(image):
    torch.manual_seed(1)
    model = build_model("small_cnn", 3, "none")
    names = ["a", "b", "c"]
    multi = Predictor(model, metadata("multiclass", names, names)).predict(image)
    assert sum(multi.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert multi.top_class == max(multi.probabilities, key=multi.probabilities.get)
    assert multi.positives == [multi.top_class]
    labels = Predictor(model, metadata("multilabel", names, names))
    prediction = labels.predict(image)
    expected = torch.sigmoid(logits_of(labels, image)).tolist()
    assert list(prediction.probabilities.values()) == pytest.approx(expected, abs=1e-6)
    assert prediction.positives == [n for n, p in zip(names, expected, strict=True) if p >= 0.3]


def test_the_predictor_keeps_a_frozen_copy_at_the_run_size(image):
    model = build_model("small_cnn", 1, "none").train()
    predictor = Predictor(model, metadata("binary", ["n", "p"], ["p"], size=48))
    before = predictor.predict(image).probabilities["p"]
    with torch.no_grad():
        model.head.bias += 5.0  # the model goes on training: the predictor must not see it
    assert predictor.predict(image).probabilities["p"] == pytest.approx(before)
    assert not predictor.model.training and model.training
    assert not any(p.requires_grad for p in predictor.model.parameters())
    assert predictor.prepare(image).shape == (1, 1, 48, 48)
    assert predictor.warnings == []


def test_a_different_intensity_chain_is_warned_about():
    meta = metadata("binary", ["n", "p"], ["p"]) | {"intensity_chain": "old/v0"}
    predictor = Predictor(build_model("small_cnn", 1, "none"), meta)
    assert any("old/v0" in w for w in predictor.warnings)


def test_load_from_run_folder_checkpoint_and_bare_weights(tmp_path, image):
    model = build_model("small_cnn", 1, "none")
    run = tmp_path / "run"
    save_checkpoint(run / "best.pt", {"model": model.state_dict(),
                                      "metadata": metadata("binary", ["n", "p"], ["p"])})
    expected = Predictor(model, metadata("binary", ["n", "p"], ["p"])).predict(image)
    for source in (run, run / "best.pt"):
        loaded = Predictor.load(source, device="cpu")
        assert loaded.predict(image).probabilities == pytest.approx(expected.probabilities)
        assert any("scope.npz" in w for w in loaded.warnings)
    weights = tmp_path / "weights.pth"
    torch.save(model.state_dict(), weights)
    with pytest.raises(FileError, match="--arch"):
        Predictor.load(weights)
    bare = Predictor.load(weights, arch="small_cnn", classes=["n", "p"], size=32)
    assert bare.task == "binary" and bare.output_names == ["p"]
    assert bare.predict(image).probabilities == pytest.approx(expected.probabilities)
    with pytest.raises(FileError, match="1 output"):
        Predictor.load(weights, arch="small_cnn", classes=["a", "b", "c"])
    with pytest.raises(FileError, match="not found"):
        Predictor.load(tmp_path / "missing")
