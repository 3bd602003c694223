"""Checkpoint files: a dict of state dicts and plain values, saved atomically.

A checkpoint holds ``model``, ``optimizer``, ``scheduler`` and ``scaler`` state dicts, the
training position (``epoch`` finished, ``pos`` samples into the next one), RNG states, the
config, and ``metadata``: a JSON-able dict (architecture, classes, task, input size,
intensity chain, threshold, dataset fingerprint, the DICOM modalities / body parts / views
seen in training) that inference reads to rebuild the model and check scope. Files load
with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cxr_desktop.core.atomic import atomic_write
from cxr_desktop.core.errors import FileError
from cxr_desktop.core.models.state_dicts import LOAD_ERRORS, load_failure, unsafe_object

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """``torch.save`` into a temporary file beside ``path``, then ``os.replace``."""
    payload = {"format": CHECKPOINT_FORMAT, **checkpoint}
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by ``save_checkpoint``; FileError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except LOAD_ERRORS as exc:
        if unsafe_object(exc):
            raise FileError(path, load_failure(exc)) from None
        raise FileError(path, f"not a readable checkpoint ({load_failure(exc)})") from exc
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise FileError(path, "not a cxr-desktop checkpoint (no model weights)")
    return checkpoint
