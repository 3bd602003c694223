"""The DICOM header as rows for a header panel, with patient and study identifiers masked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from cxr_desktop.core.errors import ImageLoadError, first_line
from cxr_desktop.core.io.dicom import PHI_KEYWORDS
from cxr_desktop.core.io.warnings_capture import capture_warnings

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
    for tag in sorted(dataset.keys()):  # the order of iterating the dataset
        try:
            element = dataset[tag]
        except Exception:  # pydicom raises several types here
            rows.append(_unreadable_row(dataset, tag, show_phi, depth))
            continue
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
        rows.append(HeaderRow(_tag_text(element.tag), element.keyword or element.name,
                              element.VR, value, phi, depth))
        if element.VR == "SQ":
            for item in element.value:
                rows += _rows(item, show_phi, depth + 1)
    return rows


def _tag_text(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def _unreadable_row(dataset: Dataset, tag: BaseTag, show_phi: bool, depth: int) -> HeaderRow:
    """pydicom converts a value when first asked, and one of the wrong length (an odd number
    of bytes in a US) fails then: that element is listed by its size, the rest still shown."""
    raw = dataset.get_item(tag)
    keyword = keyword_for_tag(tag) or "Unknown"
    size = len(getattr(raw, "value", None) or b"")
    phi = _is_phi(keyword, str(getattr(raw, "VR", "")))
    return HeaderRow(_tag_text(tag), keyword, str(getattr(raw, "VR", None) or "UN"),
                     HIDDEN if phi and not show_phi else f"<unreadable: {size} bytes>", phi,
                     depth)


def dicom_header(path: str | Path, show_phi: bool = False) -> list[HeaderRow]:
    """File meta and dataset elements (pixel data summarised); PHI masked unless asked."""
    # pydicom's warnings about the file are not printed: load_image reports them as notes.
    with capture_warnings():
        try:
            dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types on corrupt input
            raise ImageLoadError(path, f"not a readable DICOM file ({first_line(exc)})") \
                from exc
        meta = getattr(dataset, "file_meta", None)
        return ((_rows(meta, show_phi, 0) if meta is not None else [])
                + _rows(dataset, show_phi, 0))
