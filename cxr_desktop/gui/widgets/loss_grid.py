"""A grid of thumbnails of the most confidently wrong images; a click names the image."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

THUMB = 112


def gray_pixmap(image: np.ndarray) -> QPixmap:
    """A QPixmap of a (H, W) uint8 array (copied: Qt does not keep the numpy buffer)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = image.shape
    qimage = QImage(image.data, width, height, width, QImage.Format_Grayscale8)
    return QPixmap.fromImage(qimage.copy())


class LossGrid(QListWidget):
    """``show_losses([(path, thumbnail or None, caption), ...])``; ``image_clicked(path)``."""

    image_clicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.IconMode)
        self.setResizeMode(QListView.Adjust)
        self.setMovement(QListView.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 36, THUMB + 60))
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.itemClicked.connect(self._on_clicked)

    def show_losses(self, entries: list[tuple[str, np.ndarray | None, str]]) -> None:
        self.clear()
        for path, thumbnail, caption in entries:
            item = QListWidgetItem(caption)
            if thumbnail is not None:
                item.setIcon(QIcon(gray_pixmap(thumbnail)))
            item.setToolTip(f"{path}\n{caption}")
            item.setData(Qt.UserRole, path)
            self.addItem(item)

    def path_at(self, row: int) -> str:
        return str(self.item(row).data(Qt.UserRole))

    @Slot(QListWidgetItem)
    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.image_clicked.emit(str(item.data(Qt.UserRole)))
