"""Which columns of a label table hold what: ``ColumnMapping``, guessed when not given.

A mapping starts from the preset its header matches (SIIM, RSNA, VinDr-CXR, the COVID-19
collections, the NIH box file), then the columns any known name fits; every field the user
gives wins over both. ``preset="none"`` turns the presets off.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from cxr_desktop.core.data.importers.geometry import BOX_FORMATS
from cxr_desktop.core.data.importers.presets import PRESETS, detect_preset
from cxr_desktop.core.data.importers.resolver import PathResolver
from cxr_desktop.core.data.importers.tables import find_column, is_missing_cell
from cxr_desktop.core.errors import DatasetError

BINARIZE_RULES = ("nonzero",)
READER_RULES = ("any", "majority")
_GUESS = {
    "image": ("path", "image_path", "imagepath", "filepath", "file_path", "image",
              "image index", "image_name", "imagename", "filename", "file_name", "file", "img",
              "image_id", "imageid", "dicom_id", "sopinstanceuid"),
    "labels": ("label", "labels", "class", "target", "finding", "findings", "finding labels",
               "diagnosis", "category"),
    "patient": ("patient", "patientid", "patient_id", "patient id", "subject", "subject_id"),
    "folder": ("folder", "directory", "dir"),
    "split": ("split", "subset", "partition"),
}
#: Rows sampled per column when looking for the column whose values name image files.
_SAMPLE = 50


@dataclass
class ColumnMapping:
    """Which CSV columns hold what, and how to read them.

    Labels come from one of: ``positive_if`` (a condition; binary), ``labels`` with
    ``multilabel`` or a ``separator`` (class names, rows of an image merged), several
    ``labels`` columns of 1/0/-1 (multilabel), or one ``labels`` column of classes.
    ``boxes`` names four columns (``box_format`` ``xywh`` or ``xyxy``), ``mask`` a
    run-length column; ``reader`` the column telling readers apart, merged by ``readers``
    (``any`` or ``majority``). ``view`` is the view column and ``views`` the views kept
    (``""`` keeps rows with none). ``unknown_values`` are label cells that mean "not
    known" (as a blank does). ``preset`` is the preset the mapping started from.
    ``guess`` False takes the mapping exactly as given: no preset field and no column guessed
    by its name fills in what is unset (an editor that shows every field sends that).
    """

    image: str
    labels: list[str] = field(default_factory=list)
    patient: str | None = None
    folder: str | None = None
    split: str | None = None
    filters: list[str] = field(default_factory=list)
    binarize: str | None = None
    separator: str | None = None
    positive_class: str | None = None
    positive_if: str | None = None
    multilabel: bool = False
    boxes: list[str] = field(default_factory=list)
    box_format: str = "xywh"
    box_label: str | None = None
    mask: str | None = None
    reader: str | None = None
    readers: str = "any"
    view: str | None = None
    views: list[str] = field(default_factory=list)
    unknown_values: list[str] = field(default_factory=list)
    preset: str | None = None
    guess: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnMapping:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mapping field {unknown[0]!r} (known: {sorted(known)})")
        values = dict(data)
        for name in ("labels", "filters", "boxes", "views", "unknown_values"):
            value = values.get(name) or []
            values[name] = [value] if isinstance(value, str) else list(value)
        return cls(**values)

    @property
    def label_mode(self) -> str:
        """``binary`` (positive_if), ``sets`` (class names per row), ``columns`` (several
        0/1 columns) or ``single`` (one class column)."""
        if self.positive_if:
            return "binary"
        if self.multilabel or self.separator:
            return "sets"
        return "columns" if len(self.labels) > 1 else "single"

    def label_columns(self) -> list[str]:
        """The columns the labels are read from (the condition's column for positive_if)."""
        if self.positive_if:
            from cxr_desktop.core.data.importers.filters import parse_filter

            return [parse_filter(self.positive_if)[0]]
        return list(self.labels)


def _given(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` that were set (not None, not empty, not the default)."""
    defaults = {f.name: f.default for f in fields(ColumnMapping)
                if f.default is not MISSING}
    return {k: v for k, v in data.items()
            if v not in (None, "", []) and not (k in defaults and v == defaults[k])}


def squash(name: str) -> str:
    """``"File Name"``, ``"file_name"`` and ``"file-name"`` all read ``"filename"``."""
    return re.sub(r"[\s_\-.]+", "", str(name).lower())


def _guess(columns: list[str], role: str) -> str | None:
    squashed = {squash(c): c for c in columns}
    return next((squashed[squash(name)] for name in _GUESS[role]
                 if squash(name) in squashed), None)


def _column_of_files(frame: pd.DataFrame, resolver: PathResolver) -> str | None:
    """The column whose values (a sample) name image files under the root, if one does."""
    best, best_hits = None, 0
    for column in frame.columns:
        values = [v for v in frame[column].head(_SAMPLE * 4) if not is_missing_cell(v)]
        sample = values[:_SAMPLE]
        hits = sum(resolver.resolve(v)[1] is None for v in sample)
        if sample and hits * 2 >= len(sample) and hits > best_hits:
            best, best_hits = column, hits
    return best


def complete_mapping(partial: ColumnMapping | dict[str, Any] | None, frame: pd.DataFrame,
                     path: Path, resolver: PathResolver | None = None) -> ColumnMapping:
    """``partial`` on top of the preset the header matches, the rest guessed from the column
    names (or, for the image column, from which column's values name files under the root
    when a ``resolver`` is given)."""
    raw = partial.to_dict() if isinstance(partial, ColumnMapping) else dict(partial or {})
    columns = [str(c) for c in frame.columns]
    if raw.get("guess", True) is False:
        data = dict(raw)
    else:
        given = _given(raw)
        data = _preset_fields(given.pop("preset", None), columns, path)
        data.update(given)
        _guess_columns(data, columns, frame, resolver)
    if not data.get("image"):
        raise DatasetError(path, "cannot tell which column holds the image paths; "
                                 f"name it (columns: {columns})")
    if not data.get("labels") and not data.get("positive_if"):
        raise DatasetError(path, "cannot tell which column holds the labels; "
                                 f"name it (columns: {columns})")
    try:
        mapping = ColumnMapping.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, f"bad column mapping: {exc}") from None
    _check(mapping, path)
    for name in ("image", "patient", "folder", "split", "box_label", "mask", "reader", "view"):
        if getattr(mapping, name):
            setattr(mapping, name, find_column(frame, getattr(mapping, name), path))
    mapping.labels = [find_column(frame, c, path) for c in mapping.labels]
    mapping.boxes = [find_column(frame, c, path) for c in mapping.boxes]
    return mapping


def _preset_fields(name: str | None, columns: list[str], path: Path) -> dict[str, Any]:
    """The fields of preset ``name`` (default: the one the header matches; ``none``: no
    preset); DatasetError for an unknown preset or one whose columns the table lacks."""
    if name == "none":
        return {}
    preset = PRESETS.get(name) if name else detect_preset(columns)
    if name and preset is None:
        raise DatasetError(path, f"unknown preset {name!r} (known: none, "
                                 f"{', '.join(PRESETS)})")
    if preset is None:
        return {}
    if not preset.matches(columns):
        raise DatasetError(path, f"the {preset.name} preset does not fit this table: it needs "
                                 f"the columns of a {preset.title} label file (columns: "
                                 f"{columns})")
    return {**preset.mapping(columns), "preset": preset.name}


def _guess_columns(data: dict[str, Any], columns: list[str], frame: pd.DataFrame,
                   resolver: PathResolver | None) -> None:
    """Fill the unset roles of ``data`` from the column names (the image column, failing
    that, from which column's values name files under the root)."""
    for role in ("image", "patient", "folder", "split"):
        if not data.get(role) and not (role == "patient" and data.get("preset")):
            data[role] = _guess(columns, role)
    if not data.get("image") and resolver is not None and len(frame):
        data["image"] = _column_of_files(frame, resolver)
    if not data.get("labels") and not data.get("positive_if"):
        guessed = _guess(columns, "labels")
        data["labels"] = [guessed] if guessed else []


def _check(mapping: ColumnMapping, path: Path) -> None:
    rules = ((mapping.binarize in (None, *BINARIZE_RULES),
              f"binarize rule must be one of {BINARIZE_RULES}"),
             (mapping.readers in READER_RULES, f"readers rule must be one of {READER_RULES}"),
             (mapping.box_format in BOX_FORMATS, f"box format must be one of {BOX_FORMATS}"),
             (len(mapping.boxes) in (0, 4), "boxes need four columns (x, y, width, height or "
                                            "x_min, y_min, x_max, y_max)"),
             (not (mapping.views and not mapping.view), "views to keep need a view column"))
    for ok, message in rules:
        if not ok:
            raise DatasetError(path, message)
