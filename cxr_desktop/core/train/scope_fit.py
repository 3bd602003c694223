"""The out-of-scope model of a run's best checkpoint, fitted after its last epoch (or for a
finished run that has none): the engine's last step, kept apart from the training loop."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer.scope import (
    DEFAULT_METHOD,
    SCOPE_NAME,
    checkpoint_meta,
    fit_run_scope,
    fit_scope_inputs,
)
from cxr_desktop.core.runs.folder import RunFolder
from cxr_desktop.core.train.data import EventSink
from cxr_desktop.core.train.session import TrainingSession


def fit_best_scope(folder: RunFolder, spec: DatasetSpec, device: torch.device,
                   emit: EventSink, should_stop: Callable[[], bool],
                   session: TrainingSession | None = None) -> None:
    """The out-of-scope model of the best checkpoint, from what its validation pass computed
    (features, logits, stage statistics); from one float32 pass over the validation images
    when that pass ran under autocast or its statistics are gone (a best epoch from before
    a resume). A run is still done without it: the viewer then checks DICOM tags only."""
    try:
        reduced = session is not None and session.scope_reduced_precision
        if reduced:
            emit({"type": "message", "text": "the validation pass ran in reduced precision: "
                  "the out-of-scope statistics are computed again in float32, as the "
                  "viewer computes them (one pass over the validation images)"})
        if session is not None and session.scope_inputs is not None \
                and session.scope_checkpoint is not None and not reduced:
            inputs = session.scope_inputs
            if not inputs.layers:  # no stage statistics (a distributed validation pass)
                emit({"type": "message", "text": "no stage statistics of the validation "
                      "images: the image scope uses the pooled-feature distance"})
            scope = fit_scope_inputs(inputs, DEFAULT_METHOD if inputs.layers
                                     else "mahalanobis")
            scope.meta.update(checkpoint_meta(folder.best_path.name, session.scope_checkpoint))
            scope.save(folder.path / SCOPE_NAME)
        else:
            scope = fit_run_scope(folder.path, spec, device=str(device),
                                  should_stop=should_stop)
    except (CxrError, ValueError) as exc:
        emit({"type": "message", "text": f"no feature-based scope check for this run: {exc}"})
        return
    if scope is None:
        emit({"type": "message", "text": "stopped before the out-of-scope model was fitted: "
              "the viewer checks this run's images by their DICOM tags only"})
