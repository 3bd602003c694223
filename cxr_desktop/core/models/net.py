"""CxrNet: any backbone behind one interface (gray input, pooled linear head, CAM layers)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from cxr_desktop.core.models.backbones import Backbone
from cxr_desktop.core.models.registry import ArchInfo


class CxrNet(nn.Module):
    """A classifier for grayscale radiographs: (B, 1, H, W) floats in [0, 1] -> logits.

    **Gray input.** The gray channel is normalised with the architecture's per-channel
    mean/std (ImageNet's; Inception's ``[-1, 1]`` scaling) and thereby broadcast to the three
    channels the pretrained stem expects. Repeating the channel, rather than summing the first
    convolution's weights into one input channel, keeps every state dict identical to the
    published one (so weight files load unchanged) and the math is the same; it only costs a
    3-channel input tensor. The small CNN takes one channel.

    **Head.** ``features`` gives the last maps (B, C, h, w); they are averaged over h, w,
    passed through ``pool_norm`` (identity except ConvNeXt's LayerNorm), ``dropout`` and ONE
    ``head = nn.Linear(C, num_outputs)``. Because pooling and head are both linear,
    ``linear_cam(maps)`` gives the class activation maps without a backward pass, and
    ``linear_cam(maps).mean((2, 3)) + head.bias`` equals the logits. ConvNeXt's LayerNorm
    sits between the pooling and the head, so there the plain CAM is only an approximation:
    ``cam_exact`` is False and Grad-CAM is the faithful choice.
    """

    def __init__(self, info: ArchInfo, backbone: Backbone, num_outputs: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.arch = info.name
        self.input_size = info.input_size
        self.num_outputs = num_outputs
        self.num_features = backbone.channels
        self.cam_exact = info.cam_exact
        self.default_cam_layer = info.default_cam_layer
        self._cam_layer_names = info.cam_layers
        self._late_from = info.late_from
        # Set by the factory: the weights file used (None: random init) and a sentence on it.
        self.pretrained_source: Path | None = None
        self.pretrained_note = ""
        channels = len(info.mean)
        self.register_buffer("mean", torch.tensor(info.mean).view(1, channels, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, channels, 1, 1),
                             persistent=False)
        self.features = backbone.features
        self.pool_norm = backbone.pool_norm if backbone.pool_norm is not None else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.channels, num_outputs)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature maps (B, C, h, w) for input (B, 1, H, W) in [0, 1]."""
        return self.features((x - self.mean) / self.std)

    def forward_head(self, maps: Tensor) -> Tensor:
        pooled = self.pool_norm(maps.mean(dim=(2, 3), keepdim=True)).flatten(1)
        return self.head(self.dropout(pooled))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def linear_cam(self, maps: Tensor) -> Tensor:
        """Class activation maps (B, num_outputs, h, w): the head's weights over the maps.

        Exact (mean over h, w plus the bias gives the logits) unless ``cam_exact`` is False.
        """
        return torch.einsum("kc,bchw->bkhw", self.head.weight, maps)

    def cam_layers(self) -> dict[str, nn.Module]:
        """The blocks a user may pick for Grad-CAM, shallow to deep; the last is the default."""
        return {name: self.features.get_submodule(name) for name in self._cam_layer_names}

    def head_modules(self) -> list[nn.Module]:
        return [self.pool_norm, self.head]

    def freeze_backbone(self) -> None:
        """Only the head (and ConvNeXt's pre-head LayerNorm) stays trainable.

        BatchNorm running statistics still update in ``train()`` mode; the engine decides
        whether to keep frozen blocks in ``eval()``.
        """
        self.features.requires_grad_(False)
        for module in self.head_modules():
            module.requires_grad_(True)

    def unfreeze(self) -> None:
        self.requires_grad_(True)

    def param_groups(self, lr: float, lr_mult_early: float = 0.1) -> list[dict[str, object]]:
        """Three optimizer groups for discriminative learning rates, fastai style.

        ``early`` (blocks before ``late_from``) gets ``lr * lr_mult_early``, ``late`` the
        geometric middle ``lr * sqrt(lr_mult_early)``, ``head`` the full ``lr``. Every
        parameter is in exactly one group, frozen or not, so one optimizer serves both the
        frozen and the unfrozen phase.
        """
        names = list(dict(self.features.named_children()))
        split = names.index(self._late_from)
        early = [p for n in names[:split] for p in self.features.get_submodule(n).parameters()]
        late = [p for n in names[split:] for p in self.features.get_submodule(n).parameters()]
        head = [p for module in self.head_modules() for p in module.parameters()]
        return [
            {"name": "early", "params": early, "lr": lr * lr_mult_early},
            {"name": "late", "params": late, "lr": lr * lr_mult_early ** 0.5},
            {"name": "head", "params": head, "lr": lr},
        ]
