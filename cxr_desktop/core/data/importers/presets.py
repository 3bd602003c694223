"""The public chest X-ray label files, recognised by their header and imported with no flag.

Each preset is a column mapping plus the sentence the report shows about what it assumed;
the user can change any field of it (CLI flags, the mapping dialog). Headers are matched
whatever their case and separators (``ImageId, EncodedPixels`` with its space included).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxr_desktop.core.data.importers.paths import is_hidden

#: The frontal views of the COVID-19 collections; ``""`` keeps rows without a view.
COVID_FRONTAL = ["PA", "AP", "AP Supine", "AP erect", ""]


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name).lower())


def _find(columns: list[str], *names: str) -> str | None:
    """The column among ``columns`` that any of ``names`` fits (case and separators aside)."""
    squashed = {_squash(c): c for c in columns}
    return next((squashed[_squash(n)] for n in names if _squash(n) in squashed), None)


def _has(columns: list[str], *names: str) -> bool:
    return all(_find(columns, n) for n in names)


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    matches: Callable[[list[str]], bool]
    mapping: Callable[[list[str]], dict[str, Any]]
    assumes: str

    def note(self) -> str:
        return f"{self.title} preset: {self.assumes}"


def _siim(columns: list[str]) -> dict[str, Any]:
    pixels = _find(columns, "EncodedPixels")
    return {"image": _find(columns, "ImageId"), "positive_if": f'{pixels} != "-1"',
            "mask": pixels, "positive_class": "pneumothorax"}


def _rsna(columns: list[str]) -> dict[str, Any]:
    patient = _find(columns, "patientId")
    return {"image": patient, "patient": patient,
            "positive_if": f"{_find(columns, 'Target')} == 1",
            "boxes": [_find(columns, n) for n in ("x", "y", "width", "height")],
            "box_format": "xywh", "positive_class": "opacity"}


def _vindr(columns: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "image": _find(columns, "image_id"), "labels": [_find(columns, "class_name")],
        "multilabel": True, "box_format": "xyxy",
        "boxes": [_find(columns, n) for n in ("x_min", "y_min", "x_max", "y_max")]}
    if _find(columns, "rad_id"):
        out.update(reader=_find(columns, "rad_id"), readers="any")
    return out


def _nih_boxes(columns: list[str]) -> dict[str, Any]:
    first = next(i for i, c in enumerate(columns) if _squash(c).startswith("bbox"))
    return {"image": _find(columns, "Image Index"), "labels": [_find(columns, "Finding Label")],
            "multilabel": True, "boxes": columns[first:first + 4], "box_format": "xywh"}


def _covid_image(columns: list[str]) -> str | None:
    return _find(columns, "filename", "imagename", "image_name", "image")


def _covid(columns: list[str]) -> dict[str, Any]:
    image = _covid_image(columns) or _find(columns, "patientid")
    out: dict[str, Any] = {
        "image": image, "positive_if": f'{_find(columns, "finding")} contains "COVID-19"',
        "positive_class": "COVID-19", "unknown_values": ["todo"]}
    if image != _find(columns, "patientid"):
        out["patient"] = _find(columns, "patientid")
        if _find(columns, "folder") and _find(columns, "filename") == image:
            out["folder"] = _find(columns, "folder")
    if _find(columns, "modality"):
        out["filters"] = [f'{_find(columns, "modality")} in X-ray, ""']
    if _find(columns, "view"):
        out.update(view=_find(columns, "view"), views=list(COVID_FRONTAL))
    return out


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("siim", "SIIM-ACR pneumothorax",
           lambda c: _has(c, "ImageId", "EncodedPixels"), _siim,
           "binary pneumothorax; a row whose EncodedPixels is not -1 is a pneumothorax and "
           "its run-length mask (an image may have several rows, all masks kept)"),
    Preset("rsna", "RSNA pneumonia detection",
           lambda c: _has(c, "patientId", "Target", "x", "y", "width", "height"), _rsna,
           "binary lung opacity (Target 1); one row per box (x, y, width, height), a blank "
           "box for a negative; the image is <patientId> with or without .dcm; patient = "
           "patientId"),
    Preset("vindr", "VinDr-CXR",
           lambda c: _has(c, "image_id", "class_name", "x_min", "y_min", "x_max", "y_max"),
           _vindr,
           "multi-label findings from class_name, one row per finding (and reader), boxes "
           "x_min, y_min, x_max, y_max; 'No finding' marks an image with none"),
    Preset("nih-boxes", "NIH ChestX-ray14 box file",
           lambda c: _has(c, "Image Index", "Finding Label")
           and any(_squash(x).startswith("bbox") for x in c), _nih_boxes,
           "multi-label findings of the boxed images only (Finding Label), one row per box "
           "(x, y, w, h in image pixels); for every image use Data_Entry_2017.csv with this "
           "file beside it"),
    Preset("covid", "COVID-19 image collection",
           lambda c: _has(c, "patientid", "offset", "finding"), _covid,
           "binary COVID-19 (finding contains COVID-19) against every other finding; X-ray "
           "rows only (CT volumes left out); frontal views PA, AP, AP Supine, AP erect and "
           "rows with no view (--view PA keeps PA only); a blank finding (or 'todo') is "
           "unknown and left out; image ids without an extension found by name"),
)}


def detect_preset(columns: list[str]) -> Preset | None:
    """The preset whose columns ``columns`` has, if any (the first in ``PRESETS`` order)."""
    return next((p for p in PRESETS.values() if p.matches(columns)), None)


def preset_table(folder: Path, read_header: Callable[[Path], list[str]]) -> Path | None:
    """The one label table directly in ``folder`` that a preset recognises, if exactly one
    does; sample submissions (which copy the header) do not count."""
    found = []
    for table in sorted(folder.glob("*.csv")):
        if is_hidden(table.name) or "submission" in table.name.lower():
            continue
        try:
            columns = read_header(table)
        except Exception:  # noqa: BLE001 - an unreadable CSV is not the label table
            continue
        if detect_preset(columns) is not None:
            found.append(table)
    return found[0] if len(found) == 1 else None
