"""The DICOM header as rows for a header panel, with patient and study identifiers masked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from cxr_desktop.core.errors import ImageLoadError, first_line
from cxr_desktop.core.io.dicom import PHI_KEYWORDS

HIDDEN = "(hidden: patient data)"
MAX_VALUE_CHARS = 120


@dataclass(frozen=True)
class HeaderRow:
    tag: str  # "(0010,0010)"
    keyword: str
    vr: str
    value: str
    phi: bool
    depth: int = 0  # nesting inside sequences


def _is_phi(keyword: str, vr: str) -> bool:
    # Person names anywhere (operators, physicians) identify people too.
    return keyword in PHI_KEYWORDS or vr == "PN"


def _rows(dataset: Dataset, show_phi: bool, depth: int) -> list[HeaderRow]:
    rows = []
    for element in dataset:
        if element.tag.group == 0x7FE0 or element.VR in ("OB", "OW", "OF", "OD", "UN"):
            value = f"<{len(element.value or b'')} bytes>" if element.VR != "SQ" else ""
        elif element.VR == "SQ":
            value = f"{len(element.value)} item(s)"
        else:
            value = str(element.value)
        phi = _is_phi(element.keyword, element.VR)
        if phi and not show_phi:
            value = HIDDEN
        if len(value) > MAX_VALUE_CHARS:
            value = value[: MAX_VALUE_CHARS - 3] + "..."
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        rows.append(HeaderRow(tag, element.keyword or element.name, element.VR, value, phi,
                              depth))
        if element.VR == "SQ":
            for item in element.value:
                rows += _rows(item, show_phi, depth + 1)
    return rows


def dicom_header(path: str | Path, show_phi: bool = False) -> list[HeaderRow]:
    """File meta and dataset elements (pixel data summarised); PHI masked unless asked."""
    try:
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise ImageLoadError(path, f"not a readable DICOM file ({first_line(exc)})") from exc
    meta = getattr(dataset, "file_meta", None)
    return (_rows(meta, show_phi, 0) if meta is not None else []) + _rows(dataset, show_phi, 0)
