"""Datasets: import label files of many layouts, split them, and check them.

``open_dataset(path)`` reads a folder, a CSV or a saved spec into a ``DatasetSpec`` without
opening a single image; ``run_checks(spec)`` reads the images (in parallel) and reports
what is wrong with them.

The names below load on first use, so parsing arguments (the CLI) imports neither
scikit-learn nor the image readers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckReport": "checks", "check_dataset": "checks", "run_checks": "checks",
    "FORMATS": "importers", "ColumnMapping": "importers", "detect_format": "importers",
    "open_dataset": "opener", "reopen": "opener",
    "SPLITS": "spec", "TASKS": "spec", "DatasetSpec": "spec", "ImageItem": "spec",
    "Problem": "spec",
    "assign_splits": "splits",
}
__all__ = [
    "CheckReport", "ColumnMapping", "DatasetSpec", "FORMATS", "ImageItem", "Problem", "SPLITS",
    "TASKS", "assign_splits", "check_dataset", "detect_format", "open_dataset", "reopen",
    "run_checks",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
