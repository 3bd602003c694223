"""Object-CXR annotation strings and the ``image_name,annotation`` CSV files that hold them.

The public Object-CXR challenge (github.com/jfhealthcare/object-CXR) writes one string per
image: objects separated by ``;``, the numbers of one object separated by spaces, the first
number the shape code::

    0 x1 y1 x2 y2            rectangle (upper-left, lower-right corner)
    1 x1 y1 x2 y2            ellipse in that bounding box
    2 x1 y1 x2 y2 ... xn yn  polygon

An empty string is an image without foreign objects. Some copies of the data (and our own
notes) use ``,`` between objects and ``;`` between numbers instead; :func:`parse_objectcxr`
reads both. :func:`format_objectcxr` writes the public form.

Shapes written: rectangles and ellipses (corners normalised to upper-left, lower-right as
the format requires), polygons, and freehand strokes of three or more points (written as the
polygon they outline). Arrows, text notes and freehand strokes of two points mark nothing
out and are skipped.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.atomic import atomic_write_text
from cxr_desktop.core.errors import DatasetError

RECTANGLE, ELLIPSE, POLYGON = 0, 1, 2
_CODE_TO_TYPE = {RECTANGLE: "rectangle", ELLIPSE: "ellipse", POLYGON: "polygon"}
IMAGE_COLUMNS = ("image_name", "image_path")
ANNOTATION_COLUMN = "annotation"
_WHITESPACE = re.compile(r"\s+")


def _split_objects(text: str) -> list[str]:
    """Objects as space-separated numbers, whichever of the two forms ``text`` is in.

    The public form never holds a comma and always has spaces inside an object; the other
    form (``,`` between objects, ``;`` between numbers) has no space inside a number list
    other than around its separators.
    """
    public = "," not in text and any(
        _WHITESPACE.search(chunk.strip()) for chunk in text.split(";")
    )
    objects = text.split(";") if public else [c.replace(";", " ") for c in text.split(",")]
    if len(objects) > 1 and not objects[-1].strip():
        objects = objects[:-1]  # a trailing separator
    return objects


def _number(token: str, where: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise ValueError(f"{where}: {token!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {token!r} is not a finite number")
    return value


def _parse_object(chunk: str, where: str, label: str) -> Shape:
    tokens = chunk.split()
    if not tokens:
        raise ValueError(f"{where}: empty object")
    try:
        code = int(tokens[0])
    except ValueError:
        raise ValueError(f"{where}: shape code {tokens[0]!r} is not 0, 1 or 2") from None
    if code not in _CODE_TO_TYPE:
        raise ValueError(f"{where}: unknown shape code {code} (0 rectangle, 1 ellipse, 2 polygon)")
    values = [_number(token, where) for token in tokens[1:]]
    if code in (RECTANGLE, ELLIPSE) and len(values) != 4:
        raise ValueError(
            f"{where}: a {_CODE_TO_TYPE[code]} needs 4 numbers (x1 y1 x2 y2), got {len(values)}"
        )
    if code == POLYGON and (len(values) < 6 or len(values) % 2):
        raise ValueError(
            f"{where}: a polygon needs an even number of at least 6 numbers, got {len(values)}"
        )
    points = tuple(zip(values[0::2], values[1::2], strict=True))
    return Shape(label, _CODE_TO_TYPE[code], points)


def parse_objectcxr(text: str, label: str = "object") -> list[Shape]:
    """The shapes of one annotation string, each labelled ``label``; ``[]`` for an empty one.

    Raises ValueError naming the object (1-based) and what is wrong with it.
    """
    text = (text or "").strip()
    if not text:
        return []
    return [
        _parse_object(chunk, f"object {index}", label)
        for index, chunk in enumerate(_split_objects(text), start=1)
    ]


def _fmt(value: float) -> str:
    """Integers without a trailing ``.0``; other values in the shortest exact form."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _object_numbers(shape: Shape) -> tuple[int, list[float]] | None:
    if shape.shape_type in ("rectangle", "ellipse"):
        x0, y0, x1, y1 = shape.bounds()
        code = RECTANGLE if shape.shape_type == "rectangle" else ELLIPSE
        return code, [x0, y0, x1, y1]
    if shape.shape_type == "polygon" or (
        shape.shape_type == "freehand" and len(shape.points) >= 3
    ):
        return POLYGON, [v for point in shape.points for v in point]
    return None


def format_objectcxr(shapes: Iterable[Shape]) -> str:
    """The public Object-CXR string of ``shapes`` (see the module docstring for what is kept)."""
    objects = []
    for shape in shapes:
        numbers = _object_numbers(shape)
        if numbers is not None:
            code, values = numbers
            objects.append(" ".join([str(code), *map(_fmt, values)]))
    return ";".join(objects)


def read_objectcxr_csv(path: str | Path) -> dict[str, list[Shape]]:
    """``{image name as written: shapes}`` from an Object-CXR CSV.

    The image column may be called ``image_name`` or ``image_path``; an empty (or missing)
    annotation is a negative. Raises DatasetError naming the file and the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot read: {exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    image_column = next((name for name in IMAGE_COLUMNS if name in header), None)
    if image_column is None or ANNOTATION_COLUMN not in header:
        raise DatasetError(
            path, f"needs columns image_name (or image_path) and annotation, found {header}"
        )
    out: dict[str, list[Shape]] = {}
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise DatasetError(
                    path, f"line {line}: more fields than columns (is the annotation quoted?)"
                )
            name = (row[image_column] or "").strip()
            if not name:
                raise DatasetError(path, f"line {line}: empty {image_column}")
            if name in out:
                raise DatasetError(
                    path, f"line {line}: {name} already listed on line {first_line[name]}"
                )
            try:
                out[name] = parse_objectcxr(row[ANNOTATION_COLUMN] or "")
            except ValueError as exc:
                raise DatasetError(path, f"line {line} ({name}): {exc}") from None
            first_line[name] = line
    except csv.Error as exc:
        raise DatasetError(path, f"line {reader.line_num}: {exc}") from None
    return out


def write_objectcxr_csv(
    path: str | Path, mapping: Mapping[str, Iterable[Shape]], image_column: str = "image_name"
) -> Path:
    """Write ``image_column,annotation`` rows (every field quoted) atomically, in order."""
    if image_column not in IMAGE_COLUMNS:
        raise ValueError(f"image_column must be one of {IMAGE_COLUMNS}, not {image_column!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([image_column, ANNOTATION_COLUMN])
    for name, shapes in mapping.items():
        writer.writerow([name, format_objectcxr(shapes)])
    return atomic_write_text(path, buffer.getvalue())
