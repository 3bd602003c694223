"""DICOM written by the app, over pydicom and highdicom; no Qt.

``results``: a model's results and saved annotations as DICOM objects in the input's study
(SR, Secondary Capture, presentation state). ``deidentify.deidentify``: a de-identified
copy of a file, folder or file-set (PS3.15 Basic Application Level Confidentiality
Profile). The names below load on first use: the builders import highdicom (about half a
second).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NoStudyError": "results", "RESEARCH_NOTE": "results", "ResultWriter": "results",
    "RunInfo": "results", "check_out_dir": "results", "write_annotation": "results",
    "write_results": "results",
    "DeidOptions": "deidentify", "DeidReport": "deidentify",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
