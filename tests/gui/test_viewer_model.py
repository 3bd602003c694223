"""The Viewer's Model page: a real tiny run predicts, draws its CAM and warns out of scope."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
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
    assert np.nanmax(panel.cam_result.map) == pytest.approx(1.0, abs=1e-3)
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
    from cxr_desktop.gui.tabs.viewer_tab import folder_images

    with pytest.raises(FileError, match="gone: cannot list the folder"):
        folder_images(tmp_path / "gone")
