"""Hit tests, vertex handles and stroke simplification for shapes, in image pixels.

``tolerance`` is how far (in image pixels) a click may land from an outline and still touch
it; the view turns a few screen pixels into image pixels at the current zoom, so picking
feels the same at every zoom while the shapes themselves never depend on it.
"""

from __future__ import annotations

import math

import numpy as np

from cxr_desktop.core.annotations.shapes import Shape

Point = tuple[float, float]
BOX_TYPES = ("rectangle", "ellipse")
# A text note is drawn at a fixed screen size to the right of and below its anchor; in units
# of ``tolerance`` (a few screen pixels) one character is about this wide and a line this tall.
TEXT_CHAR_WIDTH = 1.2
TEXT_LINE_HEIGHT = 3.0
_BOX_CORNERS = ((0, 0), (1, 0), (1, 1), (0, 1))  # which point gives x, which gives y


def normalized_box(p: Point, q: Point) -> tuple[Point, Point]:
    """The upper-left and lower-right corners of the box spanned by ``p`` and ``q``."""
    return (min(p[0], q[0]), min(p[1], q[1])), (max(p[0], q[0]), max(p[1], q[1]))


def polyline_distance(points: np.ndarray, x: float, y: float) -> float:
    """Shortest distance from ``(x, y)`` to the segments joining consecutive ``points``."""
    p = np.array([x, y], dtype=float)
    if len(points) == 1:
        return float(np.hypot(*(points[0] - p)))
    a, b = points[:-1], points[1:]
    ab = b - a
    length2 = np.einsum("ij,ij->i", ab, ab)
    t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.where(length2 > 0, length2, 1.0), 0, 1)
    nearest = a + t[:, None] * ab
    return float(np.min(np.hypot(*(nearest - p).T)))


def inside_polygon(points: np.ndarray, x: float, y: float) -> bool:
    """Even-odd rule: a ray from ``(x, y)`` to the right crosses the outline an odd number of
    times."""
    xs, ys = points[:, 0], points[:, 1]
    xn, yn = np.roll(xs, -1), np.roll(ys, -1)
    straddles = (ys > y) != (yn > y)
    # Edges that do not straddle the ray may divide by zero or overflow: they are masked out.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x_cross = xs + (y - ys) * (xn - xs) / (yn - ys)
    return bool(np.count_nonzero(straddles & (x < x_cross)) % 2)


def text_box(shape: Shape, tolerance: float) -> tuple[float, float, float, float]:
    """The approximate ``(x0, y0, x1, y1)`` a text note covers on screen, in image pixels."""
    x, y = shape.points[0]
    width = TEXT_CHAR_WIDTH * tolerance * max(len(shape.text), 1)
    return x - tolerance, y - tolerance, x + width + tolerance, y + TEXT_LINE_HEIGHT * tolerance


def hits(shape: Shape, x: float, y: float, tolerance: float) -> bool:
    """True when a click at ``(x, y)`` touches ``shape``: inside it, or near its outline."""
    kind = shape.shape_type
    if kind == "text":
        x0, y0, x1, y1 = text_box(shape, tolerance)
        return x0 <= x <= x1 and y0 <= y <= y1
    if kind == "rectangle":
        x0, y0, x1, y1 = shape.bounds()
        return x0 - tolerance <= x <= x1 + tolerance and y0 - tolerance <= y <= y1 + tolerance
    if kind == "ellipse":
        x0, y0, x1, y1 = shape.bounds()
        rx, ry = (x1 - x0) / 2 + tolerance, (y1 - y0) / 2 + tolerance
        return ((x - (x0 + x1) / 2) / rx) ** 2 + ((y - (y0 + y1) / 2) / ry) ** 2 <= 1.0
    points = np.asarray(shape.points, dtype=float)
    if kind == "polygon":
        if inside_polygon(points, x, y):
            return True
        points = np.vstack([points, points[:1]])
    return polyline_distance(points, x, y) <= tolerance


def topmost_hit(shapes: tuple[Shape, ...], x: float, y: float, tolerance: float) -> int | None:
    """Index of the last-drawn shape that ``(x, y)`` touches, or None."""
    for index in range(len(shapes) - 1, -1, -1):
        if hits(shapes[index], x, y, tolerance):
            return index
    return None


def handles(shape: Shape) -> list[Point]:
    """The points a user can drag to reshape ``shape``: box corners, or the vertices."""
    if shape.shape_type in BOX_TYPES:
        p = shape.points
        return [(p[ix][0], p[iy][1]) for ix, iy in _BOX_CORNERS]
    return list(shape.points)


def nearest_handle(shape: Shape, x: float, y: float, tolerance: float) -> int | None:
    """Index of the handle of ``shape`` within ``tolerance`` of ``(x, y)`` (the closest one)."""
    best, best_distance = None, tolerance
    for index, (hx, hy) in enumerate(handles(shape)):
        distance = math.hypot(hx - x, hy - y)
        if distance <= best_distance:
            best, best_distance = index, distance
    return best


def move_handle(shape: Shape, index: int, x: float, y: float) -> Shape:
    """``shape`` with handle ``index`` (see :func:`handles`) moved to ``(x, y)``.

    Box corners stay normalised (upper-left, lower-right), so dragging a corner across the
    opposite one flips the box instead of storing it inside out.
    """
    points = [list(p) for p in shape.points]
    if shape.shape_type in BOX_TYPES:
        ix, iy = _BOX_CORNERS[index]
        points[ix][0], points[iy][1] = x, y
        new_points: tuple[Point, ...] = normalized_box(tuple(points[0]), tuple(points[1]))
    else:
        points[index] = [x, y]
        new_points = tuple((p[0], p[1]) for p in points)
    return Shape(shape.label, shape.shape_type, new_points, shape.text, dict(shape.flags))


def simplify(points: list[Point], epsilon: float) -> list[Point]:
    """Ramer-Douglas-Peucker: drop the points of a stroke that lie within ``epsilon`` of it.

    Written here (20 lines) rather than taken from OpenCV or scikit-image, which the core does
    not otherwise need. The first and last points are always kept.
    """
    if len(points) < 3:
        return list(points)
    array = np.asarray(points, dtype=float)
    keep = np.zeros(len(array), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(array) - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        a, b = array[first], array[last]
        inner = array[first + 1:last]
        ab = b - a
        norm = math.hypot(*ab)
        if norm == 0:
            distances = np.hypot(*(inner - a).T)
        else:
            distances = np.abs(ab[0] * (inner[:, 1] - a[1]) - ab[1] * (inner[:, 0] - a[0])) / norm
        index = int(np.argmax(distances))
        if distances[index] > epsilon:
            split = first + 1 + index
            keep[split] = True
            stack += [(first, split), (split, last)]
    return [(float(x), float(y)) for x, y in array[keep]]
