"""Viewer tab: one radiograph, its window/level, and what the file says about itself.

An image is decoded and put through the display chain in a worker (``load_for_view``): the
GUI thread only hands the finished uint8 array to the canvas. An image opened with a run
(from the Evaluate page) also gets the shapes of the run's dataset, so its CAM peak can be
compared with them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.evaluate.suite import run_dataset
from cxr_desktop.core.io import Radiograph, load_image, to_display
from cxr_desktop.core.io.fileset import dicomdir_in, is_dicomdir
from cxr_desktop.core.io.window import full_range_window, percentile_window
from cxr_desktop.gui.drops import accept_file_drag, dropped_path
from cxr_desktop.gui.viewer_dicom import ViewerDicomExport
from cxr_desktop.gui.widgets.annotation_panel import AnnotationPanel
from cxr_desktop.gui.widgets.folder_list import FolderList
from cxr_desktop.gui.widgets.header_panel import HeaderPanel
from cxr_desktop.gui.widgets.image_canvas import ImageCanvas
from cxr_desktop.gui.widgets.model_panel import ModelPanel
from cxr_desktop.gui.workers import TaskRunner


def dicomdir_for(path: Path) -> Path | None:
    """The DICOMDIR ``path`` is, or the one directly in the folder ``path``."""
    if is_dicomdir(path):
        return path
    return dicomdir_in(path) if path.is_dir() else None


@dataclass
class OpenedImage:
    """What the loading worker hands back: the image, its display array at the file's own
    window, and the shapes a run's dataset holds for it (empty when none)."""

    radiograph: Radiograph
    display: np.ndarray
    shapes: list[Shape] = field(default_factory=list)


@lru_cache(maxsize=8)
def _run_shapes(run_dir: str) -> dict[str, list[Shape]]:
    spec = run_dataset(run_dir)
    return {os.path.abspath(spec.abspath(item)): list(item.shapes) for item in spec.items
            if item.shapes}


def load_for_view(path: str, run_dir: str | None = None) -> OpenedImage:
    """Runs in a worker: decode ``path``, make its display array and, with ``run_dir``,
    find its shapes in the run's dataset (read once per run)."""
    radiograph = load_image(path)
    shapes: list[Shape] = []
    if run_dir:
        try:
            shapes = _run_shapes(str(Path(run_dir).resolve())).get(os.path.abspath(path), [])
        except (OSError, ValueError, CxrError):
            shapes = []  # the run's dataset is gone: the image still opens, without them
    return OpenedImage(radiograph, to_display(radiograph), shapes)


PRESETS = ("File default", "Full range", "Auto (0.5-99.5%)", "Lung (dark range)",
           "Bone (bright range)")


class ViewerTab(QWidget):
    status_message = Signal(str)
    image_loaded = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self.canvas = ImageCanvas()
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.preset.setToolTip("Window/level presets; right-drag on the image adjusts it")
        self.invert = QCheckBox("Invert")
        fit = QPushButton("Fit")
        one = QPushButton("1:1")
        self.window_label = QLabel("")
        toolbar = QHBoxLayout()
        for widget in (QLabel("Window:"), self.preset, self.invert, fit, one, self.window_label):
            toolbar.addWidget(widget)
        toolbar.addStretch(1)
        self.info = QFormLayout()
        self.show_phi = QCheckBox("Show patient data (PHI)")
        self.show_phi.setToolTip("Patient and study identifiers stay hidden until you ask")
        info_box = QWidget()
        info_layout = QVBoxLayout(info_box)
        info_layout.addLayout(self.info)
        info_layout.addWidget(self.show_phi)
        info_layout.addStretch(1)
        self.folder_list = FolderList(runner)
        self.annotations = AnnotationPanel(self.canvas, runner)
        self.addActions(self.annotations.toolbar.shortcut_actions())
        self.model_panel = ModelPanel(self.canvas, runner)
        self.model_panel.follow_shapes(self.annotations.document)
        self.side_tabs = QTabWidget()
        # A short screen scrolls the Model page rather than squeezing its lines together.
        self.model_scroll = QScrollArea()
        self.model_scroll.setWidget(self.model_panel)
        self.model_scroll.setWidgetResizable(True)
        self.model_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.side_tabs.addTab(self.model_scroll, "Model")
        self.side_tabs.addTab(info_box, "Info")
        self.header = HeaderPanel(runner)
        self.side_tabs.addTab(self.header, "Header")
        self.side_tabs.addTab(self.annotations, "Annotations")
        self.side_tabs.addTab(self.folder_list, "Folder")
        self.setAcceptDrops(True)
        for text, keys, slot in (("Toggle CAM", "C", self.model_panel.show_cam.toggle),
                                 ("Next image", "PgDown", self.next_image),
                                 ("Previous image", "PgUp", self.previous_image)):
            action = QAction(text, self, shortcut=keys)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
        self.side_tabs.setMinimumWidth(300)
        splitter = QSplitter()
        splitter.addWidget(self.canvas)
        splitter.addWidget(self.side_tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([900, 340])
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(self.annotations.toolbar)
        layout.addWidget(splitter, 1)
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.invert.toggled.connect(self.canvas.set_inverted)
        fit.clicked.connect(self.canvas.fit)
        one.clicked.connect(self.canvas.one_to_one)
        self.canvas.hovered.connect(self._on_hover)
        self.canvas.window_changed.connect(self._on_window_changed)
        self.annotations.status_message.connect(self.status_message)
        self.model_panel.status_message.connect(self.status_message)
        self.show_phi.toggled.connect(self._refresh_info)
        self.show_phi.toggled.connect(self.header.set_show_phi)
        self.dicom_export = ViewerDicomExport(self, runner)
        self.dicom_export.status_message.connect(self.status_message)
        self.folder_list.image_chosen.connect(self._on_folder_image)
        self.folder_list.status_message.connect(self.status_message)

    @property
    def radiograph(self) -> Radiograph | None:
        return self.canvas.radiograph

    def open_image(self, path: str | Path, run_dir: str | Path | None = None) -> None:
        """Open ``path`` (with ``run_dir``: and the shapes its dataset holds for it); a
        DICOMDIR, or a folder holding one, lists its images on the Folder page and opens
        the first."""
        listing = dicomdir_for(Path(path))
        if listing is not None:
            self.side_tabs.setCurrentWidget(self.folder_list)
            self.folder_list.show_fileset(listing)
            return
        self.status_message.emit(f"Loading {Path(path).name}...")
        self._runner.submit("viewer.load", load_for_view, str(path),
                            None if run_dir is None else str(run_dir),
                            done=self._on_loaded, failed=self._on_failed)

    def open_with_model(self, path: str | Path, run_dir: str | Path, method: str = "",
                        layer: str = "") -> None:
        """Open an image with a run's model, its CAM (``method`` at ``layer`` when given:
        the map the Evaluate page measured) and the annotations of the run's dataset (from
        the Evaluate page's top losses and localization misses)."""
        self.model_panel.load_model(run_dir, method, layer)
        self.model_panel.show_cam.setChecked(True)
        self.side_tabs.setCurrentWidget(self.model_scroll)
        self.open_image(path, run_dir)

    def next_image(self) -> None:
        self._step(1)

    def previous_image(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        path = self.folder_list.step(delta)
        if path:
            self.open_image(path)

    def _on_folder_image(self, path: str) -> None:
        if self.radiograph is None or Path(self.radiograph.path) != Path(path):
            self.open_image(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_file_drag(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_path(event)
        if path:
            self.open_image(path)

    def shutdown(self) -> None:
        """Save the current image's unsaved annotations (the window calls this on close)."""
        self.annotations.autosave()

    def _on_loaded(self, opened: OpenedImage) -> None:
        radiograph = opened.radiograph
        if opened.shapes:
            self.annotations.add_dataset_shapes({os.path.abspath(radiograph.path):
                                                 opened.shapes})
        self.annotations.set_image(radiograph.path, (radiograph.rows, radiograph.columns))
        self.preset.blockSignals(True)  # the canvas shows the file's own window already
        self.preset.setCurrentIndex(0)
        self.preset.blockSignals(False)
        self.canvas.set_radiograph(radiograph, opened.display)
        self.model_panel.request_prediction()
        # The rest after the image is painted, in a later turn of the event loop.
        QTimer.singleShot(1, self, partial(self._describe, radiograph))
        notes = "; ".join(radiograph.notes)
        self.status_message.emit(f"Opened {Path(radiograph.path).name}" +
                                 (f" ({notes})" if notes else ""))
        self.image_loaded.emit(radiograph.path)

    def _describe(self, radiograph: Radiograph) -> None:
        """The Info, Header and Folder pages of the image just shown (if it still is)."""
        if radiograph is not self.radiograph:
            return
        self._refresh_info()
        self.header.set_image(radiograph.path, radiograph.source_format == "DICOM")
        self.folder_list.show_folder_of(Path(radiograph.path))

    def _on_failed(self, message: str) -> None:
        """The image asked for did not open: nothing of the previous one stays on screen
        (its prediction or CAM would pass for this one's); the canvas says why."""
        self.annotations.clear()
        self.canvas.clear(f"Cannot open this image.\n\n{message}")
        self.model_panel.clear_prediction()
        self.header.set_image("", False)
        self._refresh_info()
        self.window_label.setText("")
        self.status_message.emit(message)

    def _apply_preset(self, index: int) -> None:
        rg = self.canvas.radiograph
        if rg is None:
            return
        if index == 0:
            self.canvas.set_window(None)
        elif index == 1:
            self.canvas.set_window(full_range_window(*rg.value_range))
        elif index == 2:
            self.canvas.set_window(percentile_window(rg.pixels))
        elif index == 3:
            self.canvas.set_window(percentile_window(rg.pixels, 1.0, 60.0))
        else:
            self.canvas.set_window(percentile_window(rg.pixels, 40.0, 99.8))

    def _on_window_changed(self, center: float, width: float) -> None:
        self.window_label.setText(f"C {center:.0f}  W {width:.0f}")

    def _on_hover(self, col: int, row: int, value: float) -> None:
        self.status_message.emit(f"x {col}  y {row}  value {value:g}")

    def _refresh_info(self) -> None:
        radiograph = self.radiograph
        while self.info.rowCount():
            self.info.removeRow(0)
        if radiograph is None:
            return
        for key, value in radiograph.describe(show_phi=self.show_phi.isChecked()).items():
            if key in ("path", "notes"):
                continue
            if key == "phi":
                for name, text in value.items():
                    self.info.addRow(f"{name}:", QLabel(text))
                continue
            self.info.addRow(key.replace("_", " ") + ":", QLabel("-" if value is None
                                                                else str(value)))
        self.info.addRow("file:", QLabel(Path(radiograph.path).name))
        for note in radiograph.notes:
            self.info.addRow("note:", QLabel(note))
