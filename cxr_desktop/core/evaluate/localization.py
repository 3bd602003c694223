"""Does the map point at the finding? Localization measures over maps and annotations.

Pure functions over a map (H, W) in [0, 1] at the model's input size and shapes in the
original image's pixels (``scale`` = model pixels per image pixel, x and y):

- **pointing game** (Zhang et al. 2016): the map's peak, in image pixels, inside the
  bounding box of an annotated shape of the class, with their tolerance of 15 pixels at the
  model's input size (``POINTING_TOLERANCE``: a map from a 7 x 7 feature grid cannot place
  its peak more finely than that);
- **energy in boxes**: the share of the map's sum that falls inside the shapes (rectangles,
  ellipses and polygons filled as drawn);
- **FROC** as Object-CXR scores localization: every image gives up to ``MAX_POINTS`` points
  (the map's local maxima, each with the confidence probability x map value); a point inside
  a shape of a positive image finds that shape (once; a second point on it counts nothing),
  any other point is a false positive. Sensitivity is read at 0.125 ... 8 false positives per
  image and the score is their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from cxr_desktop.core.annotations.shapes import Shape

FROC_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: The pointing game's tolerance, in pixels of the model's input (Zhang et al. 2016).
POINTING_TOLERANCE = 15.0
MAX_POINTS = 5
#: A local maximum below this share of the map's peak is not a point.
MIN_POINT_VALUE = 0.2
#: Local maxima closer than this share of the side are one point.
POINT_SPACING = 1 / 16


@dataclass
class ImageScore:
    """One annotated positive (image, class): where its map peaked and what it hit."""

    image: str
    label: str
    score: float
    peak_x: float | None
    peak_y: float | None
    hit: bool
    energy_in_boxes: float


@dataclass
class FrocCurve:
    fp_per_image: list[float]
    sensitivity: list[float]
    rates: list[float] = field(default_factory=lambda: list(FROC_RATES))
    at_rates: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        return float(np.mean(self.at_rates)) if self.at_rates else float("nan")

    def to_dict(self) -> dict[str, object]:
        return {"rates": self.rates, "sensitivity_at_rates": self.at_rates,
                "score": self.score, "fp_per_image": self.fp_per_image,
                "sensitivity": self.sensitivity}


def bounds_hit(x: float, y: float, shapes: Sequence[Shape], tolerance: float = 0.0) -> bool:
    """True when (x, y) lies inside the bounding box of one of ``shapes`` (edges included),
    or at most ``tolerance`` pixels from it."""
    return any(bounds_distance(x, y, shape) <= tolerance for shape in shapes)


def bounds_distance(x: float, y: float, shape: Shape) -> float:
    """Pixels from ``(x, y)`` to the bounding box of ``shape`` (0 inside it)."""
    x0, y0, x1, y1 = shape.bounds()
    return float(np.hypot(max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1)))


def shapes_mask(shapes: Sequence[Shape], size: tuple[int, int],
                scale: tuple[float, float]) -> np.ndarray:
    """The (rows, columns) uint8 mask of ``shapes`` filled, at ``scale`` (x, y)."""
    rows, columns = size
    mask = np.zeros((rows, columns), dtype=np.uint8)
    sx, sy = scale
    for shape in shapes:
        points = np.array([(x * sx, y * sy) for x, y in shape.points], dtype=np.float64)
        if shape.shape_type == "rectangle":
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            mask[max(int(np.floor(y0)), 0):int(np.ceil(y1)),
                 max(int(np.floor(x0)), 0):int(np.ceil(x1))] = 1
        elif shape.shape_type == "ellipse":
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
            axes = (max(int(round((x1 - x0) / 2)), 1), max(int(round((y1 - y0) / 2)), 1))
            cv2.ellipse(mask, center, axes, 0, 0, 360, 1, thickness=-1)
        elif shape.shape_type == "polygon":
            cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def energy_in(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's sum inside ``mask`` (0 for an empty map)."""
    total = float(cam.sum())
    return float(cam[mask.astype(bool)].sum()) / total if total > 0 else 0.0


def peak(cam: np.ndarray) -> tuple[int, int] | None:
    """(x, y) of the map's maximum at its own resolution; None for a flat map."""
    if cam.size == 0 or float(cam.max() - cam.min()) <= 1e-6:
        return None
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(x), int(y)


def to_image(point: tuple[int, int], scale: tuple[float, float]) -> tuple[float, float]:
    """A map pixel's centre in image pixels."""
    return (point[0] + 0.5) / scale[0], (point[1] + 0.5) / scale[1]


def local_maxima(cam: np.ndarray) -> list[tuple[int, int, float]]:
    """Up to ``MAX_POINTS`` (x, y, value) local maxima of the map, strongest first."""
    if cam.size == 0 or float(cam.max()) <= 0:
        return []
    side = max(3, int(round(max(cam.shape) * POINT_SPACING)) | 1)
    dilated = cv2.dilate(cam.astype(np.float32), np.ones((side, side), np.uint8))
    ys, xs = np.nonzero((cam >= dilated) & (cam >= MIN_POINT_VALUE * float(cam.max())))
    order = np.argsort(-cam[ys, xs], kind="stable")
    points: list[tuple[int, int, float]] = []
    for i in order:
        x, y = int(xs[i]), int(ys[i])
        if all(abs(x - px) >= side or abs(y - py) >= side for px, py, _ in points):
            points.append((x, y, float(cam[y, x])))
        if len(points) == MAX_POINTS:
            break
    return points


def froc(images: Sequence[tuple[list[tuple[float, float, float]], Sequence[Shape]]]
         ) -> FrocCurve:
    """The FROC curve of ``(points (x, y, confidence) in image pixels, shapes)`` per image
    (no shapes: a negative image)."""
    scored: list[tuple[float, int, int]] = []  # (confidence, image, shape hit or -1)
    total = 0
    for index, (points, shapes) in enumerate(images):
        total += len(shapes)
        for x, y, confidence in points:
            hit = next((k for k, s in enumerate(shapes) if bounds_hit(x, y, [s])), -1)
            scored.append((confidence, index, hit))
    scored.sort(key=lambda entry: -entry[0])
    found: set[tuple[int, int]] = set()
    fps, sens, false = [0.0], [0.0], 0
    n_images = max(len(images), 1)
    for _, index, hit in scored:
        if hit < 0:
            false += 1
        elif (index, hit) in found:
            continue
        else:
            found.add((index, hit))
        fps.append(false / n_images)
        sens.append(len(found) / total if total else 0.0)
    fp_arr, sens_arr = np.array(fps), np.array(sens)
    at = [float(sens_arr[fp_arr <= rate].max()) for rate in FROC_RATES]
    return FrocCurve([float(v) for v in fps], [float(v) for v in sens], at_rates=at)


def bootstrap_share_ci(hits: np.ndarray, n_boot: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the share of ``hits`` (booleans), by resampling them."""
    hits = np.asarray(hits, dtype=np.float64)
    if hits.size == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, hits.size, size=(n_boot, hits.size))
    shares = hits[draws].mean(axis=1)
    low, high = np.percentile(shares, [2.5, 97.5])
    return float(low), float(high)
