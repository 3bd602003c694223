"""Numbers from a DICOM header, checked before use: files in the wild hold ``abc`` in a DS.

pydicom, reading with validation off (see dicom.py), keeps a value it cannot convert as the
text it found; every number the loader takes from a header goes through :func:`numbers`,
which says which element holds what, so that the caller can ignore an optional element
with a note or refuse the file with a one-line reason naming the element.
"""

from __future__ import annotations

import math

from pydicom.datadict import dictionary_description, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

MAX_SHOWN_CHARS = 40


def label(keyword: str) -> str:
    """``"Window Center (0028,1050)"``: the element's name and tag, for messages."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return keyword
    return f"{dictionary_description(tag)} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def shown(value: object) -> str:
    """A header value as the file spells it (``a\\b`` for two values), cut short."""
    if isinstance(value, (list, tuple, MultiValue)):
        text = "\\".join(shown(item) for item in value)
    elif isinstance(value, bytes):
        text = value.decode("ascii", "replace").strip("\x00 ")
    else:
        text = str(value).strip()
    text = " ".join(text.split())  # no line breaks in a one-line message
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


class BadValue(ValueError):
    """A header element whose value is not what it must be; ``str()`` is one line:
    ``Window Center (0028,1050) 'abc' is not a number``."""

    def __init__(self, keyword: str, value: object, problem: str) -> None:
        self.keyword = keyword
        self.value = shown(value)
        self.problem = problem
        super().__init__(f"{label(keyword)} '{self.value}' {problem}")


def raw_value(ds: Dataset, keyword: str) -> object:
    """The element's value, ``None`` when absent or empty; never raises on a bad value."""
    try:
        if keyword not in ds:
            return None
        value = ds[keyword].value
    except Exception as exc:  # pydicom converts raw values lazily, and may fail doing so
        raise BadValue(keyword, "?", f"cannot be read ({type(exc).__name__})") from exc
    if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
        return None
    if isinstance(value, (list, tuple, MultiValue)) and len(value) == 0:
        return None
    return value


def numbers(ds: Dataset, keyword: str, count: int | None = None) -> tuple[float, ...] | None:
    """The finite numbers an element holds, ``None`` when it is absent or empty.

    Raises BadValue when any value is not a finite number, or when ``count`` is given and
    the element holds another number of values.
    """
    value = raw_value(ds, keyword)
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    out = []
    for item in items:
        try:
            number = float(item)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise BadValue(keyword, value, "is not a number") from None
        if not math.isfinite(number):
            raise BadValue(keyword, value, "is not a finite number")
        out.append(number)
    if count is not None and len(out) != count:
        raise BadValue(keyword, value, f"has {_values(len(out))}, {count} expected")
    return tuple(out)


def _values(count: int) -> str:
    return f"{count} value" if count == 1 else f"{count} values"


def first_number(ds: Dataset, keyword: str) -> float | None:
    """The first of :func:`numbers`: for elements of one value, or VM 1-n taken at 1."""
    values = numbers(ds, keyword)
    return values[0] if values else None


def whole_number(ds: Dataset, keyword: str, minimum: int = 0) -> int | None:
    """A single whole number of at least ``minimum`` (Rows, Bits Stored...), or ``None``
    when absent or empty; BadValue otherwise."""
    values = numbers(ds, keyword)
    if values is None:
        return None
    if len(values) != 1:
        raise BadValue(keyword, raw_value(ds, keyword), f"has {_values(len(values))}, 1 expected")
    if values[0] != int(values[0]):
        raise BadValue(keyword, raw_value(ds, keyword), "is not a whole number")
    if values[0] < minimum:
        raise BadValue(keyword, raw_value(ds, keyword), f"is less than {minimum}")
    return int(values[0])
