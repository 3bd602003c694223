"""Where the model looked: CAM maps on the original image, through the grad-cam library.

Methods (``CAM_METHODS``):

- ``cam``: class activation mapping (Zhou et al. 2016) from the head's weights over the last
  feature maps, no backward pass: exact for a global-average-pool + linear head
  (``model.cam_exact``), on the last layer only. The maps of the forward pass that made the
  prediction serve every class.
- ``gradcam``, ``gradcampp``, ``scorecam``, ``eigencam``: pytorch-grad-cam's GradCAM,
  GradCAMPlusPlus, ScoreCAM and EigenCAM on any block of ``model.cam_layers()``, used as a
  context manager so its hooks are removed after each map. Eigen-CAM does not depend on the
  class (the first principal component of the block's maps) and its sign is arbitrary.

Maps are min-max scaled to [0, 1] at the model's resolution, cached per (image, method,
layer, class), then resized onto the original rows x columns: the model input is the whole
image resized without a crop, so the resize alone places the map.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import matplotlib
import numpy as np
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM
from pytorch_grad_cam.utils.model_targets import (
    BinaryClassifierOutputTarget,
    ClassifierOutputTarget,
)
from torch import Tensor

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer.methods import CAM_METHODS
from cxr_desktop.core.infer.predictor import Prediction, Predictor
from cxr_desktop.core.io import Radiograph
from cxr_desktop.core.models import CxrNet

_LIBRARY = {"gradcam": GradCAM, "gradcampp": GradCAMPlusPlus, "scorecam": ScoreCAM,
            "eigencam": EigenCAM}
_GRADIENT_METHODS = ("gradcam", "gradcampp")
SCORECAM_BATCH = 32
CACHE_SIZE = 64


@dataclass
class CamResult:
    """A map (rows, columns) float32 in [0, 1] on the original image and its peak (x, y) in
    original pixels (None for a flat map)."""

    method: str
    layer: str
    target_class: str
    map: np.ndarray
    peak: tuple[int, int] | None
    ms: float
    cached: bool


def plain_cam(model: CxrNet, maps: Tensor, output: int, sign: float = 1.0) -> Tensor:
    """The (h, w) class activation map of one image's maps (1, C, h, w) for one output.

    Its mean plus the head's bias is the logit (times ``sign``): each location's share of it.
    """
    return sign * model.linear_cam(maps)[0, output]


def normalize(cam: np.ndarray) -> np.ndarray:
    """Min-max scaled to [0, 1] float32; a flat map becomes zeros."""
    cam = np.asarray(cam, dtype=np.float32)
    low, span = float(cam.min()), float(cam.max() - cam.min())
    if not np.isfinite(span) or span <= 1e-12:
        return np.zeros_like(cam)
    return (cam - np.float32(low)) / np.float32(span)


def to_original(cam: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """A map at model resolution resized (bilinear) onto the original rows x columns."""
    if cam.shape == (rows, columns):
        return cam
    # OpenCV (a grad-cam dependency) is ~10x faster than PIL here, with the same result.
    resized = cv2.resize(np.ascontiguousarray(cam, dtype=np.float32), (columns, rows),
                         interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0, out=resized)


def cam_peak(cam_map: np.ndarray) -> tuple[int, int] | None:
    """(x, y) of the map's maximum (the first one), or None when the map is flat."""
    if cam_map.size == 0 or float(cam_map.max() - cam_map.min()) <= 1e-6:
        return None
    y, x = np.unravel_index(int(np.argmax(cam_map)), cam_map.shape)
    return int(x), int(y)


def overlay_rgb(display: np.ndarray, cam_map: np.ndarray, opacity: float = 0.4,
                colormap: str = "jet") -> np.ndarray:
    """The gray uint8 image blended with the map through a matplotlib colour map: (H, W, 3)."""
    if display.shape != cam_map.shape:
        raise ValueError(f"image {display.shape} and map {cam_map.shape} differ in size")
    lut = (matplotlib.colormaps[colormap](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0)
    heat = lut.astype(np.float32)[np.clip(cam_map * 255.0 + 0.5, 0, 255).astype(np.uint8)]
    alpha = np.float32(min(max(opacity, 0.0), 1.0))
    gray = display.astype(np.float32)[..., None]
    return (gray * (1 - alpha) + heat * alpha + 0.5).astype(np.uint8)


class CamExplainer:
    """CAM maps for one Predictor's model, cached so switching class or method is cheap."""

    def __init__(self, predictor: Predictor, cache_size: int = CACHE_SIZE) -> None:
        self.predictor = predictor
        self.model = predictor.model
        self.cache_size = cache_size
        self._cams: OrderedDict[tuple[str, str, str, str], np.ndarray] = OrderedDict()

    def layers(self) -> list[str]:
        return list(self.model.cam_layers())

    def target(self, class_name: str | None, logits: Tensor) -> tuple[str, int, float]:
        """(class, output index, sign): a binary task's negative class is its output negated.

        No class: the positive class of a binary task, else the most probable class.
        """
        p = self.predictor
        if p.task == "binary":
            positive = p.output_names[0]
            name = class_name or positive
            if name not in p.classes:
                raise CxrError(f"unknown class {name!r}: the model's are {', '.join(p.classes)}")
            return name, 0, 1.0 if name == positive else -1.0
        names = p.output_names
        name = class_name or names[int(torch.argmax(logits))]
        if name not in names:
            raise CxrError(f"unknown class {name!r}: the model's are {', '.join(names)}")
        return name, names.index(name), 1.0

    def explain(self, radiograph: Radiograph, method: str = "cam",
                target_class: str | None = None, layer: str | None = None,
                prediction: Prediction | None = None,
                shape: tuple[int, int] | None = None) -> CamResult:
        """The map of ``method`` for ``target_class`` at ``layer`` (default: the last).

        ``shape`` (rows, columns) is the original image's size when ``radiograph`` was
        decoded at a reduced resolution; default its own size.
        """
        start = time.perf_counter()
        if method not in CAM_METHODS:
            raise CxrError(f"unknown CAM method {method!r}: one of {', '.join(CAM_METHODS)}")
        layer = layer or self.model.default_cam_layer
        modules = self.model.cam_layers()
        if layer not in modules:
            raise CxrError(f"unknown layer {layer!r} for {self.model.arch}: one of "
                           f"{', '.join(modules)}")
        if method == "cam":
            self._check_plain(layer)
        p = self.predictor
        x = p.cached_input(prediction.input_key) if prediction is not None else None
        if x is None:
            x = p.prepare(radiograph)
            key = p.input_key(radiograph, x)
        else:
            key = prediction.input_key
        maps = p.forward_maps(key, x)
        with torch.no_grad():
            logits = self.model.forward_head(maps)[0]
        name, output, sign = self.target(target_class, logits)
        cache_key = (key, method, layer, "" if method == "eigencam" else name)
        with p.lock:  # workers may explain concurrently
            small = self._cams.get(cache_key)
        cached = small is not None
        if small is None:
            if method == "cam":
                with torch.no_grad():
                    small = normalize(plain_cam(self.model, maps, output, sign).cpu().numpy())
            else:
                small = self._library(method, x, modules[layer], output, sign)
            self._remember(cache_key, small)
        rows, columns = shape or (radiograph.rows, radiograph.columns)
        full = to_original(small, rows, columns)
        return CamResult(method, layer, name, full, cam_peak(full),
                         (time.perf_counter() - start) * 1000.0, cached)

    def _check_plain(self, layer: str) -> None:
        if not self.model.cam_exact:
            raise CxrError(f"plain CAM is not exact for {self.model.arch} (a normalisation "
                           "sits between pooling and head): use gradcam")
        if layer != self.model.default_cam_layer:
            raise CxrError(f"plain CAM needs the last layer ({self.model.default_cam_layer}), "
                           f"not {layer}: use gradcam for other layers")

    def _library(self, method: str, x: Tensor, module: torch.nn.Module, output: int,
                 sign: float) -> np.ndarray:
        """One pytorch-grad-cam map at the model's input size, hooks removed on exit."""
        target = ClassifierOutputTarget(output) if sign > 0 else BinaryClassifierOutputTarget(0)
        result = None
        with self.predictor.lock:
            # The parameters are frozen: an input that requires grad makes the block's
            # activations require it, so the gradient hooks fire.
            inp = x.detach().clone().requires_grad_(method in _GRADIENT_METHODS)
            with _LIBRARY[method](model=self.model, target_layers=[module]) as engine:
                engine.batch_size = SCORECAM_BATCH
                result = engine(input_tensor=inp, targets=[target])
            self.model.zero_grad(set_to_none=True)
        if result is None:  # the library's __exit__ swallows IndexError after printing it
            raise CxrError(f"{method} failed on layer of {self.model.arch}")
        return normalize(result[0])

    def _remember(self, key: tuple[str, str, str, str], cam: np.ndarray) -> None:
        with self.predictor.lock:
            self._cams[key] = cam
            while len(self._cams) > self.cache_size:
                self._cams.popitem(last=False)
