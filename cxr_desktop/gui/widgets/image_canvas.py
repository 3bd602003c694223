"""A pyqtgraph canvas that shows a Radiograph through the core's display chain."""

from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from cxr_desktop.core.io import Radiograph, to_display

#: The CAM overlay is handed over at most this many pixels on its long side (the map is
#: smooth: Qt stretches it over the image with bilinear filtering when it paints).
OVERLAY_SIDE = 512
EMPTY_NOTICE = ("Open a radiograph: File > Open image (Ctrl+O), drop a DICOM, PNG or JPEG "
                "file here, or double-click an image in the Dataset tab.")
NOTICE_STYLE = "color: #c8c8c8; font-size: 15px; padding: 40px;"


def overlay_grid(cam_map: np.ndarray, max_side: int = OVERLAY_SIDE) -> np.ndarray:
    """A map in [0, 1] as the uint8 grid the overlay shows: area-averaged down to at most
    ``max_side`` px on its long side (call it off the GUI thread: a 2k x 2k map takes a few
    ms; the canvas then colours a grid of 512 x 512 at most)."""
    rows, columns = cam_map.shape
    factor = min(1.0, max_side / max(rows, columns, 1))
    small = np.asarray(cam_map, dtype=np.float32)
    if factor < 1.0:
        size = (max(1, round(columns * factor)), max(1, round(rows * factor)))
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8))


class _SmoothImageItem(pg.ImageItem):
    """An ImageItem drawn with bilinear filtering: a small grid stretched over a large image
    looks like the full-resolution map without building one."""

    def paint(self, painter: QPainter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        super().paint(painter, *args)


class ImageCanvas(QWidget):
    """Zoom with the wheel, pan with the left button, window/level with a right drag.

    The image is handed to pyqtgraph as a contiguous uint8 array made by ``to_display`` and
    shown as it is (no levels, no colour table), so what is shown is exactly what the model
    is given. View coordinates are image pixel coordinates (column, row), which the
    annotation layer draws in; with a drawing tool active that layer takes the left button
    (see ``annotation_layer``).
    """

    hovered = Signal(int, int, float)  # column, row, pixel value (modality units)
    window_changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.radiograph: Radiograph | None = None
        self.window: tuple[float, float] | None = None
        self.inverted = False
        self._drag_start: tuple[QPointF, tuple[float, float]] | None = None
        self.view_widget = pg.GraphicsLayoutWidget()
        self.view_box = self.view_widget.addViewBox(lockAspect=True, invertY=True)
        self.view_box.setMenuEnabled(False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        # The CAM overlay: a small uint8 grid (``overlay_grid``) stretched over the image,
        # coloured by a lookup table, so opacity and colour map change without recomputing.
        self.overlay_item = _SmoothImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(5)
        self.overlay_item.setVisible(False)
        self.view_box.addItem(self.overlay_item, ignoreBounds=True)
        self.set_overlay_style(0.4, "turbo")
        # The map's peak: a white cross outlined in black, a fixed size on screen.
        self.peak_item = pg.ScatterPlotItem(symbol="+", size=20, brush=pg.mkBrush("w"),
                                            pen=pg.mkPen("k", width=1))
        self.peak_item.setZValue(6)
        self.view_box.addItem(self.peak_item, ignoreBounds=True)
        # Said on the empty canvas: how to open an image, or why the last one did not open.
        self.notice = QLabel(EMPTY_NOTICE)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view_widget, 0, 0)
        layout.addWidget(self.notice, 0, 0)
        self.view_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view_widget.viewport().installEventFilter(self)

    def set_radiograph(self, radiograph: Radiograph, display: np.ndarray | None = None) -> None:
        """Show ``radiograph`` at its file's own window. ``display``: ``to_display`` of it,
        made off the GUI thread (a 2k x 2k image takes tens of ms); default made here."""
        self.radiograph = radiograph
        self.window = None
        self.set_overlay(None)
        self.notice.setVisible(False)
        self._render(display)
        self.fit()
        self.window_changed.emit(*map(float, radiograph.window))

    def clear(self, message: str = "") -> None:
        """No image: a blank canvas that says ``message`` (default: how to open one)."""
        self.radiograph = None
        self.image_item.clear()
        self.set_overlay(None)
        self.notice.setText(message or EMPTY_NOTICE)
        self.notice.setVisible(True)

    def set_window(self, window: tuple[float, float] | None) -> None:
        """``None`` returns to the file's own VOI (window or LUT)."""
        self.window = window
        self._render()
        shown = window or (self.radiograph.window if self.radiograph else (0.0, 1.0))
        self.window_changed.emit(float(shown[0]), float(shown[1]))

    def set_overlay(self, grid: np.ndarray | None,
                    peak: tuple[int, int] | None = None) -> None:
        """Show a uint8 map grid (``overlay_grid``) stretched over the whole image, and a
        cross on the map's ``peak`` pixel (x, y) when given; ``None`` hides both."""
        self.peak_item.setData([], [])
        if grid is None or self.radiograph is None:
            self.overlay_item.setVisible(False)
            return
        self.overlay_item.setImage(grid, levels=(0, 255), autoLevels=False)
        self.overlay_item.setRect(QRectF(0, 0, self.radiograph.columns, self.radiograph.rows))
        self.overlay_item.setVisible(True)
        if peak is not None:
            self.peak_item.setData([peak[0] + 0.5], [peak[1] + 0.5])

    def set_overlay_style(self, opacity: float, colormap: str) -> None:
        """Colours from ``colormap``; alpha rises with the map so quiet areas stay clear."""
        lut = pg.colormap.get(colormap).getLookupTable(0.0, 1.0, 256, alpha=True)
        lut[:, 3] = np.clip(np.linspace(0.0, 1.6, 256), 0.0, 1.0) * 255
        self.overlay_item.setLookupTable(lut)
        self.overlay_item.setOpacity(float(opacity))

    def set_inverted(self, inverted: bool) -> None:
        self.inverted = inverted
        self._render()

    def displayed_image(self) -> np.ndarray:
        """The uint8 array on screen (row-major), for tests and exports."""
        return self.image_item.image

    def fit(self) -> None:
        self.view_box.autoRange(padding=0.0)

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, centred on the current view."""
        if self.radiograph is None:
            return
        rect = self.view_box.viewRect()
        width = self.view_box.width() or 1.0
        height = self.view_box.height() or 1.0
        center = rect.center()
        self.view_box.setRange(xRange=(center.x() - width / 2, center.x() + width / 2),
                               yRange=(center.y() - height / 2, center.y() + height / 2),
                               padding=0.0)

    def to_image(self, widget_pos: QPointF | QPoint) -> tuple[float, float]:
        """Image pixel coordinates (column, row; 0 at the image's outer edge) of a point of
        the view's viewport, whatever the zoom and pan."""
        scene = self.view_widget.mapToScene(QPointF(widget_pos).toPoint())
        point = self.view_box.mapSceneToView(scene)
        return point.x(), point.y()

    def from_image(self, x: float, y: float) -> QPoint:
        """The viewport point that shows image coordinates ``(x, y)``."""
        scene = self.view_box.mapViewToScene(QPointF(x, y))
        return self.view_widget.mapFromScene(scene)

    def pixel_size(self) -> float:
        """Image pixels per screen pixel at the current zoom (the aspect ratio is locked)."""
        width = self.view_box.width()
        return float(self.view_box.viewRect().width() / width) if width > 0 else 1.0

    def _render(self, display: np.ndarray | None = None) -> None:
        if self.radiograph is None:
            return
        image = to_display(self.radiograph, self.window) if display is None else display
        if self.inverted:
            image = np.ascontiguousarray(255 - image)
        # uint8 with no levels goes to Qt as Grayscale8 as is (levels would make pyqtgraph
        # build a colour table, and Qt convert the whole image on every paint).
        self.image_item.setImage(image, levels=None, autoLevels=False)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self.radiograph is None:
            return
        point = self.view_box.mapSceneToView(scene_pos)
        col, row = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= row < self.radiograph.rows and 0 <= col < self.radiograph.columns:
            self.hovered.emit(col, row, float(self.radiograph.pixels[row, col]))

    def eventFilter(self, watched, event) -> bool:
        """Right-drag: horizontal changes the width, vertical the level."""
        kind = event.type()
        if self.radiograph is None:
            return False
        if kind == event.Type.MouseButtonPress and event.button() == Qt.MouseButton.RightButton:
            self._drag_start = (event.position(), self.window or self.radiograph.window)
            return True
        if kind == event.Type.MouseMove and self._drag_start is not None:
            start, (center, width) = self._drag_start
            delta = event.position() - start
            low, high = self.radiograph.value_range
            step = max(high - low, 1.0) / 500.0
            self.set_window((center - delta.y() * step, max(1.0, width + delta.x() * step)))
            return True
        if kind == event.Type.MouseButtonRelease and self._drag_start is not None:
            self._drag_start = None
            return True
        return False
