"""The main window: three tabs, the File and Help menus, the compute device in the status bar."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget

from cxr_desktop.core.device import DeviceInfo, describe_device
from cxr_desktop.core.models.registry import import_model_libraries
from cxr_desktop.gui.about import about_text
from cxr_desktop.gui.dialogs.preferences import PreferencesDialog, load_preferences
from cxr_desktop.gui.settings import recent_files, remember_recent
from cxr_desktop.gui.tabs.dataset_tab import DatasetTab
from cxr_desktop.gui.tabs.training_tab import TrainingTab
from cxr_desktop.gui.tabs.viewer_tab import ViewerTab
from cxr_desktop.gui.workers import TaskRunner

log = logging.getLogger(__name__)

IMAGE_FILTER = ("Radiographs and DICOM file-sets (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff "
                "DICOMDIR);;All files (*)")


def _warm_up() -> None:
    """Import the model libraries with the cyclic garbage collector paused: a collection in
    this worker thread could destroy an unreachable Qt window here, and Qt then waits for
    the GUI thread, a deadlock if that thread waits for this import's module lock."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        import_model_libraries()
    finally:
        if collecting:
            gc.enable()


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("cxr-desktop")
        self.resize(1280, 820)
        self.runner = TaskRunner(self)
        self.device: DeviceInfo | None = None
        self.dataset_tab = DatasetTab(self.runner)
        self.training_tab = TrainingTab(self.runner)
        self.viewer_tab = ViewerTab(self.runner)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.dataset_tab, "Dataset")
        self.tabs.addTab(self.training_tab, "Training")
        self.tabs.addTab(self.viewer_tab, "Viewer")
        self.setCentralWidget(self.tabs)
        self.device_label = QLabel("Device: ...")
        self.statusBar().addPermanentWidget(self.device_label)
        for tab in (self.dataset_tab, self.training_tab, self.viewer_tab):
            tab.status_message.connect(self.show_status)
        self.viewer_tab.image_loaded.connect(self._remember_image)
        self.dataset_tab.dataset_opened.connect(self._on_dataset_opened)
        self.dataset_tab.open_image_requested.connect(self.open_image)
        self.training_tab.open_in_viewer.connect(self.open_with_model)
        self.training_tab.engine.running_changed.connect(self._on_training_running)
        self.dataset_tab.augment.settings_changed.connect(self.training_tab.set_augment_settings)
        self._build_menus()
        self._close_poll = QTimer(self, interval=100)
        self._close_poll.timeout.connect(self._close_if_idle)
        QTimer.singleShot(0, self._probe_device)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_image = QAction("Open &image...", self, shortcut=QKeySequence.StandardKey.Open)
        open_image.triggered.connect(self._choose_image)
        open_dataset = QAction("Open &dataset...", self, shortcut="Ctrl+Shift+O")
        open_dataset.triggered.connect(self.dataset_tab.choose_dataset)
        file_menu.addAction(open_image)
        file_menu.addAction(open_dataset)
        save_dicom = QAction("Save results as DI&COM...", self)
        save_dicom.setStatusTip("The Viewer's prediction, CAM and annotations as DICOM in the "
                                "image's own study (SR, Secondary Capture, presentation state)")
        save_dicom.triggered.connect(self.viewer_tab.dicom_export.choose_and_save_results)
        export_shapes = QAction("Export annotations as DICOM...", self)
        export_shapes.setStatusTip("The Viewer's annotations as a presentation state on the "
                                   "image")
        export_shapes.triggered.connect(
            self.viewer_tab.dicom_export.choose_and_export_annotation)
        file_menu.addAction(save_dicom)
        file_menu.addAction(export_shapes)
        self.recent_menu = file_menu.addMenu("&Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.recent_menu.triggered.connect(self._open_recent)
        file_menu.addSeparator()
        preferences = QAction("&Preferences...", self,
                              shortcut=QKeySequence.StandardKey.Preferences)
        preferences.setMenuRole(QAction.MenuRole.PreferencesRole)
        preferences.triggered.connect(self.show_preferences)
        file_menu.addAction(preferences)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About cxr-desktop", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        entries = [("image", p) for p in recent_files("images")]
        entries += [("dataset", p) for p in recent_files("datasets")]
        if not entries:
            self.recent_menu.addAction("(nothing yet)").setEnabled(False)
        for kind, path in entries:
            action = self.recent_menu.addAction(f"{Path(path).name}  ({kind})")
            action.setData((kind, path))
            action.setToolTip(path)

    @Slot(QAction)
    def _open_recent(self, action: QAction) -> None:
        if not action.data():
            return
        kind, path = action.data()
        if kind == "image":
            self.open_image(path)
        else:
            self.dataset_tab.open_dataset(path)

    def _choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    @Slot(str)
    def open_image(self, path: str) -> None:
        self.tabs.setCurrentWidget(self.viewer_tab)
        self.viewer_tab.open_image(path)

    @Slot(bool)
    def _on_training_running(self, running: bool) -> None:
        if not running:  # a run was added or finished: the Viewer can use it now
            self.viewer_tab.model_panel.refresh_runs()

    @Slot(str, str)
    def open_with_model(self, path: str, run_dir: str, method: str = "",
                        layer: str = "") -> None:
        self.tabs.setCurrentWidget(self.viewer_tab)
        self.viewer_tab.open_with_model(path, run_dir, method, layer)

    def open_demo(self) -> None:
        self.dataset_tab.open_demo()

    @Slot(str)
    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    @Slot(str)
    def _remember_image(self, path: str) -> None:
        remember_recent("images", path)

    @Slot(object)
    def _on_dataset_opened(self, spec) -> None:
        remember_recent("datasets", str(spec.source.get("path") or spec.root))
        self.training_tab.set_dataset(spec)
        self.viewer_tab.annotations.set_labels(spec.classes, default=spec.positive_class)
        self.viewer_tab.annotations.set_dataset_shapes(
            {os.path.abspath(spec.abspath(item)): item.shapes for item in spec.items
             if item.shapes})

    def _probe_device(self) -> None:
        self.runner.submit("device", describe_device, load_preferences().device,
                           done=self._on_device, failed=self.show_status)

    def _on_device(self, device: DeviceInfo) -> None:
        self.device = device
        self.device_label.setText(device.label)
        self.training_tab.set_device(device)
        self.runner.submit("warm-up", _warm_up, done=lambda _: None, failed=self.show_status)

    def show_preferences(self) -> None:
        dialog = PreferencesDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def show_about(self) -> None:
        QMessageBox.about(self, "About cxr-desktop", about_text(self.device))

    def background_work(self) -> str:
        """What still runs in a worker thread, in words; "" when nothing does."""
        busy = []
        if self.training_tab.engine.is_running():
            busy.append("the training run to save its checkpoint")
        if self.runner.busy():
            busy.append("a background task")
        return " and ".join(busy)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Close only when no worker runs: Stop is asked for, the window waits (greyed, a
        status line saying what for) and closes itself when the work has ended."""
        busy = self.background_work()
        if busy:
            event.ignore()
            self._close_when_idle(busy)
            return
        self._close_poll.stop()
        self.training_tab.shutdown()
        self.dataset_tab.shutdown()
        self.viewer_tab.shutdown()
        self.runner.shutdown()
        super().closeEvent(event)

    def _close_when_idle(self, busy: str) -> None:
        if self._close_poll.isActive():  # asked again while waiting
            answer = QMessageBox.question(
                self, "Quit now?",
                f"Still waiting for {busy}.\n\nQuit without waiting? Checkpoints and "
                "annotations already saved are kept; the work in progress is lost.")
            if answer == QMessageBox.StandardButton.Yes:
                self.viewer_tab.shutdown()
                log.warning("quit while waiting for %s", busy)
                os._exit(0)  # every file is written atomically: nothing is left half-written
            return
        self.training_tab.engine.stop()
        self.training_tab.evaluation.shutdown()  # a localization stops at its next batch
        self.dataset_tab.shutdown()
        self.centralWidget().setEnabled(False)
        self.statusBar().showMessage(f"Closing: waiting for {busy}...")
        self._close_poll.start()

    def _close_if_idle(self) -> None:
        if not self.background_work():
            self.close()
