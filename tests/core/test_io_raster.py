"""PNG (8/16 bit; gray, RGB, RGBA, palette) and JPEG become the same kind of Radiograph."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxr_desktop.core.io import load_image, model_input, to_display

RNG = np.random.default_rng(7)
GRAY8 = RNG.integers(0, 256, (40, 60), dtype=np.uint8)


def test_gray8_png_round_trips_through_display(tmp_path):
    path = tmp_path / "g8.png"
    Image.fromarray(GRAY8).save(path)
    rg = load_image(path)
    assert rg.source_format == "PNG" and rg.bits_stored == 8
    assert rg.photometric == "MONOCHROME2"
    np.testing.assert_array_equal(rg.pixels, GRAY8.astype(np.float32))
    # An 8-bit export is shown as it is: the default window is the identity.
    np.testing.assert_array_equal(to_display(rg), GRAY8)


def test_gray16_png_keeps_16_bits(tmp_path):
    data = RNG.integers(0, 4096, (50, 30), dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(data).save(path)
    rg = load_image(path)
    assert rg.bits_stored == 16 and rg.window_source == "percentiles"
    np.testing.assert_array_equal(rg.pixels, data.astype(np.float32))
    lo, hi = np.percentile(data, [0.5, 99.5])
    assert rg.window == pytest.approx(((lo + hi) / 2, hi - lo))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_png_becomes_luminance(tmp_path, mode):
    rgb = RNG.integers(0, 256, (20, 30, len(mode)), dtype=np.uint8)
    path = tmp_path / f"{mode}.png"
    Image.fromarray(rgb, mode).save(path)
    rg = load_image(path)
    expected = rgb[..., :3].astype(float) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(rg.pixels, expected, atol=1e-3)


def test_palette_png(tmp_path):
    image = Image.fromarray(GRAY8).convert("P")
    path = tmp_path / "pal.png"
    image.save(path)
    rg = load_image(path)
    assert rg.photometric == "PALETTE COLOR"
    expected = np.asarray(image.convert("RGB"), dtype=float) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(rg.pixels, expected, atol=1e-3)


def test_jpeg(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    path = tmp_path / "x.jpg"
    Image.fromarray(smooth).save(path, quality=95)
    rg = load_image(path)
    assert rg.source_format == "JPEG"
    assert np.abs(rg.pixels - smooth).max() <= 6


def test_model_input_resizes_the_display_image(tmp_path, testdata):
    rg = load_image(testdata("RG1_UNCI.dcm"))
    small = model_input(rg, 224)
    assert small.shape == (224, 224) and small.dtype == np.uint8
    expected = np.asarray(Image.fromarray(to_display(rg)).resize((224, 224)), dtype=float)
    assert np.abs(small.astype(float) - expected).mean() < 2.0
