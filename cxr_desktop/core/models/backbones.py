"""Cut each torchvision/timm model into named feature blocks, dropping its classifier.

Every function takes the original model (already holding its pretrained weights, if any)
and returns a :class:`Backbone` whose ``features`` is an ``nn.Sequential`` of named blocks:
the names are what a user picks for Grad-CAM and what the parameter groups split on. The
modules are reused, not copied, so loaded weights carry over.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from torch import nn


class Backbone(NamedTuple):
    features: nn.Sequential
    channels: int
    # A normalisation applied to the pooled (B, C, 1, 1) vector before the linear head
    # (ConvNeXt's LayerNorm); None where the head is pooling + linear only.
    pool_norm: nn.Module | None = None


def _seq(*named: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(named))


def resnet(net: nn.Module) -> Backbone:
    stem = _seq(("conv1", net.conv1), ("bn1", net.bn1), ("relu", net.relu),
                ("maxpool", net.maxpool))
    layers = [(f"layer{i}", getattr(net, f"layer{i}")) for i in range(1, 5)]
    return Backbone(_seq(("stem", stem), *layers), net.fc.in_features)


def densenet(net: nn.Module) -> Backbone:
    """torchvision applies a functional ReLU after ``norm5``: it becomes part of ``norm5``."""
    children = list(net.features.named_children())
    stem = _seq(*children[:4])
    blocks = children[4:-1]
    norm5 = _seq(("norm", net.features.norm5), ("relu", nn.ReLU()))
    return Backbone(_seq(("stem", stem), *blocks, ("norm5", norm5)), net.classifier.in_features)


def efficientnet_tv(net: nn.Module) -> Backbone:
    stages = [(f"stage{i}", net.features[i]) for i in range(1, len(net.features) - 1)]
    features = _seq(("stem", net.features[0]), *stages, ("head_conv", net.features[-1]))
    return Backbone(features, net.classifier[-1].in_features)


def efficientnet_timm(net: nn.Module) -> Backbone:
    stem = _seq(("conv_stem", net.conv_stem), ("bn1", net.bn1))
    stages = [(f"stage{i}", block) for i, block in enumerate(net.blocks, start=1)]
    head_conv = _seq(("conv_head", net.conv_head), ("bn2", net.bn2))
    return Backbone(_seq(("stem", stem), *stages, ("head_conv", head_conv)), net.num_features)


def convnext(net: nn.Module) -> Backbone:
    """Keeps the LayerNorm that torchvision's classifier applies to the pooled vector."""
    f = net.features
    features = _seq(("stem", f[0]), ("stage1", f[1]), ("down1", f[2]), ("stage2", f[3]),
                    ("down2", f[4]), ("stage3", f[5]), ("down3", f[6]), ("stage4", f[7]))
    return Backbone(features, net.classifier[-1].in_features, pool_norm=net.classifier[0])


def squeezenet(net: nn.Module) -> Backbone:
    """SqueezeNet 1.1's layers under the paper's names; its conv classifier is dropped."""
    names = ("conv1", "relu1", "pool1", "fire2", "fire3", "pool3", "fire4", "fire5", "pool5",
             "fire6", "fire7", "fire8", "fire9")
    features = _seq(*zip(names, net.features, strict=True))
    return Backbone(features, net.classifier[1].in_channels)


def vgg(net: nn.Module) -> Backbone:
    """Five blocks, each ending at a max-pool, without the last pool.

    The last pool only fed VGG's fully connected classifier; without it the maps are 14 x 14
    at 224 px instead of 7 x 7, as in the CAM paper's VGG variant.
    """
    blocks: list[tuple[str, nn.Module]] = []
    current: list[nn.Module] = []
    for layer in net.features:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            blocks.append((f"block{len(blocks) + 1}", nn.Sequential(*current)))
            current = []
    last_name, last = blocks[-1]
    blocks[-1] = (last_name, nn.Sequential(*list(last)[:-1]))
    channels = next(m.out_channels for m in reversed(net.features) if isinstance(m, nn.Conv2d))
    return Backbone(_seq(*blocks), channels)


def inception(net: nn.Module) -> Backbone:
    """Every stage up to ``Mixed_7c`` under torchvision's names (aux logits are off)."""
    named = [(name, module) for name, module in net.named_children()
             if name not in ("AuxLogits", "avgpool", "dropout", "fc")]
    return Backbone(_seq(*named), net.fc.in_features)


def mobilenet_v3(net: nn.Module) -> Backbone:
    """Its two-layer classifier (960 -> 1280 -> 1000) is replaced by pooling + one linear."""
    f = net.features
    blocks = [(f"block{i}", f[i]) for i in range(1, len(f) - 1)]
    features = _seq(("stem", f[0]), *blocks, ("head_conv", f[-1]))
    return Backbone(features, net.classifier[0].in_features)


def small_cnn(net: nn.Module) -> Backbone:
    return Backbone(net.features, net.num_features)
