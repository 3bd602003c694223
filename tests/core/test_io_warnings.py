"""pydicom's warnings become one-line notes on the radiograph, in worker threads too."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pydicom
import pytest

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io import load_image
from cxr_desktop.core.io.header import dicom_header
from cxr_desktop.core.io.warnings_capture import capture_warnings, warning_notes

PADDING = ("pydicom: The pixel data is 8320 bytes long, which indicates it contains 128 bytes "
           "of excess padding to be removed")


def test_padded_pixel_data_is_a_note_not_stderr(testdata, capfd):
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        rg = load_image(testdata("MR_small_padded.dcm"))
    assert escaped == []
    assert capfd.readouterr().err == ""
    assert rg.notes == (PADDING,)
    np.testing.assert_array_equal(rg.pixels, load_image(testdata("MR_small.dcm")).pixels)
    for note in rg.notes:
        assert "\n" not in note and "site-packages" not in note


def test_explicit_vr_mismatch_is_a_note(testdata):
    rg = load_image(testdata("SC_rgb_jpeg.dcm"))
    assert ("pydicom: Expected explicit VR, but found implicit VR - using implicit VR for "
            "reading") in rg.notes


def test_truncated_file_is_one_error_and_no_warning_leaks(testdata, capfd):
    path = testdata("emri_small_jpeg_2k_lossless_too_short.dcm")
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        with pytest.raises(ImageLoadError) as raised:
            load_image(path)
        dicom_header(path)  # the header panel reads it too
    assert escaped == []
    assert capfd.readouterr().err == ""
    assert str(raised.value) == f"{path}: no pixel data in this DICOM file"


def test_the_file_path_in_a_warning_is_shortened_to_its_name(tmp_path):
    path = tmp_path / "deep" / "x.dcm"
    with capture_warnings() as caught:
        warnings.warn(f"End of file reached in file {path}\nsecond line.", UserWarning,
                      stacklevel=1)
    assert warning_notes(caught, path) == ["End of file reached in file x.dcm second line"]


def test_deprecations_are_not_notes(tmp_path):
    with capture_warnings() as caught:
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    with warnings.catch_warnings(record=True) as passed:
        warnings.simplefilter("always")
        assert warning_notes(caught, tmp_path / "a.dcm") == []
    assert [str(w.message) for w in passed] == ["old API"]


def test_concurrent_loads_keep_their_own_notes_and_restore_the_warnings_state(testdata,
                                                                             tmp_path):
    """As the thumbnail grid loads: four threads, warnings raised by pydicom while reading
    (SC_rgb_jpeg) and while decoding (MR_small_padded) land on their own file only."""
    ds = pydicom.dcmread(testdata("MR_small.dcm"))
    ds.NumberOfFrames = "0"
    zero_frames = tmp_path / "zero_frames.dcm"
    ds.save_as(zero_frames)
    padded, plain = testdata("MR_small_padded.dcm"), testdata("MR_small.dcm")
    implicit = testdata("SC_rgb_jpeg.dcm")
    expected = {
        padded: (PADDING,),
        implicit: ("colour (RGB) converted to luminance",
                   "pydicom: Expected explicit VR, but found implicit VR - using implicit VR "
                   "for reading"),
        zero_frames: ("Number of Frames (0028,0008) '0' is less than 1: ignored, frame 1 "
                      "shown",),
        plain: (),
    }
    filters, show = list(warnings.filters), warnings.showwarning
    paths = list(expected) * 6
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(load_image, paths))
    assert list(warnings.filters) == filters and warnings.showwarning is show
    for path, rg in zip(paths, results, strict=True):
        assert rg.notes == expected[path]


def test_a_warning_of_another_thread_is_not_taken(recwarn):
    """While one thread captures, a warning raised by another goes where it would have gone."""
    inside, done = threading.Event(), threading.Event()
    captured: list[list[str]] = []

    def capturing() -> None:
        with capture_warnings() as caught:
            warnings.warn("from the loader", UserWarning, stacklevel=1)
            inside.set()
            done.wait(10)
        captured.append([str(w.message) for w in caught])

    thread = threading.Thread(target=capturing)
    thread.start()
    assert inside.wait(10)
    warnings.warn("from elsewhere", UserWarning, stacklevel=1)
    done.set()
    thread.join(10)
    assert captured == [["from the loader"]]
    assert [str(w.message) for w in recwarn] == ["from elsewhere"]
