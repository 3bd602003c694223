"""Reading label tables (CSV): encodings, separators, headers, repeated rows, class names."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_desktop.core.data.importers.paths import SPLIT_NAMES
from cxr_desktop.core.data.spec import ImageItem, Problem
from cxr_desktop.core.errors import DatasetError, first_line

#: Class names that mean "nothing found"; the other class of a binary task is the positive.
NEGATIVE_NAMES = frozenset({
    "normal", "negative", "no", "none", "no finding", "no_finding", "nofinding", "healthy",
    "0", "false", "no_object", "no object", "absent", "benign",
})
#: Beginnings that make a name read as "nothing found" (``Normal befund``, ``Normalbefund``,
#: ``negative for pneumonia``, ``healthy lungs``, ``No finding (checked)``).
NEGATIVE_PREFIXES = ("normal", "negativ", "négatif", "healthy", "gesund", "no finding",
                     "nofinding", "no ", "non ", "not ", "none ", "absent ", "benign ",
                     "unremarkable")
#: Cells that mean "no value" (pandas, R and Excel write them): a missing label.
MISSING_CELLS = frozenset({"", "nan", "na", "n/a", "null", "#n/a", "<na>"})
#: Separators tried when a ``.csv`` header does not split on commas (European Excel: ``;``).
SEPARATORS = (";", "\t", "|")
_CHUNK = 1 << 20


def is_negative_name(name: str) -> bool:
    """True for names such as ``NORMAL``, ``No Finding``, ``no_object``, ``non-covid``,
    ``Normal befund``, ``negative for pneumonia``, ``healthy``."""
    key = " ".join(name.strip().lower().replace("-", " ").replace("_", " ").split())
    return key in NEGATIVE_NAMES or key.startswith(NEGATIVE_PREFIXES)


def is_missing_cell(text: str) -> bool:
    """True for a blank cell and for ``nan``, ``NA``, ``null``, ``N/A``... (any case)."""
    return text.strip().lower() in MISSING_CELLS


def _text_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file is UTF-8 (with or without a BOM), else ``cp1252``
    (Excel's "CSV" on Western Windows) when that reads it and it holds no NUL byte (so is
    text); else raises the UTF-8 UnicodeDecodeError."""
    utf8 = codecs.getincrementaldecoder("utf-8")()
    cp1252 = codecs.getincrementaldecoder("cp1252")()
    error: UnicodeDecodeError | None = None
    cp1252_ok = True
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if error is None:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError as exc:
                    error = exc
            if cp1252_ok:
                try:
                    cp1252.decode(chunk)
                    cp1252_ok = b"\0" not in chunk
                except UnicodeDecodeError:
                    cp1252_ok = False
            if error is not None and not cp1252_ok:
                raise error
    if error is None:
        try:
            utf8.decode(b"", final=True)
            return "utf-8-sig"
        except UnicodeDecodeError as exc:
            error = exc
    if cp1252_ok:
        return "cp1252"
    raise error


def _first_line(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, newline="") as handle:
        return handle.readline()


def _csv_separator(path: Path, encoding: str) -> str:
    """``,`` unless the header has one column holding ``;``, a tab or ``|``: then the one of
    these that splits it into the most columns."""
    header = _first_line(path, encoding)
    try:
        if len(next(csv.reader([header]), [])) > 1:
            return ","
        counts = {sep: len(next(csv.reader([header], delimiter=sep), []))
                  for sep in SEPARATORS}
    except csv.Error:
        return ","
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] > 1 else ","


def _read_csv(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """``pd.read_csv`` of a label table (its first ``nrows`` rows), strings only, headers
    stripped; DatasetError if unreadable.

    The text is UTF-8 (a BOM is dropped) or else Windows-1252; ``.csv`` files are split on
    commas, or on ``;``, tab or ``|`` when the header holds no comma but one of those; other
    tables on the separator sniffed from the file. Header and rows are always read alike.
    """
    is_csv = path.suffix.lower() == ".csv"
    try:
        encoding = _text_encoding(path)
        sep = _csv_separator(path, encoding) if is_csv else None
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[],
                            skipinitialspace=True, encoding=encoding,
                            sep=sep, engine="c" if is_csv else "python",
                            nrows=nrows)
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except IsADirectoryError:
        raise DatasetError(path, "a folder, not a CSV table") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(path, "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise DatasetError(path, f"not a readable CSV table: {first_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if nrows is None:
        lines = _record_lines(path, encoding, sep, len(frame))
        if lines is not None:
            frame.attrs["lines"] = lines
    return frame


def _record_lines(path: Path, encoding: str, sep: str | None, rows: int) -> np.ndarray | None:
    """The line each row starts on in the file, when rows and lines differ (a cell running
    over several lines, blank lines); None when row ``i`` is simply on line ``i + 2``."""
    with open(path, encoding=encoding, newline="") as handle:
        if sum(1 for _ in handle) == rows + 1:
            return None
        handle.seek(0)
        reader = csv.reader(handle, delimiter=sep or ",")
        starts, previous = [], 0
        for record in reader:
            if record:
                starts.append(previous + 1)
            previous = reader.line_num
    return np.array(starts[1:], dtype=np.int64) if len(starts) == rows + 1 else None


def source_line(frame: pd.DataFrame | pd.Series, index: int) -> int:
    """The line of the file that row ``index`` of a ``read_table`` frame starts on."""
    lines = frame.attrs.get("lines")
    return int(lines[index]) if lines is not None else index + 2


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


def label_key(labels: str | dict[str, float]) -> object:
    """``labels`` comparable with ``==`` (NaN, a masked value, equal to itself)."""
    if isinstance(labels, str):
        return labels
    return tuple(sorted((k, "masked" if v != v else v) for k, v in labels.items()))


def label_text(labels: str | dict[str, float]) -> str:
    """A label for a message: the class, or a multilabel row's values (``none`` if empty)."""
    if isinstance(labels, str):
        return labels
    return ", ".join(f"{k} {'masked' if v != v else f'{v:g}'}" for k, v in labels.items()) \
        or "none"


def drop_repeated(rows: list[tuple[ImageItem, str]]) -> tuple[list[ImageItem], list[Problem]]:
    """The items of ``rows`` (``(item, "labels.csv line 7")``) with each image once.

    An image listed again with the same labels is kept once (a ``duplicate_row`` problem);
    one listed with different labels is left out altogether (``label_conflict``): which row
    is right cannot be told, and keeping either could train on a wrong label.
    """
    by_path: dict[str, list[tuple[ImageItem, str]]] = {}
    for item, where in rows:
        by_path.setdefault(item.path, []).append((item, where))
    items: list[ImageItem] = []
    problems: list[Problem] = []
    for path, group in by_path.items():
        first, where = group[0]
        if len(group) == 1:
            items.append(first)
        elif len({label_key(item.labels) for item, _ in group}) == 1:
            items.append(first)
            again = ", ".join(w for _, w in group[1:])
            problems.append(Problem("duplicate_row", [path],
                                    f"{again}: listed again (first at {where}) with the same "
                                    "label; kept once"))
        else:
            seen = "; ".join(f"{w}: {label_text(item.labels)}" for item, w in group)
            problems.append(Problem("label_conflict", [path],
                                    f"listed {len(group)} times with different labels "
                                    f"({seen}); left out, as which is right cannot be told"))
    return items, problems


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
    if not found:
        raise DatasetError(path, "no labelled image")
    if len(found) < 2:
        raise DatasetError(path, f"only one class found: {found[0]}; a dataset needs at "
                                 "least two")
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
