"""Results and annotations as DICOM in the input's study, read back with pydicom and highdicom.

The inputs are pydicom-data's real CR chest (MONOCHROME1) and its JPEG 2000 twin; the
predictions and maps are made by hand so that every value written is known.
"""

from __future__ import annotations

import gc
import shutil
import warnings

import highdicom as hd
import numpy as np
import pydicom
import pytest
from highdicom.sr.utils import find_content_items
from PIL import Image
from pydicom.sr.codedict import codes
from pydicom.uid import (
    ComprehensiveSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    SecondaryCaptureImageStorage,
)

from cxr_desktop import __version__
from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.dicom_out import (
    RESEARCH_NOTE,
    NoStudyError,
    ResultWriter,
    RunInfo,
    write_annotation,
    write_results,
)
from cxr_desktop.core.errors import FileError
from cxr_desktop.core.infer.cam import CamResult
from cxr_desktop.core.infer.predictor import Prediction
from cxr_desktop.core.io import load_image

RUN = RunInfo(model_name="small_cnn", model_version="best.pt, epoch 2",
              run_id="20260101-120000-small_cnn", device_uid=hd.UID(),
              threshold_classes=("nodule", "effusion"))
PEAK = (700, 900)  # (x, y): column 700, row 900


def prediction(positives=("nodule",), threshold=0.4) -> Prediction:
    probabilities = {"nodule": 0.8123456789, "effusion": 0.25, "normal": 0.1}
    return Prediction(probabilities, "nodule", list(positives), threshold, True, "", None, 1.0)


def cam_on(shape: tuple[int, int]) -> CamResult:
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    heat = np.exp(-((columns - PEAK[0]) ** 2 + (rows - PEAK[1]) ** 2) / (2 * 150.0 ** 2))
    return CamResult("gradcam", "block4", "nodule", heat.astype(np.float32), PEAK, 1.0, False)


@pytest.fixture
def chest(testdata, tmp_path):
    """The CR chest in a folder of its own, loaded as the Viewer loads it."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(testdata("RG1_UNCI.dcm"), folder / "chest.dcm")
    return load_image(folder / "chest.dcm")


def source_header(radiograph) -> pydicom.Dataset:
    return pydicom.dcmread(radiograph.path, stop_before_pixels=True)


def groups_by_class(sr) -> dict[str, hd.sr.MeasurementsAndQualitativeEvaluations]:
    return {g.finding_type.meaning: g for g in sr.content.get_image_measurement_groups()}


def value(group, concept) -> float | None:
    found = group.get_measurements(name=concept)
    return found[0].value if found else None


def test_results_join_the_study_and_read_back(chest, tmp_path):
    out = tmp_path / "out"
    source = source_header(chest)
    gc.collect()  # objects earlier tests left to the collector warn now, not in the block
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = write_results(chest, prediction(), cam_on(chest.pixels.shape), RUN, out)
    # highdicom doubts the file's one-word ReferringPhysicianName, quoting it: never shown.
    # An unclosed file of an earlier test may still be collected inside the block: not ours.
    shown = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
             if not issubclass(w.category, ResourceWarning)]
    assert shown == []
    assert [p.name.rsplit("_", 1)[1] for p in paths] == ["sr.dcm", "sc.dcm", "pr.dcm"]
    assert sorted(out.iterdir()) == sorted(paths)  # nothing else: no temporary files left
    datasets = [pydicom.dcmread(p) for p in paths]
    for path, ds in zip(paths, datasets, strict=True):
        assert path.name.startswith(ds.SOPInstanceUID + "_")
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.PatientID == source.PatientID and ds.PatientName == source.PatientName
        assert ds.SeriesInstanceUID != source.SeriesInstanceUID
        assert ds.SeriesDescription.startswith("20260101-120000-small_cnn ")
        assert ds.SeriesDescription.endswith("research use, not for diagnosis")
        assert len(ds.SeriesDescription) <= 64
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 3  # one modality per series

    sr = hd.sr.srread(paths[0])
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    groups = groups_by_class(sr)
    assert set(groups) == {"nodule", "effusion", "normal"}
    for name, p in prediction().probabilities.items():
        assert value(groups[name], codes.DCM.Probability) == p  # FD keeps the full double
        image = groups[name].source_images[0]
        assert image.referenced_sop_instance_uid == source.SOPInstanceUID
    assert value(groups["nodule"], codes.DCM.ThresholdValue) == 0.4
    assert value(groups["normal"], codes.DCM.ThresholdValue) is None  # not thresholded
    presence = {name: g.get_qualitative_evaluations()[0].value.meaning
                for name, g in groups.items()}
    assert presence == {"nodule": "Present", "effusion": "Absent", "normal": "Absent"}
    texts = [(item.ConceptNameCodeSequence[0].CodeMeaning, item.TextValue)
             for item in find_content_items(groups["nodule"][0], value_type="TEXT")]
    algorithm = [(name, text) for name, text in texts if name.startswith("Algorithm")]
    assert algorithm == [("Algorithm Name", "small_cnn"),
                         ("Algorithm Version", "best.pt, epoch 2"),
                         ("Algorithm Manufacturer", "cxr-desktop"),
                         ("Algorithm Parameters", "run 20260101-120000-small_cnn"),
                         ("Algorithm Parameters", f"cxr-desktop {__version__}")]

    [peak] = sr.content.get_planar_roi_measurement_groups()
    assert peak.finding_type.meaning == "nodule"
    assert peak.roi.graphic_type == hd.sr.GraphicTypeValues.POINT
    # the centre of pixel (column 700, row 900): the first pixel spans 0.0 to 1.0
    assert peak.roi.value.tolist() == [[700.5, 900.5]]
    [image] = peak.roi.ContentSequence  # the point is SELECTED FROM the source image
    assert image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID

    [comment] = find_content_items(sr, name=codes.DCM.Comment, recursive=True)
    assert comment.TextValue.startswith(RESEARCH_NOTE)
    [device] = find_content_items(sr, name=codes.DCM.DeviceObserverUID, recursive=True)
    assert RUN.device_uid == device.UID
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99CXRD"
    assert sr.DeviceSerialNumber == RUN.run_id and sr.VerificationFlag == "UNVERIFIED"


def test_the_secondary_capture_shows_the_map_and_opens_like_any_image(chest, tmp_path):
    paths = write_results(chest, prediction(), cam_on(chest.pixels.shape), RUN, tmp_path / "o")
    sc = pydicom.dcmread(paths[1])
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert sc.ImageComments.startswith(RESEARCH_NOTE)
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source_header(chest) \
        .SOPInstanceUID
    assert sc.PatientOrientation == ["L", "F"] and sc.BurnedInAnnotation == "NO"
    rgb = sc.pixel_array
    assert rgb.shape == (chest.rows, chest.columns, 3)
    x, y = PEAK
    hot, cold = rgb[y, x].astype(int), rgb[1800, 100].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # jet: red at the peak, blue far from it
    reopened = load_image(paths[1])  # what the Viewer does with it
    assert (reopened.rows, reopened.columns) == (chest.rows, chest.columns)


def test_a_large_overlay_is_shrunk_to_2048_pixels(chest, tmp_path):
    big = load_image(chest.path)
    big.pixels = np.ascontiguousarray(np.repeat(chest.pixels, 2, axis=0)[:, :1500])
    sc_path = write_results(big, prediction(), cam_on(big.pixels.shape), RUN, tmp_path / "o")[1]
    sc = pydicom.dcmread(sc_path)
    assert (sc.Rows, sc.Columns) == (2048, round(1500 * 2048 / 3910))
    assert "shrunk by" in sc.DerivationDescription


def test_the_presentation_state_marks_the_peak_on_the_original_pixels(chest, tmp_path):
    shapes = [Shape("nodule", "rectangle", ((100, 120), (300, 250)))]
    paths = write_results(chest, prediction(), cam_on(chest.pixels.shape), RUN, tmp_path / "o",
                          shapes=shapes)
    pr = pydicom.dcmread(paths[2])
    assert pr.SOPClassUID == GrayscaleSoftcopyPresentationStateStorage
    assert pr.PresentationLUTShape == "INVERSE"  # MONOCHROME1 shown as its photometric says
    assert pr.ReferencedSeriesSequence[0].ReferencedImageSequence[0] \
        .ReferencedSOPInstanceUID == source_header(chest).SOPInstanceUID
    layers = {a.GraphicLayer: a for a in pr.GraphicAnnotationSequence}
    assert set(layers) == {"CAM", "ANNOTATIONS", "NOTE"}
    point = layers["CAM"].GraphicObjectSequence[0]
    assert point.GraphicType == "POINT" and list(point.GraphicData) == [700.5, 900.5]
    assert point.GraphicAnnotationUnits == "PIXEL"
    box = layers["ANNOTATIONS"].GraphicObjectSequence[0]
    assert list(box.GraphicData) == [100, 120, 300, 120, 300, 250, 100, 250, 100, 120]
    assert layers["NOTE"].TextObjectSequence[0].UnformattedTextValue == RESEARCH_NOTE


def test_without_a_map_only_the_sr_is_written(chest, tmp_path):
    [path] = write_results(chest, prediction(), None, RUN, tmp_path / "o")
    sr = hd.sr.srread(path)
    assert sr.SOPClassUID != ComprehensiveSRStorage  # the 3D flavour, as highdicom writes
    assert sr.content.get_planar_roi_measurement_groups() == []


def test_one_writer_keeps_a_study_in_one_series_per_kind(chest, testdata, tmp_path):
    twin = tmp_path / "in" / "twin.dcm"
    shutil.copy(testdata("RG1_J2KR.dcm"), twin)  # the same study, JPEG 2000
    writer = ResultWriter(tmp_path / "o")
    first = writer.results(chest, prediction(), cam_on(chest.pixels.shape), RUN)
    second = writer.results(twin, prediction(), None, RUN)
    srs = [pydicom.dcmread(first[0]), pydicom.dcmread(second[0])]
    assert srs[0].SeriesInstanceUID == srs[1].SeriesInstanceUID
    assert [ds.InstanceNumber for ds in srs] == [1, 2]
    assert srs[0].SOPInstanceUID != srs[1].SOPInstanceUID


def test_a_colour_image_gets_no_grayscale_presentation_state(testdata, tmp_path):
    colour = load_image(testdata("SC_rgb.dcm"))
    cam = cam_on(colour.pixels.shape)
    cam.peak = (5, 3)
    paths = write_results(colour, prediction(), cam, RUN, tmp_path / "o")
    assert [p.name.rsplit("_", 1)[1] for p in paths] == ["sr.dcm", "sc.dcm"]
    with pytest.raises(FileError, match="is a colour image"):
        write_annotation(colour, [Shape("x", "rectangle", ((1, 1), (4, 4)))], tmp_path / "o")


def test_a_png_has_no_study(tmp_path):
    png = tmp_path / "chest.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(png)
    with pytest.raises(NoStudyError, match="not a DICOM file"):
        write_results(png, prediction(), None, RUN, tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("where", [".", "results", "results/deeper"])
def test_nothing_is_written_in_or_below_the_input_folder(chest, where, tmp_path):
    out = tmp_path / "in" / where
    with pytest.raises(FileError, match="is the input's folder or inside it") as caught:
        write_results(chest, prediction(), None, RUN, out)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in (tmp_path / "in").rglob("*")) == ["chest.dcm"]


def test_a_header_without_study_uid_is_one_line(chest, tmp_path):
    ds = pydicom.dcmread(chest.path)
    del ds.StudyInstanceUID
    ds.save_as(tmp_path / "in" / "nostudy.dcm")
    with pytest.raises(FileError) as caught:
        write_results(tmp_path / "in" / "nostudy.dcm", prediction(), None, RUN, tmp_path / "o")
    assert str(caught.value) == (f"{tmp_path / 'in' / 'nostudy.dcm'}: has no StudyInstanceUID, "
                                 "so the results cannot be placed in its study")


def test_an_unwritable_folder_is_one_line_and_leaves_nothing(chest, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    with pytest.raises(FileError, match="cannot write the DICOM file"):
        write_results(chest, prediction(), None, RUN, blocker / "o")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "in"]


def test_a_saved_annotation_exports_as_a_presentation_state(chest, tmp_path):
    shapes = [
        Shape("box", "rectangle", ((10, 20), (30, 40))),
        Shape("oval", "ellipse", ((100, 200), (300, 260))),
        Shape("tri", "polygon", ((0, 0), (40, 0), (0, 40))),
        Shape("line", "freehand", ((5, 5), (6, 9), (8, 12))),
        Shape("arrow", "arrow", ((-50, 10), (5000, 20))),  # drawn past the edges: clipped
        Shape("", "text", ((400, 400),), text="see here"),
    ]
    path = write_annotation(chest, shapes, tmp_path / "ann")
    pr = pydicom.dcmread(path)
    assert pr.StudyInstanceUID == source_header(chest).StudyInstanceUID
    assert pr.ContentLabel == "CXR_ANNOTATIONS"
    assert pr.SeriesDescription == "annotations PR: research use, not for diagnosis"
    [annotations] = [a for a in pr.GraphicAnnotationSequence if a.GraphicLayer == "ANNOTATIONS"]
    graphics = [(g.GraphicType, [float(v) for v in g.GraphicData])
                for g in annotations.GraphicObjectSequence]
    assert graphics == [
        ("POLYLINE", [10, 20, 30, 20, 30, 40, 10, 40, 10, 20]),
        ("ELLIPSE", [100, 230, 300, 230, 200, 200, 200, 260]),  # major axis first
        ("POLYLINE", [0, 0, 40, 0, 0, 40, 0, 0]),
        ("POLYLINE", [5, 5, 6, 9, 8, 12]),
        ("POLYLINE", [0, 10, chest.columns, 20]),
    ]
    texts = [t.UnformattedTextValue for t in annotations.TextObjectSequence]
    assert texts == ["box", "oval", "tri", "line", "arrow", "see here"]
    with pytest.raises(FileError, match="no annotation shapes"):
        write_annotation(chest, [], tmp_path / "ann")
