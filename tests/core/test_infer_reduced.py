"""Decoding at reduced resolution for the model: same chain, nearly the same model input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io import load_image, model_input
from cxr_desktop.core.io.reduced import load_image_for_model, reduction_level


def close(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.abs(a - b).mean()), float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_reduction_level_keeps_the_model_size():
    assert reduction_level(1955, 1841, 224) == 3  # 1841 / 8 = 231 >= 224 > 1841 / 16
    assert reduction_level(1760, 1760, 224) == 2
    assert reduction_level(1955, 1841, 224, max_level=1) == 1
    assert reduction_level(200, 300, 224) == 0


@pytest.mark.parametrize("name", ["RG1_J2KR.dcm", "RG1_UNCI.dcm"])
def test_reduced_model_input_is_close_to_the_full_one(name, testdata):
    full = load_image(testdata("RG1_UNCI.dcm"))  # the same image, uncompressed
    image = load_image_for_model(testdata(name), 224)
    assert image.factor == 8 and image.shape == (1955, 1841)
    rg = image.radiograph
    assert rg.pixels.shape == (245, 231) and rg.path.endswith(name)
    assert (rg.photometric, rg.body_part, rg.window) == ("MONOCHROME1", "CHEST", full.window)
    mad, corr = close(model_input(rg, 224), model_input(full, 224))
    assert mad < 2.5 and corr > 0.99, (mad, corr)


@pytest.mark.filterwarnings("ignore:End of file reached")
def test_other_files_load_in_full(tmp_path, testdata):
    png = tmp_path / "a.png"
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64).astype(np.uint8)).save(png)
    image = load_image_for_model(png, 16)
    assert image.factor == 1 and image.radiograph.pixels.shape == (64, 64)
    small = load_image_for_model(testdata("CT_small.dcm"), 224)
    assert small.factor == 1
    with pytest.raises(ImageLoadError, match="no pixel data"):
        load_image_for_model(testdata("emri_small_jpeg_2k_lossless_too_short.dcm"), 64)
