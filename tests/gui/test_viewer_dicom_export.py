"""The Viewer writes its results and annotations back into the image's study as DICOM."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.io import load_image
from cxr_desktop.core.train import TrainConfig, fit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, n_images=30, size=96, seed=8)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(dataset=str(root), arch="small_cnn", size=64, epochs=1,
                         batch_size=8, freeze_epochs=0, pretrained="none", out=str(out),
                         cache_dir=str(tmp_path_factory.mktemp("cache")))
    fit(config, spec=open_dataset(root))
    return out


def _statuses(window):
    said = []
    window.viewer_tab.status_message.connect(said.append)
    return said


def test_results_and_annotations_go_back_into_the_study(main_window, qtbot, run_dir, testdata,
                                                       tmp_path):
    viewer = main_window.viewer_tab
    panel = viewer.model_panel
    panel.load_model(run_dir)
    panel.show_cam.setChecked(True)
    source = testdata("RG1_UNCI.dcm")
    main_window.open_image(str(source))
    qtbot.waitUntil(lambda: panel.cam_result is not None and panel.prediction is not None
                    and not main_window.runner.busy(), timeout=60_000)
    box = Shape("nodule", "rectangle", ((400.0, 500.0), (700.0, 800.0)))
    viewer.annotations.document.add(box)
    said = _statuses(main_window)
    out = tmp_path / "to-pacs"
    viewer.dicom_export.save_results(str(out))
    qtbot.waitUntil(lambda: any(s.startswith("Wrote ") for s in said), timeout=60_000)
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 3
    original = pydicom.dcmread(source, stop_before_pixels=True)
    objects = {f.name.rsplit("_", 1)[1]: pydicom.dcmread(f) for f in files}
    assert set(objects) == {"sr.dcm", "sc.dcm", "pr.dcm"}
    assert (objects["sr.dcm"].Modality, objects["pr.dcm"].Modality) == ("SR", "PR")
    for ds in objects.values():
        assert ds.StudyInstanceUID == original.StudyInstanceUID
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID
    capture = next(f for f in files if f.name.endswith("_sc.dcm"))
    assert load_image(capture).columns > 0  # the Secondary Capture opens in the Viewer
    probability = panel.prediction.probabilities["object"]
    sr = objects["sr.dcm"]
    values = [float(item.MeasuredValueSequence[0].NumericValue)
              for item in _walk(sr.ContentSequence) if "MeasuredValueSequence" in item]
    assert any(abs(v - probability) < 1e-6 for v in values)

    said.clear()
    viewer.dicom_export.export_annotation(str(tmp_path / "shapes"))
    qtbot.waitUntil(lambda: any(s.startswith("Wrote ") for s in said), timeout=60_000)
    state = pydicom.dcmread(next((tmp_path / "shapes").glob("*.dcm")))
    assert state.StudyInstanceUID == original.StudyInstanceUID

    png = tmp_path / "plain.png"
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(png)
    main_window.open_image(str(png))
    qtbot.waitUntil(lambda: panel.prediction is not None and viewer.radiograph is not None
                    and viewer.radiograph.path == str(png)
                    and not main_window.runner.busy(), timeout=60_000)
    said.clear()
    viewer.dicom_export.save_results(str(tmp_path / "png-out"))
    qtbot.waitUntil(lambda: bool(said) and not main_window.runner.busy(), timeout=60_000)
    assert len(said) == 1 and "\n" not in said[0] and "Wrote" not in said[0]
    assert not list(tmp_path.glob("png-out/*.dcm"))


def _walk(sequence):
    for item in sequence:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)
