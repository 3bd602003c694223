"""The Viewer's Model page: a real tiny run predicts, draws its CAM and warns out of scope."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.io import to_display
from cxr_desktop.core.train import TrainConfig, fit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, n_images=40, size=96, seed=5)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(dataset=str(root), arch="small_cnn", size=64, epochs=1,
                         batch_size=8, freeze_epochs=0, pretrained="none", out=str(out),
                         cache_dir=str(tmp_path_factory.mktemp("cache")))
    fit(config, spec=open_dataset(root))
    return out, root


def _wait_prediction(window, qtbot):
    panel = window.viewer_tab.model_panel
    qtbot.waitUntil(lambda: panel.prediction is not None and not window.runner.busy(),
                    timeout=60_000)
    return panel


def test_prediction_bars_cam_overlay_and_scope(main_window, qtbot, run_dir, testdata):
    run, demo_root = run_dir
    viewer = main_window.viewer_tab
    panel = viewer.model_panel
    panel.run_choice.insertItem(0, "another run", "/elsewhere/another-run")
    panel.run_choice.setCurrentIndex(0)
    panel.load_model(run)
    qtbot.waitUntil(lambda: panel.predictor is not None, timeout=60_000)
    assert (run / "scope.npz").is_file()  # fitted when the run finished
    assert panel.run_choice.currentData() == str(run.resolve())  # the picker names it
    image = sorted((demo_root / "test").glob("*.jpg"))[0]
    main_window.open_image(str(image))
    panel = _wait_prediction(main_window, qtbot)
    probabilities = panel.prediction.probabilities
    assert set(probabilities) == {"no_object", "object"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    bars = [item for item in panel.bars.items() if hasattr(item, "opts")
            and "width" in item.opts]
    # Binary: one bar, the positive class's probability; the call is said in words.
    assert bars and list(bars[0].opts["width"]) == pytest.approx([probabilities["object"]])
    called = "object" if probabilities["object"] >= panel.prediction.threshold else "no_object"
    assert f"Predicted: <b>{called}</b>" in panel.verdict.text()
    assert panel.prediction.in_scope, panel.prediction.scope_reason
    # C toggles the overlay; the map sits on the original image grid.
    assert not viewer.canvas.overlay_item.isVisible()
    panel.show_cam.setChecked(True)
    qtbot.waitUntil(lambda: panel.cam_result is not None and not main_window.runner.busy(),
                    timeout=60_000)
    assert viewer.canvas.overlay_item.isVisible()
    assert viewer.canvas.overlay_item.image.shape == (96, 96)
    # Normalised at the feature maps' size, then resized (as grad-cam does): the peak of
    # the resized map is 1 or a little under, never over.
    assert 0.98 <= np.nanmax(panel.cam_result.map) <= 1.0 + 1e-6
    panel.show_cam.setChecked(False)
    qtbot.waitUntil(lambda: not viewer.canvas.overlay_item.isVisible(), timeout=10_000)
    # A real tibia radiograph is not what the model was trained on (nor is any real film:
    # this model only saw synthetic phantoms); the body part alone says so.
    panel.prediction = None
    main_window.open_image(str(testdata("RG3_UNCI.dcm")))
    panel = _wait_prediction(main_window, qtbot)
    assert not panel.prediction.in_scope
    assert panel.warning.isVisibleTo(viewer) and "Out of scope" in panel.warning.text()
    assert "EXTREMITY" in panel.prediction.scope_reason


def test_folder_navigation_and_phi(main_window, qtbot, tmp_path, testdata):
    import pydicom

    for name in ("a.dcm", "b.dcm"):
        ds = pydicom.dcmread(testdata("MR_small.dcm"))
        ds.PatientName = "Doe^Jane"
        ds.save_as(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.dcm").write_bytes(b"")
    (tmp_path / "sub.dcm").mkdir()
    viewer = main_window.viewer_tab
    main_window.open_image(str(tmp_path / "a.dcm"))
    qtbot.waitUntil(lambda: viewer.folder_list.count() == 2, timeout=20_000)
    assert [viewer.folder_list.item(i).text() for i in range(2)] == ["a.dcm", "b.dcm"]
    qtbot.waitUntil(lambda: viewer.folder_list.currentRow() == 0, timeout=20_000)
    def texts() -> list[str]:
        return [viewer.info.itemAt(i).widget().text()
                for i in range(viewer.info.count()) if viewer.info.itemAt(i).widget()]

    assert not any("Doe" in t for t in texts())
    header = viewer.header
    qtbot.waitUntil(lambda: bool(header.rows) and not main_window.runner.busy(), timeout=20_000)
    def values() -> list[str]:
        return [header.tree.topLevelItem(i).text(3)
                for i in range(header.tree.topLevelItemCount())]

    assert "(hidden: patient data)" in values() and "Doe^Jane" not in values()
    viewer.show_phi.setChecked(True)
    assert any("Doe^Jane" in t for t in texts())
    qtbot.waitUntil(lambda: "Doe^Jane" in values(), timeout=20_000)
    header.filter.setText("patientname")
    assert header.tree.topLevelItemCount() == 1
    viewer.next_image()
    qtbot.waitUntil(lambda: viewer.radiograph is not None
                    and viewer.radiograph.path.endswith("b.dcm"), timeout=20_000)
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)


def test_a_cam_that_arrives_after_the_overlay_was_switched_off_is_not_shown(
        main_window, qtbot, run_dir):
    run, demo_root = run_dir
    viewer = main_window.viewer_tab
    panel = viewer.model_panel
    panel.load_model(run)
    qtbot.waitUntil(lambda: panel.predictor is not None, timeout=60_000)
    first, second = sorted((demo_root / "test").glob("*.jpg"))[:2]
    main_window.open_image(str(first))
    _wait_prediction(main_window, qtbot)
    panel.show_cam.setChecked(True)
    qtbot.waitUntil(lambda: panel.cam_result is not None and not main_window.runner.busy(),
                    timeout=60_000)
    panel.prediction = None
    main_window.open_image(str(second))
    qtbot.waitUntil(lambda: viewer.canvas.radiograph.path == str(second), timeout=60_000)
    # The prediction of the new image, with its CAM, is computing; the user turns CAM off.
    panel.show_cam.setChecked(False)
    _wait_prediction(main_window, qtbot)
    assert not viewer.canvas.overlay_item.isVisible() and panel.cam_result is None


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path):
    from cxr_desktop.core.errors import FileError
    from cxr_desktop.gui.widgets.folder_list import folder_images

    with pytest.raises(FileError, match="gone: cannot list the folder"):
        folder_images(tmp_path / "gone")


def _show_cam(main_window, qtbot, image) -> None:
    panel = main_window.viewer_tab.model_panel
    panel.show_cam.setChecked(True)
    panel.cam_result = None
    main_window.open_image(str(image))
    qtbot.waitUntil(lambda: panel.cam_result is not None and not main_window.runner.busy(),
                    timeout=60_000)


def test_the_cam_peak_is_said_inside_or_outside_the_annotations(main_window, qtbot, run_dir):
    from cxr_desktop.core.annotations import Shape
    from cxr_desktop.gui.widgets.cam_peak import peak_verdict

    run, demo_root = run_dir
    viewer = main_window.viewer_tab
    panel = viewer.model_panel
    panel.load_model(run)
    qtbot.waitUntil(lambda: panel.predictor is not None, timeout=60_000)
    image = sorted((demo_root / "test").glob("*.jpg"))[0]
    _show_cam(main_window, qtbot, image)
    x, y = panel.cam_result.peak
    # A box of the dataset in the corner farthest from the peak, then the image opened again.
    fx, fy = (80.0 if x < 48 else 0.0), (80.0 if y < 48 else 0.0)
    far = Shape("object", "rectangle", ((fx, fy), (fx + 8.0, fy + 8.0)))
    viewer.annotations.set_dataset_shapes({str(image.resolve()): [far]})
    _show_cam(main_window, qtbot, image)
    assert panel.cam_result.peak == (x, y)
    expected = peak_verdict((x + 0.5, y + 0.5), [far], "object")
    assert expected.startswith("CAM peak outside every annotation (nearest: 'object', ")
    cx, cy = x + 0.5, y + 0.5
    distance = float(np.hypot(max(fx - cx, 0, cx - fx - 8), max(fy - cy, 0, cy - fy - 8)))
    assert distance > 20 and f"{distance:.0f} px away)" in expected
    assert panel.peak.text() == expected and panel.peak.isVisibleTo(viewer)
    marker = viewer.canvas.peak_item.data  # the cross on the peak pixel's centre
    assert (marker["x"][0], marker["y"][0]) == (x + 0.5, y + 0.5)
    assert expected in main_window.statusBar().currentMessage()
    # A box drawn around the peak: inside, at once (no new CAM needed).
    around = Shape("nodule", "rectangle", ((x - 2.0, y - 2.0), (x + 3.0, y + 3.0)))
    viewer.annotations.document.add(around)
    assert panel.peak.text() == "CAM peak inside the annotation 'nodule'"
    viewer.annotations.document.delete(1)
    assert panel.peak.text() == expected
    # No region left (an arrow does not count): nothing is said.
    viewer.annotations.document.reset(
        [Shape("object", "arrow", ((x + 0.0, y + 0.0), (x + 9.0, y + 9.0)))], (96, 96))
    assert not panel.peak.isVisibleTo(viewer)
    viewer.annotations.document.reset([], (96, 96))  # nothing to autosave


def test_a_large_dicom_gets_a_small_overlay_stretched_over_it(main_window, qtbot, run_dir,
                                                               testdata):
    run, _ = run_dir
    viewer = main_window.viewer_tab
    panel = viewer.model_panel
    panel.load_model(run)
    qtbot.waitUntil(lambda: panel.predictor is not None, timeout=60_000)
    _show_cam(main_window, qtbot, testdata("RG1_UNCI.dcm"))
    overlay = viewer.canvas.overlay_item
    rows, columns = viewer.radiograph.rows, viewer.radiograph.columns
    assert overlay.isVisible() and overlay.image.dtype == np.uint8
    assert max(overlay.image.shape) == 512 and panel.cam_result.map.shape == (rows, columns)
    covered = overlay.mapRectToParent(overlay.boundingRect())
    assert (covered.width(), covered.height()) == pytest.approx((columns, rows))
    # The grid is the map, shrunk: its peak lands where the map's does.
    gy, gx = np.unravel_index(np.argmax(overlay.image), overlay.image.shape)
    px, py = panel.cam_result.peak
    assert abs((gx + 0.5) * columns / overlay.image.shape[1] - px) < columns / 50
    assert abs((gy + 0.5) * rows / overlay.image.shape[0] - py) < rows / 50
    np.testing.assert_array_equal(viewer.canvas.displayed_image(),
                                  to_display(viewer.radiograph))


def test_an_image_opened_with_a_run_shows_its_dataset_shapes(main_window, qtbot, run_dir):
    from cxr_desktop.core.data import open_dataset

    run, demo_root = run_dir
    spec = open_dataset(demo_root)
    item = next(i for i in spec.items if i.split == "test" and i.shapes)
    viewer = main_window.viewer_tab
    viewer.annotations.set_dataset_shapes({})  # as if no dataset were open
    main_window.open_with_model(str(spec.abspath(item)), str(run))
    panel = viewer.model_panel
    qtbot.waitUntil(lambda: panel.cam_result is not None and not main_window.runner.busy(),
                    timeout=60_000)
    assert viewer.annotations.document.shapes == tuple(item.shapes)
    assert panel.peak.text().startswith("CAM peak ")


def test_a_miss_opens_with_the_method_and_layer_it_was_measured_with(main_window, qtbot,
                                                                     run_dir):
    from cxr_desktop.core.data import open_dataset

    run, demo_root = run_dir
    spec = open_dataset(demo_root)
    item = next(i for i in spec.items if i.split == "test" and i.shapes)
    panel = main_window.viewer_tab.model_panel
    main_window.open_with_model(str(spec.abspath(item)), str(run), "gradcampp", "block3")
    qtbot.waitUntil(lambda: panel.cam_result is not None and not main_window.runner.busy(),
                    timeout=60_000)
    assert (panel.method.currentData(), panel.layer.currentText()) == ("gradcampp", "block3")
    assert (panel.cam_result.method, panel.cam_result.layer) == ("gradcampp", "block3")


def test_a_dicomdir_lists_its_images_by_patient_study_series(main_window, qtbot, tmp_path,
                                                            testdata):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
    from fileset_helpers import make_fileset

    cd = make_fileset(tmp_path, testdata)
    viewer = main_window.viewer_tab
    folder = viewer.folder_list
    main_window.open_image(str(cd))  # the folder holding the DICOMDIR
    qtbot.waitUntil(lambda: viewer.radiograph is not None and not main_window.runner.busy(),
                    timeout=30_000)
    headings = [folder.item(r).text() for r in range(folder.count())
                if not folder.item(r).data(Qt.ItemDataRole.UserRole)]
    assert len(folder.image_rows()) == 5  # the SR record is not listed
    assert all(h.startswith("patient ") and " / series " in h for h in headings)
    assert not any("PAT-" in h or "Test^" in h for h in headings)
    first = Path(folder.item(folder.image_rows()[0]).data(Qt.ItemDataRole.UserRole))
    assert Path(viewer.radiograph.path) == first
    assert folder.currentRow() == folder.image_rows()[0]
    viewer.next_image()  # Page Down: the next image, over a heading when there is one
    qtbot.waitUntil(lambda: Path(viewer.radiograph.path) != first
                    and not main_window.runner.busy(), timeout=30_000)
    assert folder.currentRow() == folder.image_rows()[1]
