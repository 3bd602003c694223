"""The model factory: every architecture builds, takes gray input, and has an honest CAM."""

from __future__ import annotations

from functools import cache

import pytest
import torch
import torchvision.models as tvm

from cxr_desktop.core.errors import ModelError
from cxr_desktop.core.models import ARCHITECTURES, CxrNet, build_model

ARCHS = sorted(ARCHITECTURES)
TORCHVISION_ENUMS = {
    "resnet18": tvm.ResNet18_Weights, "resnet34": tvm.ResNet34_Weights,
    "resnet50": tvm.ResNet50_Weights, "resnet101": tvm.ResNet101_Weights,
    "densenet121": tvm.DenseNet121_Weights, "efficientnet_b0": tvm.EfficientNet_B0_Weights,
    "convnext_tiny": tvm.ConvNeXt_Tiny_Weights, "squeezenet1_1": tvm.SqueezeNet1_1_Weights,
    "vgg16_bn": tvm.VGG16_BN_Weights, "inception_v3": tvm.Inception_V3_Weights,
    "mobilenet_v3_large": tvm.MobileNet_V3_Large_Weights,
}


@cache
def _model(arch: str) -> CxrNet:
    """One random-init model per architecture for the whole file (the big ones cost ~1 s)."""
    torch.manual_seed(0)
    return build_model(arch, num_outputs=2, pretrained="none").eval()


def _input(arch: str, batch: int = 1) -> torch.Tensor:
    side = max(64, ARCHITECTURES[arch].min_input_size)
    return torch.rand(batch, 1, side, side, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ARCHS)
def test_gray_input_gives_logits_and_a_linear_cam(arch: str) -> None:
    model = _model(arch)
    x = _input(arch)
    with torch.no_grad():
        maps = model.forward_features(x)
        logits = model(x)
        cam = model.linear_cam(maps)
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()
    assert maps.ndim == 4 and maps.shape[1] == model.num_features == model.head.in_features
    assert cam.shape == (1, 2, *maps.shape[2:])
    decomposed = cam.mean(dim=(2, 3)) + model.head.bias
    if model.cam_exact:
        torch.testing.assert_close(decomposed, logits, rtol=1e-4, atol=1e-5)
    else:  # ConvNeXt: a LayerNorm sits between pooling and head
        assert arch == "convnext_tiny"
        assert not torch.allclose(decomposed, logits, atol=1e-3)


@pytest.mark.parametrize("arch", ARCHS)
def test_default_cam_layer_outputs_the_maps_the_head_reads(arch: str) -> None:
    model = _model(arch)
    layers = model.cam_layers()
    assert list(layers)[-1] == model.default_cam_layer
    assert len(layers) >= 3
    seen: list[torch.Tensor] = []
    handle = layers[model.default_cam_layer].register_forward_hook(
        lambda _m, _i, out: seen.append(out.detach().clone()))
    try:
        with torch.no_grad():
            maps = model.forward_features(_input(arch))
    finally:
        handle.remove()
    torch.testing.assert_close(seen[-1], maps)


@pytest.mark.parametrize("arch", ARCHS)
def test_freeze_leaves_only_the_head_trainable_and_groups_cover_all(arch: str) -> None:
    model = _model(arch)
    head_ids = {id(p) for m in model.head_modules() for p in m.parameters()}
    assert {id(p) for p in model.head.parameters()} <= head_ids
    try:
        model.freeze_backbone()
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert trainable == head_ids
        model.unfreeze()
        assert all(p.requires_grad for p in model.parameters())
    finally:
        model.unfreeze()
    groups = model.param_groups(lr=1e-3, lr_mult_early=0.1)
    assert [g["name"] for g in groups] == ["early", "late", "head"]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert all(g["params"] for g in groups)
    lrs = [g["lr"] for g in groups]
    assert lrs[0] == pytest.approx(1e-4) and lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3)
    optimizer = torch.optim.AdamW(groups)
    assert len(optimizer.param_groups) == 3


def test_one_gray_channel_equals_the_repeated_rgb_image() -> None:
    model = _model("resnet18")
    gray = _input("resnet18", batch=2)
    with torch.no_grad():
        torch.testing.assert_close(model(gray), model(gray.repeat(1, 3, 1, 1)))


def test_small_cnn_takes_one_channel_and_trains() -> None:
    torch.manual_seed(0)
    model = build_model("small_cnn", num_outputs=1, pretrained="none")
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 1
    x = torch.rand(8, 1, 128, 128)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).float().unsqueeze(1)
    x[y[:, 0] > 0] += 0.3
    optimizer = torch.optim.AdamW(model.param_groups(lr=3e-3))
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_inception_has_no_aux_logits_and_a_299_input() -> None:
    model = _model("inception_v3")
    assert model.input_size == 299
    assert not any("AuxLogits" in name for name, _ in model.named_modules())
    model.train()
    try:
        out = model(torch.rand(2, 1, 75, 75))
    finally:
        model.eval()
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2)


def test_heads_are_one_linear_layer() -> None:
    for arch in ("squeezenet1_1", "vgg16_bn", "mobilenet_v3_large"):
        model = _model(arch)
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        assert linears == [model.head], arch
    assert isinstance(_model("convnext_tiny").pool_norm, torch.nn.LayerNorm)


def test_weight_file_names_are_torchvisions() -> None:
    for arch, enum in TORCHVISION_ENUMS.items():
        names = {w.url.rsplit("/", 1)[-1] for w in enum}
        assert set(ARCHITECTURES[arch].weight_files) == names, arch
        assert ARCHITECTURES[arch].weight_files[0] == enum.DEFAULT.url.rsplit("/", 1)[-1]
    assert set(TORCHVISION_ENUMS) | {"efficientnet_lite0", "small_cnn"} == set(ARCHITECTURES)


def test_bad_arguments_raise_model_error() -> None:
    with pytest.raises(ModelError, match="resnet18"):
        build_model("resnet19", 2, pretrained="none")
    with pytest.raises(ModelError, match="num_outputs"):
        build_model("small_cnn", 0, pretrained="none")
    model = build_model("small_cnn", 3, pretrained="none", dropout=0.2)
    assert model.dropout.p == 0.2 and model.head.out_features == 3
