"""A grid of the images whose map missed the annotation: the map, the annotations and the
peak drawn on each (``miss_overlay``, made in the worker); a click names the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from cxr_desktop.core.evaluate.localization import ImageScore

#: Thumbnails are made at most this many pixels on their long side.
THUMB = 112


def rgb_pixmap(image: np.ndarray) -> QPixmap:
    """A QPixmap of an (H, W, 3) uint8 array (copied: Qt does not keep the numpy buffer)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width, _ = image.shape
    qimage = QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())


class MissesGallery(QListWidget):
    """``show_misses([(score, thumbnail or None), ...])``; ``image_clicked(path)``."""

    image_clicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 28, THUMB + 44))
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.itemClicked.connect(self._on_clicked)

    def show_misses(self, entries: list[tuple[ImageScore, np.ndarray | None]]) -> None:
        self.clear()
        for score, thumbnail in entries:
            name = Path(score.image).name
            item = QListWidgetItem(f"{name}\nscore {score.score:.2f}")
            if thumbnail is not None:
                item.setIcon(QIcon(rgb_pixmap(thumbnail)))
            peak = "no peak (a flat map)" if score.peak_x is None else \
                f"peak at x {score.peak_x:.0f}, y {score.peak_y:.0f}"
            item.setToolTip(f"{score.image}\n{score.label}: score {score.score:.3f}, {peak}, "
                            f"energy in the annotations {score.energy_in_boxes:.2f}\n"
                            "Click to open it in the Viewer with this run's model and CAM")
            item.setData(Qt.ItemDataRole.UserRole, score.image)
            self.addItem(item)

    def path_at(self, row: int) -> str:
        return str(self.item(row).data(Qt.ItemDataRole.UserRole))

    @Slot(QListWidgetItem)
    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.image_clicked.emit(str(item.data(Qt.ItemDataRole.UserRole)))
