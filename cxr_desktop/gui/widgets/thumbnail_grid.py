"""A grid of thumbnails of a dataset, filtered by split and class, annotations drawn on them.

Thumbnails are the model's own input (``model_input``: the whole image squeezed to a square,
as training sees it), made in a worker a few at a time so the first ones show at once; a
page of ``PAGE_SIZE`` more comes with the "Show more" button or on scrolling to the end.
Annotation shapes are in image pixels and are scaled by ``size / columns`` and
``size / rows`` of the loaded radiograph.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem, split_order
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.io import load_image, model_input
from cxr_desktop.gui.workers import TaskRunner

THUMB_SIZE = 160
PAGE_SIZE = 48
CHUNK_SIZE = 12
ANNOTATION_RGB = (255, 190, 0)
ALL = "All"
PATH_ROLE = Qt.ItemDataRole.UserRole
INDEX_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class Thumbnail:
    """One rendered tile: ``rgb`` (size, size, 3) uint8, or ``error`` when unreadable."""

    index: int
    path: str
    rgb: np.ndarray | None
    original_size: tuple[int, int] | None  # (columns, rows)
    error: str | None = None


def label_text(labels: str | dict[str, float]) -> str:
    """The class of a single-label item, or the positive classes of a multilabel one."""
    if isinstance(labels, str):
        return labels
    positives = [name for name, value in labels.items() if value == 1.0]
    return ", ".join(positives) or "no finding"


def matching_items(spec: DatasetSpec, split: str = ALL, class_name: str = ALL) -> list[int]:
    """Indices of the items in ``split`` with ``class_name`` (multilabel: positive for it)."""
    out = []
    for index, item in enumerate(spec.items):
        if split != ALL and item.split != split:
            continue
        if class_name != ALL:
            if isinstance(item.labels, str):
                if item.labels != class_name:
                    continue
            elif item.labels.get(class_name) != 1.0:
                continue
        out.append(index)
    return out


def draw_shapes(image: Image.Image, shapes: Sequence[Shape], scale_x: float,
                scale_y: float, width: int = 2) -> None:
    """Draw ``shapes`` (image pixels) onto ``image`` (RGB) scaled by ``scale_x, scale_y``."""
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        points = [(x * scale_x, y * scale_y) for x, y in shape.points]
        if shape.shape_type in ("rectangle", "ellipse"):
            (x0, y0), (x1, y1) = points[0], points[1]
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            if shape.shape_type == "rectangle":
                draw.rectangle(box, outline=ANNOTATION_RGB, width=width)
            else:
                draw.ellipse(box, outline=ANNOTATION_RGB, width=width)
        elif shape.shape_type == "polygon":
            draw.polygon(points, outline=ANNOTATION_RGB, width=width)
        elif shape.shape_type == "text":
            x, y = points[0]
            draw.ellipse((x - width, y - width, x + width, y + width), fill=ANNOTATION_RGB)
        else:  # freehand, arrow
            draw.line(points, fill=ANNOTATION_RGB, width=width)


def render_thumbnail(index: int, path: str, shapes: Sequence[Shape],
                     size: int = THUMB_SIZE) -> Thumbnail:
    """The model input of one image with its shapes drawn; unreadable files become errors."""
    try:
        radiograph = load_image(path)
        gray = model_input(radiograph, size)
    except (CxrError, OSError, ValueError) as exc:
        return Thumbnail(index, path, None, None, str(exc))
    image = Image.fromarray(gray).convert("RGB")
    draw_shapes(image, shapes, size / radiograph.columns, size / radiograph.rows)
    return Thumbnail(index, path, np.asarray(image), (radiograph.columns, radiograph.rows))


def render_thumbnails(jobs: Sequence[tuple[int, str, Sequence[Shape]]],
                      size: int = THUMB_SIZE) -> list[Thumbnail]:
    """``render_thumbnail`` of each ``(index, path, shapes)``, a few files at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda job: render_thumbnail(*job, size=size), jobs))


def _pixmap(thumb: Thumbnail, size: int) -> QPixmap:
    if thumb.rgb is not None:
        rgb = np.ascontiguousarray(thumb.rgb)
        image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0],
                       QImage.Format.Format_RGB888)
        return QPixmap.fromImage(image.copy())
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#3a3a3a"))
    painter = QPainter(pixmap)
    painter.setPen(QPen(QColor("#d9534f"), 3))
    painter.drawRect(1, 1, size - 3, size - 3)
    font = QFont(painter.font())
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "unreadable")
    painter.end()
    return pixmap


class ThumbnailGrid(QWidget):
    """Thumbnails of the open dataset; double-click opens one, selecting one previews it."""

    image_activated = Signal(str)
    image_selected = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None,
                 size: int = THUMB_SIZE) -> None:
        super().__init__(parent)
        self._runner = runner
        self._size = size
        self.spec: DatasetSpec | None = None
        self.matches: list[int] = []
        self._target = 0  # how many of ``matches`` should be shown
        self._requested = 0  # how many have been asked of the worker
        self.loading = False
        self._generation = 0  # bumped on every filter change; older results are dropped
        self.split_combo = QComboBox()
        self.split_combo.setToolTip("Show the images of one split")
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Show the images of one class (multi-label: positives)")
        self.count_label = QLabel("")
        self.more_button = QPushButton(f"Show {PAGE_SIZE} more")
        self.more_button.setVisible(False)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(False)  # a long file name is elided, its label stays shown
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setSpacing(4)
        self.list.setIconSize(QSize(size, size))
        self.list.setGridSize(QSize(size + 12, size + 40))
        self.list.setToolTip("Double-click an image to open it in the Viewer; select one to "
                             "preview its augmentations")
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Split:"))
        filters.addWidget(self.split_combo)
        filters.addWidget(QLabel("Class:"))
        filters.addWidget(self.class_combo, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(self.more_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.list, 1)
        layout.addLayout(bottom)
        self.split_combo.currentIndexChanged.connect(self._on_filter_changed)
        self.class_combo.currentIndexChanged.connect(self._on_filter_changed)
        self.more_button.clicked.connect(self.load_more)
        self.list.itemDoubleClicked.connect(self._on_double_clicked)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    # Public ------------------------------------------------------------------------------
    def set_dataset(self, spec: DatasetSpec) -> None:
        self.spec = spec
        splits = sorted({item.split for item in spec.items}, key=split_order)
        for combo, names in ((self.split_combo, splits), (self.class_combo, spec.classes)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([ALL, *names])
            combo.blockSignals(False)
        self._on_filter_changed()

    def set_filter(self, split: str = ALL, class_name: str = ALL) -> None:
        """Choose the split and class shown (names as in the combo boxes)."""
        self.split_combo.blockSignals(True)
        self.split_combo.setCurrentText(split)
        self.split_combo.blockSignals(False)
        self.class_combo.setCurrentText(class_name)
        self._on_filter_changed()

    def shown_paths(self) -> list[str]:
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())]

    @Slot()
    def load_more(self) -> None:
        if self._target < len(self.matches):
            self._target = min(self._target + PAGE_SIZE, len(self.matches))
            self._request_next()

    # Loading -----------------------------------------------------------------------------
    @Slot()
    def _on_filter_changed(self) -> None:
        self.list.clear()
        if self.spec is None:
            return
        self.matches = matching_items(self.spec, self.split_combo.currentText() or ALL,
                                      self.class_combo.currentText() or ALL)
        self._target = min(PAGE_SIZE, len(self.matches))
        self._requested = 0
        self._generation += 1
        self.loading = False
        self._update_count()
        self._request_next()

    def _request_next(self) -> None:
        if self.loading or self.spec is None or self._requested >= self._target:
            self._update_count()
            return
        end = min(self._requested + CHUNK_SIZE, self._target)
        jobs = []
        for index in self.matches[self._requested:end]:
            item: ImageItem = self.spec.items[index]
            jobs.append((index, str(self.spec.abspath(item)), list(item.shapes)))
        self._requested = end
        self.loading = True
        self._update_count()
        self._runner.submit("dataset.thumbnails", render_thumbnails, jobs, self._size,
                            done=partial(self._on_rendered, self._generation),
                            failed=partial(self._on_failed, self._generation))

    def _on_rendered(self, generation: int, thumbs: list[Thumbnail]) -> None:
        if generation != self._generation:
            return
        self.loading = False
        for thumb in thumbs:
            self.list.addItem(self._tile(thumb))
        self._request_next()

    def _on_failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self.count_label.setText(f"Thumbnails stopped: {message}")

    def _tile(self, thumb: Thumbnail) -> QListWidgetItem:
        assert self.spec is not None
        item = self.spec.items[thumb.index]
        label = label_text(item.labels)
        tile = QListWidgetItem(QIcon(_pixmap(thumb, self._size)),
                               f"{Path(item.path).name}\n{label}")
        tile.setData(PATH_ROLE, thumb.path)
        tile.setData(INDEX_ROLE, thumb.index)
        tile.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        lines = [item.path, f"split: {item.split}", f"label: {label}"]
        if item.patient:
            lines.append(f"patient: {item.patient}")
        if thumb.error:
            lines.append(f"unreadable: {thumb.error}")
        else:
            columns, rows = thumb.original_size or (0, 0)
            lines.append(f"{columns} x {rows} px, {len(item.shapes)} annotation(s)")
        tile.setToolTip("\n".join(lines))
        return tile

    def _update_count(self) -> None:
        total = len(self.matches)
        shown = self.list.count()
        text = f"{shown} of {total} images"
        if self.loading:
            text += " (loading...)"
        self.count_label.setText(text)
        self.more_button.setVisible(self._target < total)

    @Slot(int)
    def _on_scrolled(self, value: int) -> None:
        bar = self.list.verticalScrollBar()
        if value > 0 and value == bar.maximum() and not self.loading:
            self.load_more()

    @Slot(QListWidgetItem)
    def _on_double_clicked(self, tile: QListWidgetItem) -> None:
        self.image_activated.emit(tile.data(PATH_ROLE))

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current_changed(self, current: QListWidgetItem | None,
                            _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.image_selected.emit(current.data(PATH_ROLE))
