"""``--report DIR`` of a localization: ``localization.csv`` and an overlay PNG per miss.

``localization.csv`` has one row per annotated positive scored: ``image, label, score,
peak_x, peak_y, hit, energy_in_boxes`` (the peak in the image's own pixels). Each miss whose
map was kept gets ``misses/NNN_<image>.png``: the image (at most ``OVERLAY_SIDE`` px) with the
map blended over it, the annotations in green and the map's peak as a red cross. Every file
is written atomically.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.evaluate.localization import ImageScore
from cxr_desktop.core.evaluate.localize import Localization, class_shapes
from cxr_desktop.core.infer.cam import overlay_rgb
from cxr_desktop.core.io import load_image, to_display
from cxr_desktop.core.runs.folder import make_dirs, os_reason

OVERLAY_SIDE = 512
COLUMNS = ("image", "label", "score", "peak_x", "peak_y", "hit", "energy_in_boxes")


def localization_table(result: Localization) -> pd.DataFrame:
    return pd.DataFrame([{name: getattr(s, name) for name in COLUMNS} for s in result.images],
                        columns=list(COLUMNS))


def miss_overlay(score: ImageScore, cam: np.ndarray, shapes: Sequence[Shape],
                 side: int = OVERLAY_SIDE) -> np.ndarray:
    """The (H, W, 3) uint8 overlay of one miss, at most ``side`` px on its long side: the
    map, ``shapes`` (the annotations of its class) in green, the peak as a white cross
    outlined in black (seen on any colour of the map), lines as thick at 112 px as at 512."""
    display = to_display(load_image(score.image))
    rows, columns = display.shape
    factor = min(1.0, side / max(rows, columns))
    size = (max(1, round(columns * factor)), max(1, round(rows * factor)))
    small = cv2.resize(display, size, interpolation=cv2.INTER_AREA)
    heat = cv2.resize(np.asarray(cam, dtype=np.float32), size, interpolation=cv2.INTER_LINEAR)
    picture = Image.fromarray(overlay_rgb(small, np.clip(heat, 0, 1)))
    draw = ImageDraw.Draw(picture)
    width = max(2, round(max(size) / 160))
    for shape in shapes:
        points = [(x * factor, y * factor) for x, y in shape.points]
        if shape.shape_type == "polygon":
            draw.line([*points, points[0]], fill=(0, 230, 0), width=width)
        else:
            x0, y0, x1, y1 = (v * factor for v in shape.bounds())
            draw.rectangle((x0, y0, x1, y1), outline=(0, 230, 0), width=width)
    if score.peak_x is not None and score.peak_y is not None:
        x, y, r = score.peak_x * factor, score.peak_y * factor, max(5, 4 * width)
        for colour, thick in (((0, 0, 0), width + 2), ((255, 255, 255), width)):
            draw.line((x - r, y, x + r, y), fill=colour, width=thick)
            draw.line((x, y - r, x, y + r), fill=colour, width=thick)
    return np.asarray(picture)


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_localization_report(directory: str | Path, result: Localization,
                              spec: DatasetSpec) -> list[Path]:
    """Write ``localization.csv`` and the misses' overlays; the files written.

    An image that can no longer be read gets no overlay (it is still in the CSV)."""
    directory = Path(directory)
    make_dirs(directory, "report folder")
    written = []
    items = {str(spec.abspath(item)): item for item in spec.items}
    target = directory / "localization.csv"
    try:
        written.append(atomic_write_text(target,
                                         localization_table(result).to_csv(index=False)))
        for number, score in enumerate(result.misses(), start=1):
            cam = result.miss_maps.get((score.image, score.label))
            if cam is None:
                continue
            item = items.get(score.image)
            shapes = class_shapes(item, score.label, spec.task) if item else []
            try:
                rgb = miss_overlay(score, cam, shapes)
            except CxrError:
                continue
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(score.image).stem)[:60]
            target = directory / "misses" / f"{number:03d}_{stem}.png"
            written.append(atomic_write_bytes(target, _png(rgb)))
    except OSError as exc:
        raise FileError(target, f"cannot write ({os_reason(exc)})") from None
    return written
