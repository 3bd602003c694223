"""Windows (center, width) and the VOI step that turns pixels into display grey levels."""

from __future__ import annotations

import numpy as np

from cxr_desktop.core.io.radiograph import Radiograph


def full_range_window(lo: float, hi: float) -> tuple[float, float]:
    """The DICOM linear window that maps integer data ``lo..hi`` onto the whole display."""
    return (lo + hi + 1) / 2.0, max(hi - lo + 1, 1.0)


def percentile_window(pixels: np.ndarray, low: float = 0.5, high: float = 99.5
                      ) -> tuple[float, float]:
    """A robust window from percentiles of a subsample (fast on 2k x 2k images)."""
    step = max(1, int(np.sqrt(pixels.size / 250_000)))
    lo, hi = np.percentile(pixels[::step, ::step], [low, high])
    if hi <= lo:
        lo, hi = float(pixels.min()), float(pixels.max())
    return float(lo + hi) / 2.0, float(max(hi - lo, 1.0))


def apply_window(pixels: np.ndarray, center: float, width: float,
                 function: str = "LINEAR") -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 VOI functions; returns float32 in [0, 1]."""
    x = pixels.astype(np.float32, copy=False)
    c = np.float32(center)
    if function == "SIGMOID":
        y = 1.0 / (1.0 + np.exp(np.float32(-4.0) * (x - c) / np.float32(max(width, 1e-6))))
        return y.astype(np.float32, copy=False)
    if function == "LINEAR_EXACT":
        y = (x - c) / np.float32(max(width, 1e-6)) + np.float32(0.5)
    else:
        w = max(float(width), 1.0)
        if w == 1.0:  # a step: x <= c - 0.5 is the minimum, above it the maximum
            return (x > c - np.float32(0.5)).astype(np.float32)
        y = (x - (c - np.float32(0.5))) / np.float32(w - 1.0) + np.float32(0.5)
    return np.clip(y, 0.0, 1.0, out=y)


def to_display(radiograph: Radiograph, window: tuple[float, float] | None = None) -> np.ndarray:
    """Apply VOI and return a uint8 image: the one chain for display, cache and model.

    With ``window=None`` the file's own VOI is used: its VOI LUT when it has one (as pydicom
    prefers), else its window and VOILUTFunction, else the robust window found on load. A
    window the user picks is applied with the file's VOI function.
    """
    lut = radiograph.voi_lut
    if window is None and lut is not None:
        stored = radiograph.pixels
        if radiograph.invert_offset is not None:
            stored = np.float32(radiograph.invert_offset) - stored
        index = np.rint(stored).astype(np.int64) - lut.first_mapped
        np.clip(index, 0, lut.table.size - 1, out=index)
        table = lut.table.astype(np.float32)
        span = float(table.max() - table.min()) or 1.0
        y = (table[index] - table.min()) / np.float32(span)
        if radiograph.invert_offset is not None:
            y = 1.0 - y
    else:
        center, width = window if window is not None else radiograph.window
        y = apply_window(radiograph.pixels, center, width, radiograph.voi_function)
    return (y * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
