"""Malformed numbers in a real DICOM header (RG1_UNCI.dcm and friends, edited here).

An optional display or metadata element that is not usable is ignored with a note and the
image still loads; an element the pixels need makes loading fail with one line naming the file
and the element. The values are written raw, as a broken modality would write them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from cxr_desktop.cli import info
from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io import apply_window, load_image, to_display
from cxr_desktop.core.io.window import percentile_window

AUTO = "ignored, automatic window used"


def set_raw(ds: pydicom.Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Put ``value`` in the dataset as the bytes a file would hold, unchecked by pydicom."""
    tag = Tag(keyword)
    if len(value) % 2:
        value += b"\x00" if vr in ("US", "SS", "OB", "OW") else b" "
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def edited(testdata, tmp_path: Path, elements: dict[str, tuple[str, bytes]],
           name: str = "RG1_UNCI.dcm") -> Path:
    ds = pydicom.dcmread(testdata(name))
    for keyword, (vr, value) in elements.items():
        set_raw(ds, keyword, vr, value)
    path = tmp_path / f"edited_{name}"
    ds.save_as(path)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ImageLoadError) as info_:
        load_image(path)
    message = str(info_.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return info_.value.reason


@pytest.fixture(scope="module")
def rg1(testdata):
    return load_image(testdata("RG1_UNCI.dcm"))


# --- Window Center / Width (VOI, display only) ----------------------------------------------

@pytest.mark.parametrize(("keyword", "raw", "note"), [
    ("WindowCenter", b"abc", f"Window Center (0028,1050) 'abc' is not a number: {AUTO}"),
    ("WindowWidth", b"wide", f"Window Width (0028,1051) 'wide' is not a number: {AUTO}"),
    ("WindowCenter", b"1500\\x", f"Window Center (0028,1050) '1500\\x' is not a number: {AUTO}"),
    ("WindowCenter", b"nan", f"Window Center (0028,1050) 'nan' is not a finite number: {AUTO}"),
])
def test_a_window_that_is_not_a_number_is_ignored_with_a_note(testdata, tmp_path, rg1,
                                                              keyword, raw, note):
    path = edited(testdata, tmp_path, {keyword: ("DS", raw)})
    assert pydicom.dcmread(path).get_item(keyword).value.rstrip() == raw  # as written
    rg = load_image(path)
    assert note in rg.notes
    assert rg.window_source == "percentiles"
    assert rg.window == percentile_window(rg.pixels)
    np.testing.assert_array_equal(rg.pixels, rg1.pixels)  # the image itself is untouched
    assert to_display(rg).std() > 20


@pytest.mark.parametrize("width", [b"0", b"0.5", b"-30000"])
def test_a_linear_window_narrower_than_one_is_ignored(testdata, tmp_path, width):
    """PS3.3 C.11.2.1.2.1: Window Width shall be >= 1 for LINEAR (the default function)."""
    rg = load_image(edited(testdata, tmp_path, {"WindowWidth": ("DS", width)}))
    assert f"Window Width (0028,1051) '{width.decode()}' is less than 1: {AUTO}" in rg.notes
    assert rg.window_source == "percentiles" and rg.window[1] >= 1
    np.testing.assert_array_equal(to_display(rg),
                                  (apply_window(rg.pixels, *percentile_window(rg.pixels))
                                   * np.float32(255) + np.float32(0.5)).astype(np.uint8))


def test_linear_exact_and_sigmoid_need_a_width_above_zero(testdata, tmp_path):
    """PS3.3 C.11.2.1.3: LINEAR_EXACT and SIGMOID take any width > 0, not 0."""
    exact = load_image(edited(testdata, tmp_path, {"WindowWidth": ("DS", b"0.5"),
                                                   "VOILUTFunction": ("CS", b"LINEAR_EXACT")}))
    assert exact.window == (32767 - 15000, 0.5) and exact.window_source == "file"
    assert not any("Window Width" in note for note in exact.notes)
    sigmoid = load_image(edited(testdata, tmp_path, {"WindowWidth": ("DS", b"0"),
                                                     "VOILUTFunction": ("CS", b"SIGMOID")}))
    assert sigmoid.window_source == "percentiles" and sigmoid.voi_function == "SIGMOID"
    assert f"Window Width (0028,1051) '0' is not above 0 (SIGMOID): {AUTO}" in sigmoid.notes


def test_a_window_center_without_a_width_is_ignored(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("RG1_UNCI.dcm"))
    del ds.WindowWidth
    path = tmp_path / "center_only.dcm"
    ds.save_as(path)
    rg = load_image(path)
    assert rg.window_source == "percentiles"
    assert ("Window Center (0028,1050) without Window Width (0028,1051): "
            f"{AUTO}") in rg.notes


def test_an_unknown_voi_lut_function_is_read_as_linear(testdata, tmp_path, rg1):
    rg = load_image(edited(testdata, tmp_path, {"VOILUTFunction": ("CS", b"CUBIC")}))
    assert rg.voi_function == "LINEAR" and rg.window == rg1.window
    assert ("VOI LUT Function (0028,1056) 'CUBIC' is not one of LINEAR, LINEAR_EXACT, "
            "SIGMOID: LINEAR used") in rg.notes


def test_a_malformed_voi_lut_is_ignored_and_the_automatic_window_used(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("vlut_04.dcm"))
    ds.VOILUTSequence[0].LUTData = ds.VOILUTSequence[0].LUTData[:10]  # 10 of 256 entries
    path = tmp_path / "short_lut.dcm"
    ds.save_as(path)
    rg = load_image(path)
    assert rg.voi_lut is None and rg.window_source == "percentiles"
    note = next(n for n in rg.notes if n.startswith("VOI LUT Sequence (0028,3010)"))
    assert note.endswith("ignored, automatic window used") and "cannot be used" in note
    np.testing.assert_array_equal(rg.pixels, load_image(testdata("vlut_04.dcm")).pixels)


# --- Pixel spacing (metadata) -----------------------------------------------------------------

def test_rg1_zero_pixel_spacing_is_unknown(rg1):
    assert pydicom.dcmread(rg1.path).PixelSpacing == [0, 0]
    assert rg1.pixel_spacing is None and rg1.describe()["pixel_spacing"] is None
    assert ("Pixel Spacing (0028,0030) '0.000\\0.000' is not positive: pixel spacing unknown"
            in rg1.notes)


@pytest.mark.parametrize(("raw", "problem"), [
    (b"a\\b", "is not a number"),
    (b"-0.2\\0.2", "is not positive"),
    (b"0.2\\0", "is not positive"),
    (b"0.2", "has 1 value, 2 expected"),
    (b"inf\\0.2", "is not a finite number"),
])
def test_unusable_pixel_spacing_is_unknown_with_a_note(testdata, tmp_path, rg1, raw, problem):
    rg = load_image(edited(testdata, tmp_path, {"PixelSpacing": ("DS", raw)}))
    assert rg.pixel_spacing is None
    assert (f"Pixel Spacing (0028,0030) '{raw.decode()}' {problem}: pixel spacing unknown"
            in rg.notes)
    assert rg.window == rg1.window and rg.window_source == "file"


def test_a_good_pixel_spacing_is_kept_and_a_bad_one_falls_back_to_the_imager(testdata,
                                                                            tmp_path):
    good = load_image(edited(testdata, tmp_path, {"PixelSpacing": ("DS", b"0.139\\0.14")}))
    assert good.pixel_spacing == (0.139, 0.14)
    assert not any("Spacing" in note for note in good.notes)
    imager = load_image(edited(testdata, tmp_path, {
        "PixelSpacing": ("DS", b"a\\b"), "ImagerPixelSpacing": ("DS", b"0.15\\0.15")}))
    assert imager.pixel_spacing == (0.15, 0.15)
    assert ("Pixel Spacing (0028,0030) 'a\\b' is not a number: ignored, Imager Pixel Spacing "
            "(0018,1164) used") in imager.notes


# --- Number of Frames -------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "problem"), [(b"abc", "is not a number"),
                                              (b"1.5", "is not a whole number")])
def test_an_unusable_number_of_frames_shows_frame_one(testdata, tmp_path, rg1, raw, problem):
    rg = load_image(edited(testdata, tmp_path, {"NumberOfFrames": ("IS", raw)}))
    assert rg.frames == 1
    assert (f"Number of Frames (0028,0008) '{raw.decode()}' {problem}: ignored, frame 1 shown"
            in rg.notes)
    np.testing.assert_array_equal(rg.pixels, rg1.pixels)


# --- Elements the pixels need: one-line errors naming the element ------------------------------

@pytest.mark.parametrize(("keyword", "raw", "reason"), [
    ("RescaleSlope", b"abc", "Rescale Slope (0028,1053) 'abc' is not a number: the pixel "
                             "values cannot be computed"),
    ("RescaleIntercept", b"-10x", "Rescale Intercept (0028,1052) '-10x' is not a number: the "
                                  "pixel values cannot be computed"),
])
def test_a_rescale_that_is_not_a_number_is_a_one_line_error(testdata, tmp_path, keyword, raw,
                                                             reason):
    other = "RescaleIntercept" if keyword == "RescaleSlope" else "RescaleSlope"
    path = edited(testdata, tmp_path, {keyword: ("DS", raw),
                                       other: ("DS", b"0" if other == "RescaleIntercept"
                                               else b"1")})
    assert load_error(path) == reason


def test_a_rescale_slope_without_intercept_is_not_applied(testdata, tmp_path, rg1):
    """As pydicom's apply_modality_lut: the rescale needs both elements."""
    rg = load_image(edited(testdata, tmp_path, {"RescaleSlope": ("DS", b"2")}))
    np.testing.assert_array_equal(rg.pixels, rg1.pixels)
    assert ("Rescale Slope (0028,1053) without Rescale Intercept (0028,1052): ignored, "
            "no rescale") in rg.notes


@pytest.mark.parametrize(("keyword", "reason"), [
    ("Rows", "Rows (0028,0010) '513\\1027' has 2 values, 1 expected: the pixel data cannot "
             "be decoded"),
    ("BitsStored", "Bits Stored (0028,0101) '513\\1027' has 2 values, 1 expected: the pixel "
                   "data cannot be decoded"),
])
def test_pixel_description_elements_of_the_wrong_length_are_one_line_errors(
        testdata, tmp_path, keyword, reason):
    path = edited(testdata, tmp_path, {keyword: ("US", b"\x01\x02\x03\x04")})
    assert load_error(path) == reason


def test_a_rows_value_pydicom_cannot_convert_is_a_one_line_error(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("MR_small.dcm"))
    tag = Tag("Rows")
    ds[tag] = RawDataElement(tag, "US", 3, b"\x01\x02\x03", 0, False, True)
    path = tmp_path / "rows.dcm"
    ds.save_as(path)
    reason = load_error(path)
    assert reason.startswith("Rows (0028,0010) ") and "cannot be read" in reason


def test_a_malformed_modality_lut_is_a_one_line_error(testdata, tmp_path):
    ds = pydicom.dcmread(testdata("mlut_18.dcm"))
    ds.ModalityLUTSequence[0].LUTData = ds.ModalityLUTSequence[0].LUTData[:10]
    path = tmp_path / "short_mlut.dcm"
    ds.save_as(path)
    assert load_error(path).startswith("Modality LUT Sequence (0028,3000) cannot be applied (")


# --- The command line: a bad header does not stop a batch ---------------------------------------

def test_info_reports_a_file_with_a_bad_window_and_then_a_png(testdata, tmp_path, capsys):
    bad = edited(testdata, tmp_path, {"WindowCenter": ("DS", b"abc"),
                                      "PixelSpacing": ("DS", b"a\\b")})
    png = tmp_path / "chest.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 48), np.uint8)).save(png)
    status = info.run(argparse.Namespace(files=[str(bad), str(png)], json=False,
                                         show_phi=False))
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert f"{bad}\n  DICOM  1955  1841" in out
    assert f"note: Window Center (0028,1050) 'abc' is not a number: {AUTO}" in out
    assert "note: Pixel Spacing (0028,0030) 'a\\b' is not a number: pixel spacing unknown" in out
    assert f"{png}\n  PNG    64    48" in out
    assert "Traceback" not in out and "ValueError" not in out
