"""apply_window against DICOM PS3.3 C.11.2.1.2 and pydicom, on values at the window edges."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_windowing

from cxr_desktop.core.io.window import apply_window

BITS = 16


def _pydicom(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """pydicom's windowing of ``values`` scaled to 0..1 (its output spans 0..2**BITS - 1)."""
    ds = Dataset()
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    ds.BitsStored, ds.PixelRepresentation = BITS, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    return apply_windowing(values.astype(np.float64), ds) / (2**BITS - 1)


@pytest.mark.parametrize(("function", "center", "width", "values"), [
    # LINEAR, w = 1: x <= c - 0.5 is the minimum, x > c - 0.5 the maximum.
    ("LINEAR", 100.0, 1.0, [99.0, 99.5, 99.75, 100.0, 101.0]),
    ("LINEAR", 100.5, 1.0, [99.0, 100.0, 100.25, 101.0]),
    # LINEAR: c - 0.5 - (w - 1) / 2 and c - 0.5 + (w - 1) / 2 are the edges.
    ("LINEAR", 100.0, 2.0, [98.0, 99.0, 99.25, 99.5, 100.0, 100.5]),
    ("LINEAR", 128.0, 256.0, [-1.0, 0.0, 0.5, 127.5, 254.5, 255.0, 256.0]),
    # LINEAR_EXACT: c - w / 2 and c + w / 2 are the edges, w = 1 included.
    ("LINEAR_EXACT", 100.0, 1.0, [99.0, 99.5, 99.75, 100.0, 100.5, 101.0]),
    ("LINEAR_EXACT", 50.0, 10.0, [44.0, 45.0, 47.5, 50.0, 55.0, 56.0]),
])
def test_linear_windows_match_pydicom_at_the_edges(function, center, width, values):
    pixels = np.array(values, dtype=np.float32)
    ours = apply_window(pixels, center, width, function)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, _pydicom(pixels, center, width, function),
                               rtol=0, atol=1e-6)


def test_a_window_of_width_one_is_a_step_above_center_minus_half():
    pixels = np.array([99.0, 99.5, 99.5001, 100.0], dtype=np.float32)
    assert apply_window(pixels, 100.0, 1.0).tolist() == [0.0, 0.0, 1.0, 1.0]
