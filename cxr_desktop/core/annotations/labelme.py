"""labelme-compatible JSON, one file per image, that reloads into the very same shapes.

Each of our shape types is stored as the labelme type that draws it, so labelme (and
labelme2coco, labelme2voc, ...) shows what the user drew:

=========  ====================  ==========================================================
ours       labelme shape_type    notes
=========  ====================  ==========================================================
rectangle  rectangle             the two corners as given
polygon    polygon
freehand   linestrip
ellipse    polygon               32-vertex outline; flag ``cxr:ellipse`` marks it. Vertices
                                 0, 8, 16 and 24 sit exactly on x2, y2, x1 and y1 of our
                                 corners, so the corners come back exactly and in order.
arrow      line (2 points) or    flag ``cxr:arrow`` marks it
           linestrip (more)
text       point                 the words in ``description``
=========  ====================  ==========================================================

Every shape's ``text`` goes to ``description`` and its ``flags`` to labelme's ``flags``; the
``cxr:`` marker flags are ours and are removed on load. Files written by labelme load too: a
``circle`` (centre, point on the rim) becomes the ellipse in its bounding square, a ``line``
without our marker a two-point freehand stroke, a ``point`` a text note (its description the
words). labelme ``mask`` and ``points`` shapes have no counterpart here and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.atomic import atomic_write_json
from cxr_desktop.core.errors import FileError
from cxr_desktop.core.jsonfile import read_json

LABELME_VERSION = "5.5.0"
MARKER_PREFIX = "cxr:"
ELLIPSE_VERTICES = 32  # a multiple of 4: the outline passes exactly through the four sides
_NATIVE = {"rectangle": "rectangle", "polygon": "polygon", "freehand": "linestrip"}
_FROM_LABELME = {"rectangle": "rectangle", "polygon": "polygon", "linestrip": "freehand",
                 "line": "freehand", "point": "text"}


def ellipse_outline(points: tuple[tuple[float, float], ...]) -> list[list[float]]:
    """Vertices of the ellipse with corners ``(x1, y1), (x2, y2)``, starting at ``(x2, cy)``.

    The radii keep their sign, so vertex 0 lies on x2, vertex N/4 on y2, N/2 on x1 and 3N/4
    on y1; those four coordinates are copied, not computed, so they are exact.
    """
    (x1, y1), (x2, y2) = points[0], points[1]
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    quarter = ELLIPSE_VERTICES // 4
    outline = []
    for k in range(ELLIPSE_VERTICES):
        angle = 2 * math.pi * k / ELLIPSE_VERTICES
        outline.append([cx + rx * math.cos(angle), cy + ry * math.sin(angle)])
    outline[0][0], outline[quarter][1] = x2, y2
    outline[2 * quarter][0], outline[3 * quarter][1] = x1, y1
    return outline


def _ellipse_corners(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    if len(points) == ELLIPSE_VERTICES:
        quarter = ELLIPSE_VERTICES // 4
        return (points[2 * quarter][0], points[3 * quarter][1]), (points[0][0], points[quarter][1])
    # The outline was edited in labelme: keep the box it now fills.
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys)), (max(xs), max(ys))


def _shape_to_dict(shape: Shape) -> dict[str, Any]:
    flags = dict(shape.flags)
    points: list[list[float]] = [[x, y] for x, y in shape.points]
    if shape.shape_type in _NATIVE:
        shape_type = _NATIVE[shape.shape_type]
    elif shape.shape_type == "ellipse":
        shape_type, points = "polygon", ellipse_outline(shape.points)
        flags[MARKER_PREFIX + "ellipse"] = True
    elif shape.shape_type == "arrow":
        shape_type = "line" if len(points) == 2 else "linestrip"
        flags[MARKER_PREFIX + "arrow"] = True
    else:  # text
        shape_type = "point"
    return {"label": shape.label, "points": points, "group_id": None,
            "shape_type": shape_type, "flags": flags, "description": shape.text}


def save_labelme(
    path: str | Path, shapes: Iterable[Shape], image_path: str, image_size: tuple[int, int]
) -> Path:
    """Write the labelme JSON of ``shapes`` on the image ``image_path`` of ``(height, width)``.

    ``image_path`` is stored as given (labelme expects it relative to the JSON file);
    ``imageData`` is null, so the file stays small and labelme reads the image from disk.
    """
    height, width = image_size
    doc = {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": [_shape_to_dict(shape) for shape in shapes],
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }
    return atomic_write_json(path, doc)


def _points(raw: Any) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise ValueError("points is not a list")
    points = []
    for point in raw:
        if (not isinstance(point, list) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in point)):
            raise ValueError(f"point {point!r} is not a pair of numbers")
        points.append((float(point[0]), float(point[1])))
    return points


def _shape_from_dict(raw: Any) -> Shape:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    label, kind = raw.get("label"), raw.get("shape_type") or "polygon"
    if not isinstance(label, str):
        raise ValueError("label is not a string")
    points = _points(raw.get("points"))
    flags = raw.get("flags") or {}
    if not isinstance(flags, dict):
        raise ValueError("flags is not an object")
    text = raw.get("description") or ""
    markers = {key[len(MARKER_PREFIX):] for key, on in flags.items()
               if key.startswith(MARKER_PREFIX) and on}
    user_flags = {key: bool(on) for key, on in flags.items() if not key.startswith(MARKER_PREFIX)}
    if kind == "polygon" and "ellipse" in markers:
        shape_type, corners = "ellipse", _ellipse_corners(points)
    elif kind in ("line", "linestrip") and "arrow" in markers:
        shape_type, corners = "arrow", tuple(points)
    elif kind == "circle":
        if len(points) != 2:
            raise ValueError("a circle needs 2 points (centre, rim)")
        (cx, cy), (rx, ry) = points
        radius = math.hypot(rx - cx, ry - cy)
        shape_type, corners = "ellipse", ((cx - radius, cy - radius), (cx + radius, cy + radius))
    elif kind in _FROM_LABELME:
        shape_type, corners = _FROM_LABELME[kind], tuple(points)
    else:
        raise ValueError(f"labelme shape type {kind!r} is not supported")
    return Shape(label, shape_type, corners, str(text), user_flags)


def load_labelme(path: str | Path) -> tuple[list[Shape], str, tuple[int, int]]:
    """``(shapes, imagePath, (imageHeight, imageWidth))`` of a labelme JSON file.

    Raises FileError naming the file (and the shape, 1-based) when it cannot be read.
    """
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise FileError(path, "not a labelme file (the top level is not an object)")
    image_path = doc.get("imagePath")
    if not isinstance(image_path, str):
        raise FileError(path, "not a labelme file (no imagePath)")
    size = (doc.get("imageHeight"), doc.get("imageWidth"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise FileError(path, f"imageHeight/imageWidth are not positive integers: {size}")
    raw_shapes = doc.get("shapes", [])
    if not isinstance(raw_shapes, list):
        raise FileError(path, "shapes is not a list")
    shapes = []
    for index, raw in enumerate(raw_shapes, start=1):
        try:
            shapes.append(_shape_from_dict(raw))
        except ValueError as exc:
            raise FileError(path, f"shape {index}: {exc}") from None
    return shapes, image_path, (int(size[0]), int(size[1]))
