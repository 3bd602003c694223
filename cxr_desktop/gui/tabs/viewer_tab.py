"""Viewer tab: one radiograph, its window/level, and what the file says about itself."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.io import Radiograph, load_image
from cxr_desktop.core.io.window import full_range_window, percentile_window
from cxr_desktop.gui.widgets.image_canvas import ImageCanvas
from cxr_desktop.gui.workers import TaskRunner

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
        info_box = QWidget()
        info_box.setLayout(self.info)
        info_box.setMinimumWidth(220)
        splitter = QSplitter()
        splitter.addWidget(self.canvas)
        splitter.addWidget(info_box)
        splitter.setStretchFactor(0, 4)
        layout = QVBoxLayout(self)
        layout.addLayout(toolbar)
        layout.addWidget(splitter, 1)
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.invert.toggled.connect(self.canvas.set_inverted)
        fit.clicked.connect(self.canvas.fit)
        one.clicked.connect(self.canvas.one_to_one)
        self.canvas.hovered.connect(self._on_hover)
        self.canvas.window_changed.connect(self._on_window_changed)

    @property
    def radiograph(self) -> Radiograph | None:
        return self.canvas.radiograph

    def open_image(self, path: str | Path) -> None:
        self.status_message.emit(f"Loading {Path(path).name}...")
        self._runner.submit("viewer.load", load_image, str(path),
                            done=self._on_loaded, failed=self._on_failed)

    def _on_loaded(self, radiograph: Radiograph) -> None:
        self.canvas.set_radiograph(radiograph)
        self.preset.setCurrentIndex(0)
        self._apply_preset(0)
        self._show_info(radiograph)
        notes = "; ".join(radiograph.notes)
        self.status_message.emit(f"Opened {Path(radiograph.path).name}" +
                                 (f" ({notes})" if notes else ""))
        self.image_loaded.emit(radiograph.path)

    def _on_failed(self, message: str) -> None:
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

    def _show_info(self, radiograph: Radiograph) -> None:
        while self.info.rowCount():
            self.info.removeRow(0)
        for key, value in radiograph.describe().items():
            if key in ("path", "notes"):
                continue
            self.info.addRow(key.replace("_", " ") + ":", QLabel("-" if value is None
                                                                else str(value)))
        self.info.addRow("file:", QLabel(Path(radiograph.path).name))
        for note in radiograph.notes:
            self.info.addRow("note:", QLabel(note))
