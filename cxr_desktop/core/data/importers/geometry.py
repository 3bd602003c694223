"""Annotations written as table columns: boxes (``x, y, width, height`` or ``x_min, y_min,
x_max, y_max``) and run-length masks (SIIM-ACR's ``EncodedPixels``), turned into shapes in
image pixels.

A run-length mask is a list of ``start length`` pairs over the image flattened in
column-major order (x major, as SIIM wrote it). SIIM's first release wrote each start
relative to the end of the previous run, later copies absolute positions; which one a cell
uses is told from its numbers (absolute starts never go back, gaps do). A mask becomes one polygon
per connected region (OpenCV's outer contours), so it draws, exports and scores like any
other shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.importers.tables import MISSING_CELLS, is_missing_cell

BOX_FORMATS = ("xywh", "xyxy")
Box = tuple[float, float, float, float]


def parse_boxes(frame: pd.DataFrame, columns: list[str], fmt: str) -> list[Box | str | None]:
    """Per row: ``(x0, y0, x1, y1)``, None when all four cells are blank (no box), or the
    reason the cells are not a box (a word, a negative size, a missing number)."""
    if fmt not in BOX_FORMATS:
        raise ValueError(f"box format must be one of {BOX_FORMATS}, not {fmt!r}")
    text = frame[columns].apply(lambda cells: cells.str.strip())
    blank = text.apply(lambda cells: cells.str.lower().isin(MISSING_CELLS)).to_numpy(bool)
    numbers = text.apply(pd.to_numeric, errors="coerce").to_numpy(float)
    a, b, c, d = numbers.T
    x1, y1 = (a + c, b + d) if fmt == "xywh" else (c, d)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(numbers).all(axis=1) & (x1 > a) & (y1 > b)
    out: list[Box | str | None] = []
    for row in range(len(text)):
        if good[row]:
            out.append((float(a[row]), float(b[row]), float(x1[row]), float(y1[row])))
        elif blank[row].all():
            out.append(None)
        else:
            cells = ", ".join(text.iat[row, i] or "(blank)" for i in range(4))
            out.append(f"box cells {cells} are partly blank" if blank[row].any() else
                       f"box cells {cells} are not numbers" if np.isnan(numbers[row]).any()
                       else f"box ({cells}) has no area ({fmt})")
    return out


def box_shape(box: Box, label: str) -> Shape:
    x0, y0, x1, y1 = box
    return Shape(label, "rectangle", ((x0, y0), (x1, y1)))


def is_blank_mask(text: str) -> bool:
    """True for a cell that holds no mask: blank, ``-1`` (SIIM's "none") or ``nan``."""
    return is_missing_cell(text) or text.strip() == "-1"


def _runs(text: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Absolute ``(starts, ends)`` of a run-length cell; ValueError when it does not fit."""
    try:
        numbers = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise ValueError("the mask is not a list of numbers") from None
    if len(numbers) % 2 or not len(numbers):
        raise ValueError("the mask needs pairs of start and length")
    starts, lengths = numbers[0::2], numbers[1::2]
    if (lengths <= 0).any() or (starts < 0).any():
        raise ValueError("the mask has a negative start or an empty run")
    relative = np.cumsum(starts + np.concatenate(([0], lengths[:-1])))
    # Absolute starts never go back; relative ones (gaps) do, except by chance in a code of
    # two runs, where only the absolute reading may fit the image.
    rising = bool((starts[1:] >= starts[:-1] + lengths[:-1]).all())
    if not (len(starts) > 1 and rising
            and (len(starts) > 2 or relative[-1] + lengths[-1] > width * height)):
        starts = relative
    ends = starts + lengths
    if ends[-1] > width * height:
        raise ValueError(f"the mask runs past the end of a {width} x {height} image")
    return starts, ends


def _columns(text: str, width: int, height: int) -> tuple[np.ndarray, int]:
    """``(mask[x, y] of the image columns the runs touch, the first such column)``: only the
    span the runs cover is filled, which keeps a mask of a 1024 px image under a
    millisecond."""
    starts, ends = _runs(text, width, height)
    first, last = int(starts[0]) // height, -(-int(ends[-1]) // height)
    base = first * height
    edges = np.zeros((last - first) * height + 1, dtype=np.int8)
    edges[starts - base] += 1
    edges[ends - base] -= 1
    span = np.cumsum(edges[:-1], dtype=np.int8).view(np.uint8)
    return span.reshape(last - first, height), first


def rle_decode(text: str, width: int, height: int) -> np.ndarray:
    """The (height, width) uint8 mask of a run-length cell; ValueError when it does not fit."""
    columns, first = _columns(text, width, height)
    mask = np.zeros((width, height), dtype=np.uint8)
    mask[first:first + len(columns)] = columns
    return np.ascontiguousarray(mask.T)


def rle_shapes(text: str, width: int, height: int, label: str) -> list[Shape]:
    """One polygon per connected region of a run-length mask (its outer outline, simplified
    to 1 px); ValueError when the cell is not a mask of that image."""
    import cv2

    columns, first = _columns(text, width, height)
    contours, _ = cv2.findContours(columns, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    shapes = []
    for contour in contours:
        points = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2)
        if len(points) < 3:  # a line or a dot: its box
            y, x, h, w = cv2.boundingRect(contour)
            points = np.array([(y, x), (y + h, x), (y + h, x + w), (y, x + w)])
        # contour points are (y, x - first): the array is indexed [x, y]
        shapes.append(Shape(label, "polygon",
                            tuple((float(x + first), float(y)) for y, x in points)))
    return shapes


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header (DICOM Rows/Columns, PNG/JPEG header)
    without decoding pixels; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
        if head[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom", ".dic"):
            import pydicom

            data = pydicom.dcmread(path, stop_before_pixels=True,
                                   specific_tags=["Rows", "Columns"])
            return int(data.Columns), int(data.Rows)
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any unreadable file: the image checks report it
        return None
