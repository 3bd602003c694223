"""Inference: a frozen model that predicts on one radiograph, its CAM maps and its scope.

``Predictor.load(MODEL)`` takes a run folder, a checkpoint or a bare weights file;
``Predictor.predict(radiograph)`` gives a :class:`Prediction` (probabilities, in-scope flag);
``CamExplainer(predictor).explain(radiograph, method)`` gives the map on the original image.
"""

from cxr_desktop.core.infer.cam import CAM_METHODS, CamExplainer, CamResult, overlay_rgb
from cxr_desktop.core.infer.predictor import Prediction, Predictor
from cxr_desktop.core.infer.scope import ScopeCheck, ScopeModel, fit_run_scope, fit_scope

__all__ = ["CAM_METHODS", "CamExplainer", "CamResult", "Prediction", "Predictor", "ScopeCheck",
           "ScopeModel", "fit_run_scope", "fit_scope", "overlay_rgb"]
