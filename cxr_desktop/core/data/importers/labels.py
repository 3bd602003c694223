"""The label of each row of a table, read as its ``ColumnMapping`` says.

Per row, by ``mapping.label_mode``: ``binary`` 1.0 / 0.0 from the ``positive_if``
condition; ``sets`` the class names a row marks (a frozenset; empty for "No finding");
``columns`` ``{class: 1/0/-1}`` over several label columns; ``single`` a class name. A blank
cell (``nan``, ``NA``, ``null``...) or one of ``mapping.unknown_values`` is unknown: NaN,
None or ``""``, never a negative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr_desktop.core.data.importers.filters import positive_values
from cxr_desktop.core.data.importers.mapping import ColumnMapping
from cxr_desktop.core.data.importers.tables import (
    MISSING_CELLS,
    is_missing_cell,
    is_negative_name,
    source_line,
)
from cxr_desktop.core.data.spec import UNCERTAIN
from cxr_desktop.core.errors import DatasetError

_WORDS = {"true": 1.0, "yes": 1.0, "y": 1.0, "positive": 1.0, "false": 0.0, "no": 0.0,
          "n": 0.0, "negative": 0.0, "uncertain": UNCERTAIN}


def label_values(cells: pd.Series, binarize: str | None, column: str, path: Path) -> np.ndarray:
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
        line = source_line(cells, cells.index[row])
        raise DatasetError(path, f"line {line}: {column} = {cells.iloc[row]!r} "
                                 "is not 1, 0, -1 or blank (binarize 'nonzero' for counts, "
                                 "or a condition with --positive-if)")
    return values


def single_labels(cells: pd.Series, mapping: ColumnMapping, path: Path) -> list[str]:
    """Class names of one label column ('' for blank or ``nan``, ``NA``, ``null``...).

    A 0/1 column (or counts made binary) names its classes ``no_<column>`` and ``<column>``
    and sets ``mapping.positive_class`` to the column when the user did not choose one.
    """
    column = mapping.labels[0]
    unknown = {u.strip().lower() for u in mapping.unknown_values}
    text = cells.str.strip()
    lowered = text.str.lower()
    text = text.where(~(lowered.isin(MISSING_CELLS) | lowered.isin(unknown)), "")
    numbers = pd.to_numeric(text, errors="coerce")
    numeric = bool(((text == "") | numbers.notna()).all())
    if mapping.binarize and not numeric:
        raise DatasetError(path, f"binarize needs numbers in column {column!r} (for text, "
                                 "use a condition: --positive-if)")
    if numeric and (mapping.binarize or set(numbers.dropna()) <= {0.0, 1.0}):
        mapping.positive_class = mapping.positive_class or column
        return [("" if np.isnan(v) else column if v != 0 else f"no_{column}")
                for v in numbers.to_numpy(float)]
    if numeric:
        return ["" if np.isnan(v) else f"{v:g}" for v in numbers.to_numpy(float)]
    return text.tolist()


def class_sets(cells: pd.Series, mapping: ColumnMapping) -> list[frozenset[str] | None]:
    """The classes each row marks (split on ``separator`` when given); names that read as
    "nothing found" (``No finding``) mark none; None for a blank (unknown) cell."""
    unknown = {u.strip().lower() for u in mapping.unknown_values}
    out: list[frozenset[str] | None] = []
    for cell in cells:
        parts = cell.split(mapping.separator) if mapping.separator else [cell]
        tokens = [t.strip() for t in parts
                  if not is_missing_cell(t) and t.strip().lower() not in unknown]
        out.append(frozenset(t for t in tokens if not is_negative_name(t)) if tokens else None)
    return out


def row_labels(frame: pd.DataFrame, mapping: ColumnMapping, path: Path) -> list[Any]:
    """One label per row of ``frame`` as the module docstring says."""
    mode = mapping.label_mode
    if mode == "binary":
        assert mapping.positive_if is not None
        return list(positive_values(frame, mapping.positive_if, path,
                                    tuple(mapping.unknown_values)))
    if mode == "sets":
        return class_sets(frame[mapping.labels[0]], mapping)
    if mode == "columns":
        table = np.column_stack([label_values(frame[c], mapping.binarize, c, path)
                                 for c in mapping.labels])
        return [{c: float(v) for c, v in zip(mapping.labels, row, strict=True)
                 if not np.isnan(v)} for row in table]
    return single_labels(frame[mapping.labels[0]], mapping, path)


def is_unknown(label: Any) -> bool:
    """True for a row whose label is not known (blank)."""
    if label is None or (isinstance(label, str) and label == ""):
        return True
    return isinstance(label, float) and np.isnan(label)
