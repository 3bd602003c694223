"""Maps for many images at once, at the model's input size, for scoring a whole split.

Where the method allows, the maps come from the forward pass that gives the probabilities:
plain CAM is the head's weights over the last feature maps, and Grad-CAM on the last layer
of a pooled linear head is the same map through a ReLU (its channel weights, the mean
gradients, are the head's weights divided by the map's area), so neither needs a backward
pass. Other layers and methods go through pytorch-grad-cam, a batch at a time. Every map is
min-max scaled per image, as the Viewer's are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer.methods import CAM_METHODS
from cxr_desktop.core.models import CxrNet
from cxr_desktop.core.train.augment import to_float
from cxr_desktop.core.train.loop import probabilities

_GRADIENT_METHODS = ("gradcam", "gradcampp")


@dataclass
class BatchMaps:
    """``maps`` (B, S, S) float32 in [0, 1] for the (image, output) pairs asked for, and
    ``probs`` of every image of the batch (as ``probabilities`` gives them)."""

    maps: np.ndarray
    probs: np.ndarray


def from_forward(model: CxrNet, method: str, layer: str) -> bool:
    """True when ``method`` at ``layer`` comes from the forward pass alone."""
    return (method in ("cam", "gradcam") and layer == model.default_cam_layer
            and model.cam_exact)


def check_method(model: CxrNet, method: str, layer: str) -> None:
    """CxrError naming what is wrong with ``method`` at ``layer`` for ``model``."""
    if method not in CAM_METHODS:
        raise CxrError(f"unknown CAM method {method!r}: one of {', '.join(CAM_METHODS)}")
    if layer not in model.cam_layers():
        raise CxrError(f"unknown layer {layer!r} for {model.arch}: one of "
                       f"{', '.join(model.cam_layers())}")
    if method == "cam" and not from_forward(model, method, layer):
        raise CxrError(f"plain CAM needs the last layer ({model.default_cam_layer}) of a "
                       "model with a pooled linear head: use gradcam")


def _normalize(maps: Tensor) -> Tensor:
    """Per-map min-max scaling of (B, H, W); a flat map becomes zeros."""
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > 1e-12, (maps - low) / span.clamp_min(1e-12),
                       torch.zeros_like(maps))


def _forward_maps(model: CxrNet, x: Tensor, outputs: list[int], method: str,
                  task: str) -> tuple[Tensor, Tensor]:
    with torch.inference_mode():
        features = model.forward_features(x)
        logits = model.forward_head(features)
        cams = model.linear_cam(features)[torch.arange(len(outputs)), torch.tensor(outputs)]
        if method == "gradcam":
            cams = cams.clamp_min(0)
        size = x.shape[-2:]
        cams = F.interpolate(cams[:, None], size=size, mode="bilinear",
                             align_corners=False)[:, 0]
        return _normalize(cams), probabilities(task, logits)


def _library_maps(model: CxrNet, x: Tensor, outputs: list[int], method: str,
                  layer: str, task: str) -> tuple[Tensor, Tensor]:
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    engines = {"gradcam": GradCAM, "gradcampp": GradCAMPlusPlus, "scorecam": ScoreCAM,
               "eigencam": EigenCAM}
    with torch.inference_mode():
        probs = probabilities(task, model(x))
    model.requires_grad_(False)
    inp = x.detach().clone().requires_grad_(method in _GRADIENT_METHODS)
    with engines[method](model=model, target_layers=[model.cam_layers()[layer]]) as engine:
        engine.batch_size = len(outputs)
        result = engine(input_tensor=inp, targets=[ClassifierOutputTarget(o) for o in outputs])
    model.zero_grad(set_to_none=True)
    if result is None:  # the library's __exit__ swallows an IndexError after printing it
        raise CxrError(f"{method} failed on layer {layer} of {model.arch}")
    return _normalize(torch.from_numpy(np.asarray(result, dtype=np.float32))), probs


def batch_maps(model: CxrNet, images: np.ndarray, outputs: list[int], *, method: str,
               layer: str, task: str, device: torch.device) -> BatchMaps:
    """Maps of ``images`` ((B, S, S) uint8 model inputs) for ``outputs[i]`` of image i."""
    model.eval()
    x = to_float(torch.from_numpy(np.ascontiguousarray(images)).to(device))
    if from_forward(model, method, layer):
        maps, probs = _forward_maps(model, x, outputs, method, task)
    else:
        maps, probs = _library_maps(model, x, outputs, method, layer, task)
    return BatchMaps(maps.float().cpu().numpy(), probs.float().cpu().numpy())
