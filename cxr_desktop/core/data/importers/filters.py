"""The row conditions users write: ``--filter 'view == "PA"'``, ``--positive-if
'finding contains "COVID-19"'``.

A condition is ``COLUMN OP VALUE``: ``==`` (or ``=``), ``!=``, ``in a, b``, ``not in a, b``,
``contains`` and ``not contains`` (a substring), and ``<``, ``<=``, ``>``, ``>=`` (numbers).
Text compares trimmed and case-insensitive; ``==``, ``!=``, ``in`` and ``not in`` also
match numbers written differently (``1`` and ``1.0``); ``""`` is the blank cell.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_desktop.core.data.importers.tables import find_column, is_missing_cell
from cxr_desktop.core.errors import DatasetError

OPERATORS = ("==", "!=", "in", "not in", "contains", "not contains", "<", "<=", ">", ">=")
_NUMERIC = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
_CONDITION = re.compile(
    r"^\s*(?P<column>.+?)\s*(?P<op>==|!=|<=|>=|<|>|=|\bnot contains\b|\bcontains\b"
    r"|\bnot in\b|\bin\b)\s*(?P<value>.*?)\s*$"
)


def parse_filter(expression: str) -> tuple[str, str, list[str]]:
    """``(column, op, values)`` of a condition (see the module docstring)."""
    match = _CONDITION.match(expression)
    if not match or not match["value"]:
        raise ValueError(
            f"cannot read condition {expression!r}: write it as column == value (or !=, in, "
            "not in with values separated by commas, contains, not contains, <, <=, >, >=)")
    column = match["column"].strip().strip("\"'")
    op = {"=": "=="}.get(match["op"], match["op"])
    raw = match["value"]
    parts = raw.split(",") if op in ("in", "not in") else [raw]
    values = [_unquote(p) for p in parts if p.strip()]
    if op in _NUMERIC and _number(values[0]) is None:
        raise ValueError(f"cannot read condition {expression!r}: {op} needs a number")
    return column, op, values


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def condition_mask(frame: pd.DataFrame, expression: str, path: Path) -> tuple[np.ndarray, str]:
    """``(rows that meet the condition, the column it reads)``; DatasetError naming ``path``
    for a condition that cannot be read or a column that is not there."""
    try:
        column, op, values = parse_filter(expression)
    except ValueError as exc:
        raise DatasetError(path, str(exc)) from None
    column = find_column(frame, column, path)
    cells = frame[column].str.strip().str.lower()
    wanted = [v.lower() for v in values]
    if op in _NUMERIC:
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(float)
        with np.errstate(invalid="ignore"):
            return _NUMERIC[op](numbers, float(values[0])) & ~np.isnan(numbers), column
    if op in ("contains", "not contains"):
        hit = cells.str.contains(wanted[0], regex=False).to_numpy(bool)
        return (hit if op == "contains" else ~hit), column
    hit = cells.isin(wanted).to_numpy(bool)
    numbers = [n for n in map(_number, wanted) if n is not None]
    if numbers:
        hit = hit | pd.to_numeric(cells, errors="coerce").isin(numbers).to_numpy(bool)
    return (hit if op in ("==", "in") else ~hit), column


def apply_filters(frame: pd.DataFrame, filters: list[str], path: Path) -> pd.DataFrame:
    """Rows that meet every condition of ``filters``."""
    for expression in filters:
        frame = frame[condition_mask(frame, expression, path)[0]]
    return frame


def filter_notes(frame: pd.DataFrame, filters: list[str], path: Path) -> list[str]:
    """One sentence per filter that left rows out, with what they held: ``filter modality
    == X-ray left out 12 of 950 rows (modality CT 12)``."""
    notes = []
    for expression in filters:
        keep, column = condition_mask(frame, expression, path)
        dropped = frame[column][~keep].str.strip()
        if len(dropped):
            counts = Counter(v or "(blank)" for v in dropped)
            shown = ", ".join(f"{v} {n}" for v, n in counts.most_common(6))
            more = ", ..." if len(counts) > 6 else ""
            notes.append(f"filter {expression} left out {len(dropped)} of {len(frame)} rows "
                         f"({column} {shown}{more})")
        frame = frame[keep]
    return notes


def no_rows_reason(frame: pd.DataFrame, filters: list[str], path: Path) -> str | None:
    """Why ``apply_filters(frame, filters)`` leaves no row, in words; None when rows are left.

    ``the table has no rows`` for a header alone; else the first filter that leaves none,
    with the values the column does have: ``no rows with View Position XX (values present:
    PA, AP)``.
    """
    if frame.empty:
        return "the table has no rows (only a header)"
    for expression in filters:
        kept = apply_filters(frame, [expression], path)
        if kept.empty:
            column, op, values = parse_filter(expression)
            column = find_column(frame, column, path)
            counts = frame[column].str.strip().value_counts()
            present = [v or "(blank)" for v in counts.index[:12]]
            more = ", ..." if len(counts) > 12 else ""
            wanted = " or ".join(v or "(blank)" for v in values)
            what = {"==": wanted, "in": wanted, "!=": f"other than {wanted}",
                    "not in": f"other than {wanted}", "contains": f"containing {wanted}",
                    "not contains": f"not containing {wanted}"}.get(op, f"{op} {wanted}")
            return f"no rows with {column} {what} (values present: {', '.join(present)}{more})"
        frame = kept
    return None if len(frame) else "no rows left after the filters"


def positive_values(frame: pd.DataFrame, expression: str, path: Path,
                    unknown: tuple[str, ...] = ()) -> np.ndarray:
    """Per row 1.0 where ``expression`` holds, 0.0 where not, NaN where the column's cell is
    blank (``nan``, ``NA``...) or one of ``unknown``: a blank label is unknown, never a
    negative."""
    hit, column = condition_mask(frame, expression, path)
    cells = frame[column]
    lowered = {u.strip().lower() for u in unknown}
    blank = np.fromiter((is_missing_cell(c) or c.strip().lower() in lowered for c in cells),
                        dtype=bool, count=len(cells))
    return np.where(blank, np.nan, hit.astype(float))
