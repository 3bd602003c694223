"""load_image on the real DICOMs of pydicom-data, checked against pydicom computed here."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from cxr_desktop.core.io import load_image, to_display


def _region(img: np.ndarray, r0: float, r1: float, c0: float, c1: float) -> float:
    h, w = img.shape
    return float(img[int(r0 * h):int(r1 * h), int(c0 * w):int(c1 * w)].mean())


def test_rg1_monochrome1_is_inverted_bone_bright_lung_dark(testdata):
    path = testdata("RG1_UNCI.dcm")
    rg = load_image(path)
    assert rg.photometric == "MONOCHROME1"
    assert (rg.rows, rg.columns) == (1955, 1841)
    assert rg.bits_stored == 15 and rg.modality == "CR" and rg.body_part == "CHEST"
    assert rg.pixels.dtype == np.float32 and rg.pixels.ndim == 2
    display = to_display(rg)
    assert display.dtype == np.uint8 and display.shape == (1955, 1841)
    # Spine and mediastinum (centre) brighter than both lung fields.
    spine = _region(display, 0.4, 0.6, 0.45, 0.55)
    assert spine > _region(display, 0.3, 0.5, 0.2, 0.35) + 40
    assert spine > _region(display, 0.3, 0.5, 0.65, 0.8) + 40
    # Independently: pydicom's windowing of the stored values, inverted afterwards.
    ds = pydicom.dcmread(path)
    reference = 255 * (1 - apply_voi_lut(ds.pixel_array, ds).astype(float) / (2**15 - 1))
    assert np.abs(reference - display).max() <= 1.0


def test_rg1_window_comes_from_file_in_display_polarity(testdata):
    rg = load_image(testdata("RG1_UNCI.dcm"))
    assert rg.window_source == "file"
    # WindowCenter 15000 on stored values; inverted about 0 + 32767.
    assert rg.window == (32767 - 15000, 30000)
    raw = pydicom.dcmread(testdata("RG1_UNCI.dcm")).pixel_array
    np.testing.assert_array_equal(rg.pixels, 32767 - raw.astype(np.float32))


def test_jpeg2000_twin_decodes_to_nearly_the_same_image(testdata):
    plain = to_display(load_image(testdata("RG1_UNCI.dcm"))).astype(float)
    j2k = to_display(load_image(testdata("RG1_J2KR.dcm"))).astype(float)
    assert plain.shape == j2k.shape
    assert np.corrcoef(plain.ravel(), j2k.ravel())[0, 1] > 0.999


def test_modality_lut_sequence_is_applied(testdata):
    path = testdata("mlut_18.dcm")
    ds = pydicom.dcmread(path)
    assert "ModalityLUTSequence" in ds
    expected = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    rg = load_image(path)
    np.testing.assert_array_equal(rg.pixels, expected)
    assert not np.array_equal(expected, ds.pixel_array.astype(np.float32))


def test_voi_lut_sequence_is_applied(testdata):
    path = testdata("vlut_04.dcm")
    ds = pydicom.dcmread(path)
    reference = apply_voi_lut(ds.pixel_array, ds).astype(float)
    reference = 255 * (reference - reference.min()) / (reference.max() - reference.min())
    rg = load_image(path)
    assert rg.voi_lut is not None and rg.window_source == "voi_lut"
    assert np.abs(to_display(rg).astype(float) - reference).max() <= 0.5
    # A window chosen by the user replaces the LUT.
    windowed = to_display(rg, window=(float(rg.pixels.mean()), 10.0))
    assert not np.array_equal(windowed, to_display(rg))


def test_sigmoid_voi_function_matches_pydicom(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG1_UNCI.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.VOILUTFunction = "SIGMOID"
    path = tmp_path / "sigmoid.dcm"
    ds.save_as(path)
    rg = load_image(path)
    assert rg.voi_function == "SIGMOID"
    reference = 255 * apply_voi_lut(ds.pixel_array, ds).astype(float) / (2**15 - 1)
    assert np.abs(to_display(rg).astype(float) - reference).max() <= 1.0


def test_rescale_slope_and_intercept(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG1_UNCI.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
    path = tmp_path / "rescaled.dcm"
    ds.save_as(path)
    rg = load_image(path)
    stored = ds.pixel_array.astype(np.float32)
    lo, hi = -1000.0, 2 * 32767 - 1000.0
    np.testing.assert_allclose(rg.pixels, (lo + hi) - (2 * stored - 1000), rtol=0, atol=1e-3)
    assert rg.value_range == (lo, hi)


@pytest.mark.parametrize(("compressed", "plain"), [
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("emri_small_RLE.dcm", "emri_small.dcm"),
    ("JPEG2000.dcm", "JPEG2000_UNC.dcm"),
    ("SC_rgb_rle.dcm", "SC_rgb.dcm"),
    ("US1_J2KR.dcm", "US1_UNCR.dcm"),
])
def test_lossless_transfer_syntaxes_match_their_uncompressed_twin(testdata, compressed, plain):
    np.testing.assert_array_equal(load_image(testdata(compressed)).pixels,
                                  load_image(testdata(plain)).pixels)


def test_jpeg_baseline_and_lossless_process_14(testdata):
    for name in ("JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG-LL.dcm", "SC_rgb_jpeg_gdcm.dcm",
                 "JPGExtended.dcm"):
        rg = load_image(testdata(name))
        ds = pydicom.dcmread(testdata(name))
        assert (rg.rows, rg.columns) == (ds.Rows, ds.Columns)
        assert rg.pixels.std() > 0


def test_colour_becomes_luminance(testdata):
    rgb = load_image(testdata("SC_rgb.dcm"))
    ds = pydicom.dcmread(testdata("SC_rgb.dcm"))
    expected = ds.pixel_array.astype(float) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(rgb.pixels, expected, atol=1e-3)
    ybr = load_image(testdata("SC_ybr_full_uncompressed.dcm"))
    assert ybr.photometric == "YBR_FULL"
    assert np.abs(ybr.pixels - rgb.pixels).max() <= 2.0
    assert any("luminance" in note for note in ybr.notes)


def test_multiframe_takes_the_first_frame_and_says_so(testdata):
    rg = load_image(testdata("SC_rgb_2frame.dcm"))
    ds = pydicom.dcmread(testdata("SC_rgb_2frame.dcm"))
    first = ds.pixel_array[0].astype(float) @ np.array([0.299, 0.587, 0.114])
    assert rg.frames == 2
    np.testing.assert_allclose(rg.pixels, first, atol=1e-3)
    assert any("frame 1 of 2" in note for note in rg.notes)


def test_out_of_scope_metadata_of_the_tibia(testdata):
    rg = load_image(testdata("RG3_UNCI.dcm"))
    assert rg.body_part == "EXTREMITY" and rg.modality == "CR"


def test_phi_is_kept_apart(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG1_UNCI.dcm"))
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    path = tmp_path / "phi.dcm"
    ds.save_as(path)
    rg = load_image(path)
    assert rg.phi["PatientName"] == "Doe^Jane"
    for text in (repr(rg), str(rg.describe())):
        assert "Doe" not in text and "MRN-0042" not in text
    assert rg.describe(show_phi=True)["phi"]["PatientID"] == "MRN-0042"
