"""CheXpert: ``train.csv`` and ``valid.csv`` with 14 observations per image.

Values are ``1.0`` positive, ``0.0`` negative, ``-1.0`` uncertain, blank not mentioned
(any other cell is reported and masked); the spec keeps them as given and its policies
decide the targets (uncertain: ``mask``, ``positive`` or ``negative``; blank: ``negative``
or ``mask``). Paths in the CSV start with ``CheXpert-v1.0-small/``; they are resolved from
the folder the CSV is in. The patient is the ``patientNNNNN`` part of the path.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_desktop.core.data.importers.filters import apply_filters, no_rows_reason
from cxr_desktop.core.data.importers.nih import view_filters
from cxr_desktop.core.data.importers.resolver import FileIndex, PathResolver
from cxr_desktop.core.data.importers.tables import (
    drop_repeated,
    read_header,
    read_table,
    source_line,
)
from cxr_desktop.core.data.spec import (
    BLANK_POLICIES,
    MISSING,
    UNCERTAIN_POLICIES,
    DatasetSpec,
    ImageItem,
    Problem,
)
from cxr_desktop.core.errors import DatasetError

PATH = "Path"
META_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
OBSERVATIONS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
                "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
                "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
                "Support Devices")
TABLES = {"train.csv": "train", "valid.csv": "val", "test.csv": "test"}
_PATIENT = re.compile(r"(patient\d+)")
_LEGAL = r"[+-]?\d+(?:\.\d*)?"
BLANK = 9.0  # a blank cell while reading (never stored)


def is_chexpert_header(header: list[str]) -> bool:
    return PATH in header and sum(c in header for c in OBSERVATIONS) >= 2


def chexpert_tables(folder: Path) -> list[Path]:
    return [folder / n for n in TABLES
            if (folder / n).is_file() and is_chexpert_header(read_header(folder / n))]


def _observations(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META_COLUMNS and not c.startswith("Unnamed")]


def _values(cells: pd.Series) -> np.ndarray:
    """Floats of one observation column: 1, 0, -1; ``BLANK`` for a blank cell; NaN for
    anything else (``2``, ``yes``, ``nan``), which CheXpert never writes."""
    text = cells.str.strip()
    legal = text.str.fullmatch(_LEGAL).to_numpy(bool)
    numbers = pd.to_numeric(text.where(legal, ""), errors="coerce").to_numpy(float)
    values = np.where(legal, numbers, np.nan)
    values[(text == "").to_numpy(bool)] = BLANK
    values[legal & ~np.isin(values, (1.0, 0.0, -1.0))] = np.nan
    return values


def import_chexpert(
    path: Path,
    *,
    uncertain: str = "mask",
    blank: str = "negative",
    view: str | list[str] | None = None,
) -> DatasetSpec:
    """CheXpert from its folder (``train.csv``, ``valid.csv``) or one of its CSVs.

    ``view`` keeps rows whose ``AP/PA`` is one of the given (``PA``, ``AP``, ``LL``...).
    A cell other than 1, 0, -1 or blank is a ``bad_label`` problem and is masked (the
    image is kept for its other observations), whatever the blank policy.
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise DatasetError(path, f"uncertain policy must be one of {UNCERTAIN_POLICIES}")
    if blank not in BLANK_POLICIES:
        raise DatasetError(path, f"blank policy must be one of {BLANK_POLICIES}")
    tables = chexpert_tables(path) if path.is_dir() else [path]
    if not tables:
        raise DatasetError(path, "no CheXpert train.csv or valid.csv in this folder")
    root = tables[0].resolve().parent
    index = FileIndex(root)
    filters = view_filters(view, "AP/PA")
    rows: list[tuple[ImageItem, str]] = []
    problems: list[Problem] = []
    classes: list[str] | None = None
    empty_reasons: list[str | None] = []
    for table in tables:
        whole = read_table(table, columns=[PATH])
        frame = apply_filters(whole, filters, table)
        empty_reasons.append(no_rows_reason(whole, filters, table))
        observed = _observations(frame)
        if classes is None:
            classes = observed
        elif observed != classes:
            raise DatasetError(table, f"observations differ from {tables[0].name}'s")
        values = np.column_stack([_values(frame[c]) for c in observed]) if observed \
            else np.zeros((len(frame), 0))
        split = TABLES.get(table.name, "")
        resolver = PathResolver(root, index)
        views = frame["AP/PA"] if "AP/PA" in frame.columns else [""] * len(frame)
        lateral = frame["Frontal/Lateral"] if "Frontal/Lateral" in frame.columns \
            else [""] * len(frame)
        for row, raw, position, side, row_values in zip(frame.index, frame[PATH], views,
                                                        lateral, values, strict=True):
            where = f"{table.name} line {source_line(frame, row)}"
            rel, problem = resolver.resolve(raw)
            if problem:
                problems.append(resolver.problem(problem, rel, where))
                continue
            labels: dict[str, float] = {}
            bad: list[str] = []
            for name, value in zip(observed, row_values, strict=True):
                if np.isnan(value):
                    bad.append(name)
                    labels[name] = MISSING
                elif value != BLANK:
                    labels[name] = float(value)
            if bad:
                cells = ", ".join(f"{name} = {frame.at[row, name].strip()!r}" for name in bad)
                problems.append(Problem("bad_label", [rel],
                                        f"{where}: {cells} {'are' if len(bad) > 1 else 'is'} "
                                        "not 1, 0, -1 or blank; masked (neither positive nor "
                                        "negative)"))
            match = _PATIENT.search(raw)
            meta = {k: v.strip() for k, v in (("view", position), ("frontal_lateral", side))
                    if v.strip()}
            rows.append((ImageItem(rel, split, match.group(1) if match else None, labels,
                                   meta=meta), where))
    if not rows:
        reasons = [r for r in empty_reasons if r is not None]
        if len(reasons) == len(tables):
            raise DatasetError(tables[0], reasons[0])
        raise DatasetError(tables[0], "no image of this table was found under its folder")
    if not classes:
        raise DatasetError(tables[0], "no observation columns")
    items, repeated = drop_repeated(rows)
    return DatasetSpec(root=root, task="multilabel", classes=classes, positive_class=None,
                       items=items, uncertain_policy=uncertain, blank_policy=blank,
                       filters=filters, problems=index.problems + problems + repeated,
                       source={"tables": [t.name for t in tables]})
