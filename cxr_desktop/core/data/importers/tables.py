"""Reading label tables (CSV) and the row filters users write, such as ``view == "PA"``."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from cxr_desktop.core.data.importers.paths import SPLIT_NAMES
from cxr_desktop.core.errors import DatasetError, first_line

#: Class names that mean "nothing found"; the other class of a binary task is the positive.
NEGATIVE_NAMES = frozenset({
    "normal", "negative", "no", "none", "no finding", "no_finding", "nofinding", "healthy",
    "0", "false", "no_object", "no object", "absent", "benign",
})
_FILTER = re.compile(
    r"^\s*(?P<column>.+?)\s*(?P<op>==|!=|=|\bnot in\b|\bin\b)\s*(?P<value>.*?)\s*$"
)


def is_negative_name(name: str) -> bool:
    """True for names such as ``NORMAL``, ``No Finding``, ``no_object``, ``non-covid``."""
    key = name.strip().lower().replace("-", " ").replace("_", " ")
    return key in NEGATIVE_NAMES or key.startswith(("no ", "non ", "not "))


def _read_csv(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """``pd.read_csv`` of a label table (its first ``nrows`` rows), strings only, headers
    stripped; DatasetError if unreadable. ``.csv`` files are split on commas, other tables on
    the separator sniffed from the file."""
    is_csv = path.suffix.lower() == ".csv"
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[],
                            skipinitialspace=True, encoding="utf-8-sig",
                            sep="," if is_csv else None, engine="c" if is_csv else "python",
                            nrows=nrows)
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(path, "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DatasetError(path, f"not a readable CSV table: {first_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A CSV as strings (blank cells are ``""``), headers stripped; DatasetError if unreadable."""
    frame = _read_csv(path)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DatasetError(path, f"no column {missing[0]!r} (columns: {list(frame.columns)})")
    return frame


def read_header(path: Path) -> list[str]:
    """The column names of a CSV, read as ``read_table`` reads them, without its rows."""
    return list(_read_csv(path, nrows=0).columns)


def find_column(frame: pd.DataFrame, name: str, path: Path) -> str:
    """The column called ``name`` (exactly, else ignoring case); DatasetError if none."""
    if name in frame.columns:
        return name
    for column in frame.columns:
        if column.lower() == name.strip().lower():
            return column
    raise DatasetError(path, f"no column {name!r} (columns: {list(frame.columns)})")


def parse_filter(expression: str) -> tuple[str, str, list[str]]:
    """``(column, op, values)`` of ``column == value``, ``!=``, ``in a, b``, ``not in a, b``."""
    match = _FILTER.match(expression)
    if not match or not match["value"]:
        raise ValueError(
            f"cannot read filter {expression!r}: write it as column == value "
            "(or !=, in, not in with values separated by commas)"
        )
    column = match["column"].strip().strip("\"'")
    op = {"=": "==", "in": "in", "not in": "not in"}.get(match["op"], match["op"])
    raw = match["value"]
    parts = raw.split(",") if op in ("in", "not in") else [raw]
    values = [p.strip().strip("\"'").strip() for p in parts if p.strip()]
    return column, op, values


def apply_filters(frame: pd.DataFrame, filters: list[str], path: Path) -> pd.DataFrame:
    """Rows that pass every filter; values compare as trimmed, case-insensitive text."""
    for expression in filters:
        try:
            column, op, values = parse_filter(expression)
        except ValueError as exc:
            raise DatasetError(path, str(exc)) from None
        column = find_column(frame, column, path)
        cells = frame[column].str.strip().str.lower()
        hit = cells.isin([v.lower() for v in values])
        frame = frame[hit if op in ("==", "in") else ~hit]
    return frame


def split_of_name(name: str) -> str:
    """``train``/``val``/``test`` for a split-like name (``dev``, ``valid``...), else ``""``."""
    return SPLIT_NAMES.get(name.strip().lower(), "")


def single_label_classes(
    names: set[str], positive: str | None, path: Path
) -> tuple[str, list[str], str | None]:
    """``(task, classes, positive_class)`` for one label per image.

    Two classes make a binary task whose positive class is ``positive`` or else the one
    that does not read as "normal"/"negative" (the second by name when that cannot tell);
    more make a multiclass task with classes sorted by name.
    """
    found = sorted(names, key=lambda c: (c.lower(), c))
    if len(found) < 2:
        raise DatasetError(path, f"needs at least two classes, found {found}")
    if positive is not None and positive not in found:
        raise DatasetError(path, f"positive class {positive!r} is not one of {found}")
    if len(found) > 2:
        if positive is not None:
            raise DatasetError(path, f"a positive class needs two classes, found {found}")
        return "multiclass", found, None
    if positive is None:
        negatives = [c for c in found if is_negative_name(c)]
        positive = next(c for c in found if c not in negatives) if len(negatives) == 1 \
            else found[1]
    negative = next(c for c in found if c != positive)
    return "binary", [negative, positive], positive
