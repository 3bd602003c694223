"""The main window starts offscreen, shows images and the device, and closes cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QMessageBox

from cxr_desktop.core.io import load_image, to_display


def test_tabs_menus_and_device(main_window):
    tabs = [main_window.tabs.tabText(i) for i in range(main_window.tabs.count())]
    assert tabs == ["Dataset", "Training", "Viewer"]
    menus = [a.text().replace("&", "") for a in main_window.menuBar().actions()]
    assert menus == ["File", "Help"]
    file_actions = [a.text().replace("&", "") for a in main_window.menuBar().actions()[0]
                    .menu().actions() if a.text()]
    assert file_actions[:2] == ["Open image...", "Open dataset..."]
    assert "Recent" in file_actions and "Quit" in file_actions
    assert main_window.device_label.text().startswith(("CPU:", "GPU:"))


def test_model_libraries_are_imported_off_the_gui_thread_after_start_up(qtbot,
                                                                        monkeypatch):
    """A first run would otherwise import timm in its worker, whose extensions hold the GIL
    for 100-200 ms at a time: the event loop stalled as long."""
    from cxr_desktop.gui import main_window as module

    threads = []
    monkeypatch.setattr(module, "import_model_libraries",
                        lambda: threads.append(threading.get_ident()))
    window = module.MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(threads) and not window.runner.busy(), timeout=30_000)
    assert threads[0] != threading.get_ident() and window.device is not None
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)


def test_about_names_versions_and_device(main_window, monkeypatch):
    shown = {}
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.update(text=text))
    main_window.show_about()
    for word in ("cxr-desktop 0.1.0", "PyTorch", "CUDA", "pydicom", "Compute device: C"):
        assert word in shown["text"].replace("Compute device: G", "Compute device: C")


def test_open_dicom_shows_display_chain_and_info(main_window, qtbot, testdata):
    path = testdata("RG1_UNCI.dcm")
    main_window.open_image(str(path))
    viewer = main_window.viewer_tab
    qtbot.waitUntil(lambda: viewer.radiograph is not None, timeout=20_000)
    assert main_window.tabs.currentWidget() is viewer
    shown = viewer.canvas.displayed_image()
    np.testing.assert_array_equal(shown, to_display(load_image(path)))
    assert shown.flags["C_CONTIGUOUS"] and shown.dtype == np.uint8
    # A preset really changes what is shown; invert flips it.
    viewer.preset.setCurrentIndex(1)
    assert not np.array_equal(viewer.canvas.displayed_image(), shown)
    viewer.preset.setCurrentIndex(0)
    viewer.invert.setChecked(True)
    np.testing.assert_array_equal(viewer.canvas.displayed_image(), 255 - shown)


def test_bad_file_gives_a_message_not_a_crash(main_window, qtbot, tmp_path, testdata):
    viewer = main_window.viewer_tab
    assert viewer.canvas.notice.isVisibleTo(viewer) and "Open a radiograph" in \
        viewer.canvas.notice.text()
    main_window.open_image(str(testdata("MR_small.dcm")))
    qtbot.waitUntil(lambda: viewer.radiograph is not None, timeout=20_000)
    assert not viewer.canvas.notice.isVisibleTo(viewer)
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"")
    main_window.open_image(str(bad))
    qtbot.waitUntil(lambda: "empty file" in main_window.statusBar().currentMessage(),
                    timeout=10_000)
    # Nothing of the previous image stays on screen; the canvas says why, for as long as
    # it is shown (the status bar forgets after 10 s).
    assert viewer.radiograph is None and viewer.canvas.displayed_image() is None
    assert viewer.canvas.notice.isVisibleTo(viewer)
    assert str(bad) in viewer.canvas.notice.text() and "empty file" in viewer.canvas.notice.text()
    assert viewer.annotations.image_path is None and viewer.info.rowCount() == 0


def test_newest_request_wins(main_window, qtbot, testdata):
    viewer = main_window.viewer_tab
    viewer.open_image(testdata("RG1_J2KR.dcm"))  # slow (JPEG 2000)
    viewer.open_image(testdata("MR_small.dcm"))  # fast, asked for last
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)
    assert viewer.radiograph.path.endswith("MR_small.dcm")


def test_training_uses_the_augmentations_of_the_dataset_preview(main_window):
    from cxr_desktop.core.train import AugmentSettings

    preview = main_window.dataset_tab.augment
    chosen = AugmentSettings(flip=True, rotate_deg=3.0, scale=0.2, translate=0.0,
                             brightness=0.05, contrast=0.0)
    preview.set_settings(chosen)
    assert main_window.training_tab.augment_settings == chosen
    main_window.training_tab.augment.setChecked(False)
    assert main_window.training_tab.augment_settings == chosen  # kept for when it is on again


def test_dropping_a_file_on_the_viewer_opens_it(main_window, qtbot, testdata):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(testdata("MR_small.dcm")))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    main_window.viewer_tab.dropEvent(event)
    qtbot.waitUntil(lambda: main_window.viewer_tab.radiograph is not None
                    and not main_window.runner.busy(), timeout=20_000)
    assert main_window.viewer_tab.radiograph.path.endswith("MR_small.dcm")


def test_a_recent_entry_opens_its_file_once_however_often_the_menu_was_shown(
        main_window, monkeypatch, testdata):
    from cxr_desktop.gui.settings import remember_recent

    remember_recent("images", str(testdata("MR_small.dcm")))
    opened: list[str] = []
    monkeypatch.setattr(main_window.viewer_tab, "open_image", opened.append)
    for _ in range(3):
        main_window.recent_menu.aboutToShow.emit()
    entry = next(a for a in main_window.recent_menu.actions() if "MR_small" in a.text())
    main_window.recent_menu.triggered.emit(entry)
    assert opened == [str(testdata("MR_small.dcm"))]


def test_closing_during_training_stops_it_saves_a_checkpoint_then_closes(
        main_window, qtbot, tmp_path):
    from cxr_desktop.core.data import open_dataset
    from cxr_desktop.core.data.demo import make_demo_dataset
    from cxr_desktop.core.runs.registry import RunRegistry

    make_demo_dataset(tmp_path / "demo", n_images=40, size=96, seed=5)
    tab = main_window.training_tab
    tab.set_dataset(open_dataset(tmp_path / "demo"))
    tab.arch.setCurrentIndex(tab.arch.findData("small_cnn"))
    tab.size.setValue(64)
    tab.epochs.setValue(50)
    tab.freeze.setValue(0)
    tab.batch.setValue(8)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.plots.batch_x) >= 1, timeout=120_000)

    assert not main_window.close()  # refused while the run goes on: Stop is asked for
    assert main_window.isVisible() and not main_window.centralWidget().isEnabled()
    assert "waiting for the training run" in main_window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not main_window.isVisible(), timeout=60_000)
    assert not tab.engine.is_running()
    record = RunRegistry().list()[0]
    assert record.status == "stopped" and record.epochs_done < 50
    assert (Path(record.run_dir) / "last.pt").is_file()
