"""Any other CSV, read through a ``ColumnMapping`` (guessed from the column names if not given).

One label column of text makes a binary task (two values) or a multiclass one; one column
of 0/1 (or of counts with ``binarize="nonzero"``) a binary task named after the column;
several label columns, or one column of labels joined by ``separator``, a multilabel task.
Label cells in several columns read ``1``/``0``/``-1``/blank (also yes/no, true/false).
A blank label cell, or one reading ``nan``, ``NA``, ``null``, is a missing label: the row is
left out (single label) or the class blank (label columns). An image listed twice with
different labels is left out; a split value other than train/val/test is reported and the
image given a split at random.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr_desktop.core.data.importers.paths import PathResolver, path_problem
from cxr_desktop.core.data.importers.tables import (
    MISSING_CELLS,
    apply_filters,
    drop_repeated,
    find_column,
    is_missing_cell,
    is_negative_name,
    no_rows_reason,
    read_table,
    single_label_classes,
    split_of_name,
)
from cxr_desktop.core.data.spec import UNCERTAIN, DatasetSpec, ImageItem, Problem
from cxr_desktop.core.errors import DatasetError

BINARIZE_RULES = ("nonzero",)
_WORDS = {"true": 1.0, "yes": 1.0, "y": 1.0, "positive": 1.0, "false": 0.0, "no": 0.0,
          "n": 0.0, "negative": 0.0, "uncertain": UNCERTAIN}
_GUESS = {
    "image": ("path", "image_path", "imagepath", "filepath", "file_path", "image",
              "image index", "image_name", "imagename", "filename", "file_name", "file", "img"),
    "labels": ("label", "labels", "class", "target", "finding", "findings", "finding labels",
               "diagnosis", "category"),
    "patient": ("patient", "patientid", "patient_id", "patient id", "subject", "subject_id"),
    "folder": ("folder", "directory", "dir"),
    "split": ("split", "subset", "partition"),
}


@dataclass
class ColumnMapping:
    """Which CSV columns hold what; ``filters`` such as ``view == "PA"`` drop rows first."""

    image: str
    labels: list[str]
    patient: str | None = None
    folder: str | None = None
    split: str | None = None
    filters: list[str] = field(default_factory=list)
    binarize: str | None = None
    separator: str | None = None
    positive_class: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnMapping:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mapping field {unknown[0]!r} (known: {sorted(known)})")
        labels = data.get("labels") or []
        return cls(**{**data, "labels": [labels] if isinstance(labels, str) else list(labels)})


def _squash(name: str) -> str:
    """``"File Name"``, ``"file_name"`` and ``"file-name"`` all read ``"filename"``."""
    return re.sub(r"[\s_\-.]+", "", str(name).lower())


def _guess(frame: pd.DataFrame, role: str) -> str | None:
    squashed = {_squash(c): c for c in frame.columns}
    return next((squashed[_squash(name)] for name in _GUESS[role]
                 if _squash(name) in squashed), None)


def complete_mapping(partial: ColumnMapping | dict[str, Any] | None, frame: pd.DataFrame,
                     path: Path) -> ColumnMapping:
    """``partial`` with the image, label, patient, folder and split columns guessed if unset."""
    data = partial.to_dict() if isinstance(partial, ColumnMapping) else dict(partial or {})
    for role in ("image", "patient", "folder", "split"):
        if not data.get(role):
            data[role] = _guess(frame, role)
    if not data.get("labels"):
        guessed = _guess(frame, "labels")
        data["labels"] = [guessed] if guessed else []
    if not data["image"]:
        raise DatasetError(path, "cannot tell which column holds the image paths; "
                                 f"name it (columns: {list(frame.columns)})")
    if not data["labels"]:
        raise DatasetError(path, "cannot tell which column holds the labels; "
                                 f"name it (columns: {list(frame.columns)})")
    try:
        mapping = ColumnMapping.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise DatasetError(path, f"bad column mapping: {exc}") from None
    if mapping.binarize not in (None, *BINARIZE_RULES):
        raise DatasetError(path, f"binarize rule must be one of {BINARIZE_RULES}")
    for name in ("image", "patient", "folder", "split"):
        if getattr(mapping, name):
            setattr(mapping, name, find_column(frame, getattr(mapping, name), path))
    mapping.labels = [find_column(frame, c, path) for c in mapping.labels]
    return mapping


def _label_values(cells: pd.Series, binarize: str | None, column: str, path: Path) -> np.ndarray:
    """Floats 1/0/-1 per cell, NaN for blank; DatasetError naming the first bad cell."""
    text = cells.str.strip().str.lower()
    text = text.where(~text.isin(MISSING_CELLS), "")
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(float)
    words = text.map(_WORDS).to_numpy(float)
    values = np.where(np.isnan(numbers), words, numbers)
    if binarize == "nonzero":
        values = np.where(np.isnan(values), np.nan, (values != 0).astype(float))
    bad = ~np.isnan(values) & ~np.isin(values, (1.0, 0.0, UNCERTAIN))
    bad |= np.isnan(values) & (text != "").to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DatasetError(path, f"line {cells.index[row] + 2}: {column} = {cells.iloc[row]!r} "
                                 "is not 1, 0, -1 or blank (binarize 'nonzero' for counts)")
    return values


def _single_labels(cells: pd.Series, mapping: ColumnMapping, path: Path) -> list[str]:
    """Class names of one label column ('' for blank or ``nan``, ``NA``, ``null``...).

    A 0/1 column (or counts made binary) names its classes ``no_<column>`` and ``<column>``
    and sets ``mapping.positive_class`` to the column when the user did not choose one.
    """
    column = mapping.labels[0]
    text = cells.str.strip()
    text = text.where(~text.str.lower().isin(MISSING_CELLS), "")
    numbers = pd.to_numeric(text, errors="coerce")
    numeric = bool(((text == "") | numbers.notna()).all())
    if mapping.binarize and not numeric:
        raise DatasetError(path, f"binarize needs numbers in column {column!r}")
    if numeric and (mapping.binarize or set(numbers.dropna()) <= {0.0, 1.0}):
        mapping.positive_class = mapping.positive_class or column
        return [("" if np.isnan(v) else column if v != 0 else f"no_{column}")
                for v in numbers.to_numpy(float)]
    if numeric:
        return ["" if np.isnan(v) else f"{v:g}" for v in numbers.to_numpy(float)]
    return text.tolist()


def import_csv(path: Path, *, mapping: ColumnMapping | dict[str, Any] | None = None,
               root: str | None = None) -> DatasetSpec:
    """A dataset from any CSV; image paths resolve under ``root`` (default: the CSV's folder)."""
    base = Path(root).resolve() if root else path.resolve().parent
    if not base.is_dir():
        raise DatasetError(base, "dataset folder not found")
    whole = read_table(path)
    mapping = complete_mapping(mapping, whole, path)
    frame = apply_filters(whole, mapping.filters, path)
    if frame.empty:
        raise DatasetError(path, no_rows_reason(whole, mapping.filters, path) or "no rows")
    multilabel = len(mapping.labels) > 1 or bool(mapping.separator)
    problems: list[Problem] = []
    if multilabel and mapping.separator:
        per_row: list[Any] = []
        for cell in frame[mapping.labels[0]]:
            tokens = [t.strip() for t in cell.split(mapping.separator)
                      if t.strip() and not is_missing_cell(t)]
            per_row.append({t: 1.0 for t in tokens if not is_negative_name(t)} if tokens
                           else "")
        classes = sorted({t for row in per_row for t in row})
    elif multilabel:
        table = np.column_stack([_label_values(frame[c], mapping.binarize, c, path)
                                 for c in mapping.labels])
        per_row = [{c: float(v) for c, v in zip(mapping.labels, row, strict=True)
                    if not np.isnan(v)} for row in table]
        classes = list(mapping.labels)
    else:
        per_row = _single_labels(frame[mapping.labels[0]], mapping, path)
        classes = []
    resolver = PathResolver(base)
    folders = frame[mapping.folder] if mapping.folder else [""] * len(frame)
    patients = frame[mapping.patient] if mapping.patient else [""] * len(frame)
    splits = frame[mapping.split] if mapping.split else [""] * len(frame)
    rows: list[tuple[ImageItem, str]] = []
    unknown_splits: dict[str, list[str]] = {}
    unlabelled = 0
    for row, name, folder, patient, split, labels in zip(
        frame.index, frame[mapping.image], folders, patients, splits, per_row, strict=True
    ):
        where = f"{path.name} line {row + 2}"
        if labels == "":
            unlabelled += 1
            problems.append(Problem("unlabelled", [name.strip()], f"{where}: no label"))
            continue
        raw = f"{folder.strip().rstrip('/')}/{name.strip()}" if folder.strip() else name
        rel, problem = resolver.resolve(raw)
        if problem:
            problems.append(path_problem(problem, rel, where))
            continue
        given = split_of_name(split)
        if not given and not is_missing_cell(split):
            unknown_splits.setdefault(split.strip(), []).append(rel)
        rows.append((ImageItem(rel, given, patient.strip() or None, labels), where))
    for value, paths in unknown_splits.items():
        problems.append(Problem("unknown_split", paths,
                                f"split {value!r} in column {mapping.split!r} ({len(paths)} "
                                f"row{'s' if len(paths) > 1 else ''}) is not train, val or "
                                "test (nor training, valid, validation, dev, testing); these "
                                "images were given a split at random"))
    if not rows:
        if unlabelled == len(frame):
            labels_text = ", ".join(repr(c) for c in mapping.labels)
            raise DatasetError(path, f"no row has a label (label column {labels_text} is "
                                     "empty in every row)")
        raise DatasetError(path, "no image of this table was found under "
                                 f"{base} (see the image column {mapping.image!r})")
    items, repeated = drop_repeated(rows)
    problems += repeated
    if multilabel:
        classes = [c for c in classes if any(c in item.labels for item in items)] \
            if mapping.separator else classes
        if not classes:
            raise DatasetError(path, "no positive label in any row")
        task, positive = "multilabel", None
    else:
        task, classes, positive = single_label_classes({it.labels for it in items},
                                                       mapping.positive_class, path)
    return DatasetSpec(root=base, task=task, classes=classes, positive_class=positive,
                       items=items, filters=list(mapping.filters),
                       problems=resolver.index.problems + problems,
                       source={"mapping": mapping.to_dict()})
