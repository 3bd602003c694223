"""A pyqtgraph ROC curve with the chance diagonal and the operating point."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

CURVE_COLOUR = "#4c72b0"
POINT_COLOUR = "#c44e52"


class RocPlot(QWidget):
    """``show_curve(fpr, tpr, title)`` once per result; ``show_point`` on every threshold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumSize(260, 240)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setAspectLocked(True)
        self.plot.setLabel("bottom", "1 - specificity")
        self.plot.setLabel("left", "sensitivity")
        self.plot.plot([0, 1], [0, 1], pen=pg.mkPen("#aaaaaa", style=pg.QtCore.Qt.DashLine))
        self.curve = self.plot.plot([], [], pen=pg.mkPen(CURVE_COLOUR, width=2))
        self.point = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(POINT_COLOUR),
                                        pen=pg.mkPen("k"))
        self.plot.addItem(self.point)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def show_curve(self, fpr: np.ndarray, tpr: np.ndarray, title: str) -> None:
        self.curve.setData(np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64))
        self.plot.setTitle(title, size="9pt")

    def show_point(self, fpr: float, tpr: float) -> None:
        """Mark the operating point (NaN coordinates hide it)."""
        if np.isfinite(fpr) and np.isfinite(tpr):
            self.point.setData([fpr], [tpr])
        else:
            self.point.setData([], [])

    def clear(self) -> None:
        self.curve.setData([], [])
        self.point.setData([], [])
        self.plot.setTitle("")
