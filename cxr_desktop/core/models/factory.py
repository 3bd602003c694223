"""One entry point to every architecture: ``build_model(arch, num_outputs, pretrained)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from cxr_desktop.core.errors import ModelError, WeightsNotFoundError
from cxr_desktop.core.models.net import CxrNet
from cxr_desktop.core.models.registry import ARCHITECTURES, ArchInfo, get_arch
from cxr_desktop.core.models.weights import load_pretrained

__all__ = ["ARCHITECTURES", "ArchInfo", "CxrNet", "build_imagenet_classifier", "build_model",
           "imagenet_input"]


def build_model(arch: str, num_outputs: int, pretrained: str | Path | None = "auto",
                weights_dirs: Sequence[str | Path] | None = None,
                dropout: float = 0.0) -> CxrNet:
    """A :class:`CxrNet` for ``num_outputs`` logits, pretrained as ``pretrained`` says.

    ``pretrained``: ``"auto"`` (ImageNet weights when found on this machine, else random
    init with ``model.pretrained_note`` saying which file to place where), ``"imagenet"``
    (WeightsNotFoundError when missing), ``"none"`` (random init) or a path to a
    ``.pth``/``.pt``/``.bin``/``.safetensors`` state dict. ``weights_dirs`` replaces the
    folders searched (``resources/weights/``, then ``$TORCH_HOME/hub/checkpoints``).
    ``model.pretrained_source`` is the file loaded, or None.
    """
    info = get_arch(arch)
    if num_outputs < 1:
        raise ModelError(f"{arch}: num_outputs must be at least 1, not {num_outputs}")
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"{arch}: dropout must be in [0, 1), not {dropout}")
    net = info.create()
    source = load_pretrained(net, info, pretrained, weights_dirs)
    model = CxrNet(info, info.backbone(net), num_outputs, dropout=dropout)
    model.pretrained_source, model.pretrained_note = source.path, source.note
    return model


def build_imagenet_classifier(arch: str, pretrained: str | Path = "imagenet",
                              weights_dirs: Sequence[str | Path] | None = None) -> nn.Module:
    """The original torchvision/timm model with its 1000-class head and the weights in full.

    Input: (B, 3, H, W) normalised with the architecture's mean/std
    (``ARCHITECTURES[arch].mean``). Used to check that a weights file, and its key
    mapping, really is what it claims: predict on a natural photo and compare with the
    ImageNet class. In eval mode on return.
    """
    info = get_arch(arch)
    if not info.weight_files:
        raise ModelError(f"{arch} has no ImageNet classifier")
    net = info.create()
    source = load_pretrained(net, info, pretrained, weights_dirs, keep_classifier=True)
    if source.path is None:
        raise WeightsNotFoundError(f"{arch}: an ImageNet classifier needs weights ({source.note})")
    return net.eval()


def imagenet_input(rgb: np.ndarray, arch: str, size: int | None = None) -> Tensor:
    """A (1, 3, size, size) input for :func:`build_imagenet_classifier` from an RGB uint8 photo.

    Resized (bicubic) to ``size`` (default: the architecture's input size) and normalised
    with the architecture's mean/std.
    """
    info = get_arch(arch)
    side = size or info.input_size
    resized = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB").resize(
        (side, side), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(info.mean).view(-1, 1, 1)
    std = torch.tensor(info.std).view(-1, 1, 1)
    return ((x - mean) / std).unsqueeze(0)
