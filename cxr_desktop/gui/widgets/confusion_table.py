"""A confusion matrix as a small read-only table, cells shaded by their share of the row."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


class ConfusionTable(QTableWidget):
    """Rows: the true class; columns: the predicted class."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.setMinimumSize(200, 120)

    def show_matrix(self, matrix: np.ndarray, labels: list[str]) -> None:
        matrix = np.asarray(matrix, dtype=np.int64)
        self.setRowCount(len(labels))
        self.setColumnCount(len(labels))
        self.setHorizontalHeaderLabels([f"said {name}" for name in labels])
        self.setVerticalHeaderLabels([f"is {name}" for name in labels])
        totals = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
        for (row, col), value in np.ndenumerate(matrix):
            item = QTableWidgetItem(str(int(value)))
            item.setTextAlignment(Qt.AlignCenter)
            strength = int(40 + 160 * share[row, col])
            good = row == col
            colour = QColor(255 - strength // 2, 255, 255 - strength // 2) if good else \
                QColor(255, 255 - strength // 2, 255 - strength // 2)
            item.setBackground(QBrush(colour))
            item.setForeground(QBrush(QColor("black")))
            self.setItem(row, col, item)

    def value(self, row: int, col: int) -> int:
        return int(self.item(row, col).text())
