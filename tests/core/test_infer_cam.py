"""CAM maps: the logit decomposition, a known peak in original pixels, hooks, caches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer import CAM_METHODS, CamExplainer, Predictor, overlay_rgb
from cxr_desktop.core.infer.cam import plain_cam
from cxr_desktop.core.io import INTENSITY_CHAIN, load_image
from cxr_desktop.core.models import build_model

SIZE = 64  # small_cnn: 4 x 4 maps at 64 px


def metadata(task="binary", classes=("clear", "blob"), outputs=("blob",)) -> dict:
    return {"arch": "small_cnn", "task": task, "classes": list(classes),
            "output_names": list(outputs), "input_size": SIZE, "threshold": 0.5,
            "intensity_chain": INTENSITY_CHAIN, "training_scope": {}}


class CellMask(nn.Module):
    """Keeps one cell (row, col) of the maps: the logit depends on that region alone."""

    def __init__(self, row: int, col: int) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, SIZE // 16, SIZE // 16)
        mask[..., row, col] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def masked_model(row: int, col: int) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, "none")
    model.features.block4 = nn.Sequential(model.features.block4, CellMask(row, col))
    with torch.no_grad():
        model.head.weight.fill_(0.01)  # positive weights over non-negative (ReLU) maps
    return model


@pytest.fixture
def wide_image(tmp_path):
    """A non-square original: 320 columns x 160 rows of texture everywhere."""
    rng = np.random.default_rng(3)
    path = tmp_path / "wide.png"
    Image.fromarray(rng.integers(40, 220, (160, 320), dtype=np.uint8)).save(path)
    return load_image(path)


def test_plain_cam_is_the_per_location_share_of_the_logit(wide_image):
    torch.manual_seed(2)
    for outputs, task in ((("blob",), "binary"), (("a", "b", "c"), "multilabel")):
        model = build_model("small_cnn", len(outputs), "none")
        predictor = Predictor(model, metadata(task, ("clear", "blob") if task == "binary"
                                              else outputs, outputs))
        x = predictor.prepare(wide_image)
        with torch.no_grad():
            maps = predictor.model.forward_features(x)
            logits = predictor.model(x)[0]
            for k in range(len(outputs)):
                cam = plain_cam(predictor.model, maps, k)
                assert cam.shape == maps.shape[2:]
                total = cam.mean() + predictor.model.head.bias[k]
                assert total.item() == pytest.approx(logits[k].item(), abs=1e-4)
                negated = plain_cam(predictor.model, maps, k, sign=-1.0)
                assert torch.allclose(negated, -cam)


@pytest.mark.parametrize("method", CAM_METHODS)
def test_the_peak_lands_on_the_only_region_the_logit_sees(method, wide_image):
    predictor = Predictor(masked_model(1, 2), metadata())
    explainer = CamExplainer(predictor)
    result = explainer.explain(wide_image, method, "blob")
    assert result.map.shape == (160, 320) and result.map.dtype == np.float32
    assert result.map.min() >= 0.0 and result.map.max() <= 1.0
    x, y = result.peak
    # cell (row 1, col 2) of a 4 x 4 grid over 320 x 160 original pixels
    assert 2 * 80 <= x < 3 * 80 and 1 * 40 <= y < 2 * 40, (method, result.peak)
    if method != "eigencam":  # Eigen-CAM's sign is arbitrary: its peak may be the background
        # bilinear placement: zero beyond the neighbouring cells' centres
        assert result.map[:, :120].max() < 0.05 and result.map[:, 280:].max() < 0.05


def test_hooks_are_released_and_the_model_stays_frozen(wide_image):
    predictor = Predictor(masked_model(0, 0), metadata())
    explainer = CamExplainer(predictor)
    for method in ("gradcam", "gradcampp", "scorecam", "eigencam"):
        explainer.explain(wide_image, method, layer="block1")
        for module in predictor.model.modules():
            assert not module._forward_hooks and not module._backward_hooks, method
        assert all(p.grad is None and not p.requires_grad
                   for p in predictor.model.parameters())


def test_switching_class_reuses_the_forward_pass(wide_image, monkeypatch):
    predictor = Predictor(build_model("small_cnn", 3, "none"),
                          metadata("multilabel", ("a", "b", "c"), ("a", "b", "c")))
    calls = []
    original = predictor.model.forward_features
    monkeypatch.setattr(predictor.model, "forward_features",
                        lambda x: calls.append(1) or original(x))
    prediction = predictor.predict(wide_image)
    explainer = CamExplainer(predictor)
    maps = [explainer.explain(wide_image, "cam", c, prediction=prediction) for c in "abc"]
    assert len(calls) == 1
    assert not np.allclose(maps[0].map, maps[1].map)
    again = explainer.explain(wide_image, "gradcam", "b", prediction=prediction)
    assert not again.cached
    assert explainer.explain(wide_image, "gradcam", "b", prediction=prediction).cached


def test_binary_negative_class_map_is_the_positive_one_reversed(wide_image):
    predictor = Predictor(masked_model(1, 2), metadata())
    explainer = CamExplainer(predictor)
    positive = explainer.explain(wide_image, "cam", "blob").map
    negative = explainer.explain(wide_image, "cam", "clear").map
    np.testing.assert_allclose(positive + negative, 1.0, atol=1e-5)
    with pytest.raises(CxrError, match="unknown class"):
        explainer.explain(wide_image, "cam", "elbow")


def test_plain_cam_refuses_other_layers_and_inexact_heads(wide_image):
    predictor = Predictor(build_model("small_cnn", 1, "none"), metadata())
    explainer = CamExplainer(predictor)
    with pytest.raises(CxrError, match="last layer"):
        explainer.explain(wide_image, "cam", layer="block2")
    with pytest.raises(CxrError, match="unknown layer"):
        explainer.explain(wide_image, "gradcam", layer="nope")
    predictor.model.cam_exact = False
    with pytest.raises(CxrError, match="not exact"):
        explainer.explain(wide_image, "cam")


def test_overlay_blends_the_colour_map():
    gray = np.full((10, 20), 100, np.uint8)
    cam = np.zeros((10, 20), np.float32)
    cam[5, 10] = 1.0
    assert (overlay_rgb(gray, cam, opacity=0.0) == 100).all()
    full = overlay_rgb(gray, cam, opacity=1.0, colormap="gray")
    assert full.shape == (10, 20, 3) and tuple(full[5, 10]) == (255, 255, 255)
    assert tuple(full[0, 0]) == (0, 0, 0)
    with pytest.raises(ValueError):
        overlay_rgb(gray, cam[:5], 0.5)
