"""Draws an AnnotationDocument over the ImageCanvas and feeds its mouse events to the tools.

Shapes are items in the ViewBox's child group, so they live in image pixel coordinates:
zoom, pan and windowing move them with the image and never change them. Outlines are
cosmetic pens (a fixed screen width); handles and text keep a fixed screen size.

Mouse: with a drawing tool every left-button event on the image goes to the tool; with the
select tool only presses that land on a shape do, so dragging empty space still pans and
the wheel still zooms. The right button stays the canvas's window/level drag.
"""

from __future__ import annotations

import math
import zlib

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPolygonItem,
    QGraphicsRectItem,
)

from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.annotations.geometry import handles
from cxr_desktop.core.annotations.tools import Editor
from cxr_desktop.gui.widgets.image_canvas import ImageCanvas

PICK_PIXELS = 5.0  # screen pixels that count as "on the outline"
ARROW_HEAD_PIXELS = 14.0
HANDLE_PIXELS = 8.0
PALETTE = ("#ffd54f", "#4fc3f7", "#ef5350", "#81c784", "#ba68c8", "#ff8a65", "#4dd0e1",
           "#f06292", "#aed581", "#90a4ae")
_KEYS = {Qt.Key.Key_Return: "Enter", Qt.Key.Key_Enter: "Enter", Qt.Key.Key_Escape: "Escape",
         Qt.Key.Key_Backspace: "Backspace", Qt.Key.Key_Delete: "Delete"}


def label_color(label: str, labels: list[str]) -> QColor:
    """A stable colour per label: the palette in label order, else by a hash of the name."""
    index = labels.index(label) if label in labels else zlib.crc32(label.encode("utf-8"))
    return QColor(PALETTE[index % len(PALETTE)])


def _path(points: tuple[tuple[float, float], ...]) -> QPainterPath:
    path = QPainterPath(QPointF(*points[0]))
    for point in points[1:]:
        path.lineTo(QPointF(*point))
    return path


def _arrow_path(tail: tuple[float, float], head: tuple[float, float],
                length: float) -> QPainterPath:
    path = _path((tail, head))
    angle = math.atan2(head[1] - tail[1], head[0] - tail[0])
    for side in (-1, 1):
        wing = angle + math.pi - side * math.radians(25)
        path.moveTo(QPointF(*head))
        path.lineTo(QPointF(head[0] + length * math.cos(wing), head[1] + length * math.sin(wing)))
    return path


class AnnotationLayer(QObject):
    """The view of one document on one canvas; redraws whenever the document changes."""

    def __init__(self, canvas: ImageCanvas, editor: Editor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.editor = editor
        self.document = editor.document
        self.group = pg.ItemGroup()
        self.group.setZValue(10)
        canvas.view_box.addItem(self.group, ignoreBounds=True)
        self._pressed = False
        self.document.subscribe(self.redraw)
        canvas.view_box.sigRangeChanged.connect(self._on_range_changed)
        canvas.view_widget.viewport().installEventFilter(self)
        canvas.view_widget.installEventFilter(self)

    # -- drawing ---------------------------------------------------------------------------
    def items(self) -> list[QGraphicsItem]:
        """The items drawn now (for tests): one or two per shape, plus handles and the draft."""
        return self.group.childItems()

    def redraw(self) -> None:
        scene = self.group.scene()
        for item in self.group.childItems():
            item.setParentItem(None)
            if scene is not None:
                scene.removeItem(item)
        doc = self.document
        for index, shape in enumerate(doc.shapes):
            self._draw(shape, selected=index == doc.selected)
        if doc.draft is not None:
            self._draw(doc.draft, draft=True)
        if doc.selected_shape is not None:
            self._draw_handles(doc.selected_shape)

    def _pen(self, color: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
        pen = QPen(color, width, style)
        pen.setCosmetic(True)
        return pen

    def _draw(self, shape: Shape, selected: bool = False, draft: bool = False) -> None:
        color = label_color(shape.label, self.document.labels)
        pen = self._pen(color, 3.0 if selected else 2.0,
                        Qt.PenStyle.DashLine if draft else Qt.PenStyle.SolidLine)
        points, kind = shape.points, shape.shape_type
        if kind == "text":
            item = pg.TextItem(shape.text, color=color, fill=pg.mkBrush(0, 0, 0, 160),
                               anchor=(0, 0))
            item.setParentItem(self.group)
            item.setPos(*points[0])
            if selected:
                item.border = pen
            return
        if kind in ("rectangle", "ellipse"):
            (x0, y0), (x1, y1) = points
            rect = QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized()
            cls = QGraphicsRectItem if kind == "rectangle" else QGraphicsEllipseItem
            item = cls(rect, self.group)
        elif kind == "polygon":
            item = QGraphicsPolygonItem(QPolygonF([QPointF(*p) for p in points]), self.group)
        elif kind == "arrow":
            length = ARROW_HEAD_PIXELS * self.canvas.pixel_size()
            item = QGraphicsPathItem(_arrow_path(points[0], points[-1], length), self.group)
        else:  # freehand
            item = QGraphicsPathItem(_path(points), self.group)
        item.setPen(pen)
        if selected and kind in ("rectangle", "ellipse", "polygon"):
            fill = QColor(color)
            fill.setAlpha(40)
            item.setBrush(QBrush(fill))
        if not draft:
            self._draw_label(shape, color)

    def _draw_label(self, shape: Shape, color: QColor) -> None:
        """The label above the upper-left corner, or above the start of a line."""
        if shape.shape_type in ("arrow", "freehand"):
            x0, y0 = shape.points[0]
        else:
            x0, y0, _x1, _y1 = shape.bounds()
        label = pg.TextItem(shape.label, color=color, fill=pg.mkBrush(0, 0, 0, 120),
                            anchor=(0, 1))
        label.setParentItem(self.group)
        label.setPos(x0, y0)

    def _draw_handles(self, shape: Shape) -> None:
        half = HANDLE_PIXELS / 2
        for x, y in handles(shape):
            handle = QGraphicsRectItem(-half, -half, HANDLE_PIXELS, HANDLE_PIXELS, self.group)
            handle.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            handle.setPos(x, y)
            handle.setPen(self._pen(QColor("black"), 1.0))
            handle.setBrush(QBrush(QColor("white")))

    def _on_range_changed(self, *_args) -> None:
        self.editor.set_tolerance(PICK_PIXELS * self.canvas.pixel_size())
        if any(shape.shape_type == "arrow" for shape in self.document.shapes):
            self.redraw()

    # -- events ----------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        self.editor.set_tool(name)
        cursor = Qt.CursorShape.ArrowCursor if name == "select" else Qt.CursorShape.CrossCursor
        self.canvas.view_widget.viewport().setCursor(cursor)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self.canvas.radiograph is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.KeyPress:
            name = _KEYS.get(event.key())
            return bool(name) and event.modifiers() == Qt.KeyboardModifier.NoModifier \
                and self.editor.key(name)
        if watched is not self.canvas.view_widget.viewport():
            return False
        if kind == QEvent.Type.MouseMove:
            x, y = self.canvas.to_image(event.position())
            if self._pressed:
                self.editor.drag(x, y)
                return True
            self.editor.hover(x, y)
            return False
        if kind not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
                        QEvent.Type.MouseButtonDblClick):
            return False
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self.editor.set_tolerance(PICK_PIXELS * self.canvas.pixel_size())
        x, y = self.canvas.to_image(event.position())
        if kind == QEvent.Type.MouseButtonRelease:
            if self._pressed:
                self._pressed = False
                self.editor.release(x, y)
                return True
            return self.editor.drawing
        if kind == QEvent.Type.MouseButtonDblClick and self.editor.double_click(x, y):
            return True
        self._pressed = self.editor.press(x, y)
        return self._pressed or self.editor.drawing
