"""A shape is plain data: a label, points in image pixel coordinates, and a shape type.

The vocabulary follows labelme so that its JSON files round-trip: a ``rectangle`` and an
``ellipse`` hold two corner points of their bounding box, a ``polygon`` three or more
vertices, a ``freehand`` (labelme ``linestrip``) and an ``arrow`` (tail, head) their points,
and ``text`` one anchor point with the words in ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SHAPE_TYPES = ("rectangle", "ellipse", "polygon", "freehand", "arrow", "text")

_MIN_POINTS = {"rectangle": 2, "ellipse": 2, "polygon": 3, "freehand": 2, "arrow": 2, "text": 1}


@dataclass(frozen=True)
class Shape:
    label: str
    shape_type: str
    points: tuple[tuple[float, float], ...]
    text: str = ""
    flags: dict[str, bool] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.shape_type not in SHAPE_TYPES:
            raise ValueError(f"unknown shape type {self.shape_type!r}")
        points = tuple((float(x), float(y)) for x, y in self.points)
        if len(points) < _MIN_POINTS[self.shape_type]:
            raise ValueError(
                f"a {self.shape_type} needs at least {_MIN_POINTS[self.shape_type]} points"
            )
        object.__setattr__(self, "points", points)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` of the points."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def translated(self, dx: float, dy: float) -> Shape:
        return Shape(self.label, self.shape_type,
                     tuple((x + dx, y + dy) for x, y in self.points), self.text, dict(self.flags))

    def inside(self, width: int, height: int) -> bool:
        """True when every point lies within an image of that size."""
        x0, y0, x1, y1 = self.bounds()
        return x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height
