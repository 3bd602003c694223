"""Inference: a frozen model that predicts on one radiograph, its CAM maps and its scope.

``Predictor.load(MODEL)`` takes a run folder, a checkpoint or a bare weights file;
``Predictor.predict(radiograph)`` gives a :class:`Prediction` (probabilities, in-scope flag);
``CamExplainer(predictor).explain(radiograph, method)`` gives the map on the original image.

The names below load on first use: the predictor and CAM import torch and grad-cam.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CAM_METHODS": "methods",
    "CamExplainer": "cam", "CamResult": "cam", "overlay_rgb": "cam",
    "Prediction": "predictor", "Predictor": "predictor",
    "ScopeCheck": "scope", "ScopeModel": "scope", "fit_run_scope": "scope", "fit_scope": "scope",
}
__all__ = [
    "CAM_METHODS", "CamExplainer", "CamResult", "Prediction", "Predictor", "ScopeCheck",
    "ScopeModel", "fit_run_scope", "fit_scope", "overlay_rgb",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
