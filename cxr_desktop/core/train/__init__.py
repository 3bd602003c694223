"""The training engine: ``fit``, ``resume`` and the LR finder, with no Qt.

The names below load on first use, so reading a :class:`TrainConfig` (the CLI parsing its
arguments) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentSettings": "config", "TrainConfig": "config",
    "RunResult": "engine", "fit": "engine", "pick_device": "engine", "resume": "engine",
    "LrFinderResult": "lr_finder", "find_lr": "lr_finder",
}
__all__ = [
    "AugmentSettings", "LrFinderResult", "RunResult", "TrainConfig", "find_lr", "fit",
    "pick_device", "resume",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
