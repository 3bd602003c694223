"""Datasets: import label files of many layouts, split them, and check them.

``open_dataset(path)`` reads a folder, a CSV or a saved spec into a ``DatasetSpec`` without
opening a single image; ``run_checks(spec)`` reads the images (in parallel) and reports
what is wrong with them.
"""

from cxr_desktop.core.data.checks import CheckReport, check_dataset, run_checks
from cxr_desktop.core.data.importers import FORMATS, ColumnMapping, detect_format
from cxr_desktop.core.data.opener import open_dataset, reopen
from cxr_desktop.core.data.spec import SPLITS, TASKS, DatasetSpec, ImageItem, Problem
from cxr_desktop.core.data.splits import assign_splits

__all__ = [
    "FORMATS",
    "SPLITS",
    "TASKS",
    "CheckReport",
    "ColumnMapping",
    "DatasetSpec",
    "ImageItem",
    "Problem",
    "assign_splits",
    "check_dataset",
    "detect_format",
    "open_dataset",
    "reopen",
    "run_checks",
]
