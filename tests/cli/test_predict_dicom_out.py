"""``predict --dicom-out``: the SR and images written read back in the input's study, with the
probabilities and the CAM peak the JSON line printed (issue #15, item 2)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.sr.codedict import codes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from evaluation_runs import trained_runs

from cxr_desktop.cli import main
from cxr_desktop.core.dicom_out import RESEARCH_NOTE
from cxr_desktop.core.io import load_image


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return trained_runs(tmp_path_factory.mktemp("evaluation-runs"))


@pytest.fixture
def inputs(testdata, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(testdata("RG1_UNCI.dcm"), folder / "chest.dcm")
    shutil.copy(testdata("RG1_J2KR.dcm"), folder / "chest_j2k.dcm")
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(folder / "photo.png")
    return folder


def test_results_read_back_in_the_study_with_the_printed_values(tiny, inputs, tmp_path,
                                                                 capsys):
    run, out = tiny.runs[0], tmp_path / "dicom"
    code = main(["predict", str(run), str(inputs / "chest.dcm"), str(inputs / "chest_j2k.dcm"),
                 str(inputs / "photo.png"), "--cam", "gradcam", "--dicom-out", str(out),
                 "--json", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0  # a PNG without a study is a note, not a failure
    records = {Path(r["path"]).name: r for r in map(json.loads, captured.out.splitlines())}
    assert records["photo.png"]["dicom_out"] == [] and records["photo.png"]["error"] is None
    assert captured.err.splitlines() == [
        f"note: {inputs / 'photo.png'}: not a DICOM file, so there is no study to add the "
        "results to; DICOM output skipped"]

    written = [Path(p) for name in ("chest.dcm", "chest_j2k.dcm")
               for p in records[name]["dicom_out"]]
    assert sorted(out.iterdir()) == sorted(written)  # no temporary file left beside them
    sr_series = set()
    for name in ("chest.dcm", "chest_j2k.dcm"):
        record = records[name]
        source = pydicom.dcmread(inputs / name, stop_before_pixels=True)
        sr_path, sc_path, pr_path = map(Path, record["dicom_out"])
        sr = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(sr_path))
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        assert sr.SeriesInstanceUID != source.SeriesInstanceUID
        # the series is named after the model and the run (its folder's name)
        assert sr.SeriesDescription == f"small_cnn {run.name} SR: research use, not for " \
                                       "diagnosis"
        assert sr.DeviceSerialNumber == run.name and sr.ManufacturerModelName == "small_cnn"
        sr_series.add(sr.SeriesInstanceUID)
        probabilities = {
            group.finding_type.meaning:
                group.get_measurements(name=codes.DCM.Probability)[0].value
            for group in sr.content.get_image_measurement_groups()}
        # the JSON rounds to 6 decimals; the SR holds the double (FloatingPointValue)
        assert {k: round(v, 6) for k, v in probabilities.items()} == record["probabilities"]
        [peak] = sr.content.get_planar_roi_measurement_groups()
        assert peak.finding_type.meaning == record["cam_class"]
        x, y = record["cam_peak"]  # a pixel's column and row: the SR names its centre
        assert peak.roi.value.tolist() == [[x + 0.5, y + 0.5]]

        sc = pydicom.dcmread(sc_path)
        assert sc.StudyInstanceUID == source.StudyInstanceUID
        assert RESEARCH_NOTE in sc.ImageComments and "research use" in sc.SeriesDescription
        shown = load_image(sc_path)  # the Viewer's loader opens it
        assert (shown.rows, shown.columns) == (source.Rows, source.Columns)
        pr = pydicom.dcmread(pr_path)
        assert pr.StudyInstanceUID == source.StudyInstanceUID and pr.Modality == "PR"
    assert len(sr_series) == 1  # both images are of one study: one results series


@pytest.mark.parametrize("where", [".", "results"])
def test_a_folder_in_the_inputs_folder_is_refused_before_the_model_loads(inputs, tmp_path,
                                                                         capsys, where):
    out = inputs / where
    code = main(["predict", str(tmp_path / "no-model"), str(inputs / "chest.dcm"),
                 "--dicom-out", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert err == f"cxr-desktop: {out}: is the input's folder or inside it, where nothing is " \
                  "written; choose a folder elsewhere\n"
    assert sorted(p.name for p in inputs.iterdir()) == ["chest.dcm", "chest_j2k.dcm",
                                                        "photo.png"]
