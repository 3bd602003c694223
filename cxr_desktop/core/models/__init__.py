"""Model factory over torchvision and timm, and offline pretrained weights.

``build_model(arch, num_outputs, pretrained="auto")`` returns a :class:`CxrNet`; the
architectures and what the app knows about each are in ``ARCHITECTURES``.
"""

from cxr_desktop.core.models.factory import build_imagenet_classifier, build_model
from cxr_desktop.core.models.net import CxrNet
from cxr_desktop.core.models.registry import ARCHITECTURES, ArchInfo, get_arch

__all__ = ["ARCHITECTURES", "ArchInfo", "CxrNet", "build_imagenet_classifier", "build_model",
           "get_arch"]
