"""A pyqtgraph FROC curve: sensitivity against false positives per image, log x axis, the
sensitivity read at each of the scored rates (1/8 ... 8) marked."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cxr_desktop.core.evaluate.localization import FrocCurve

CURVE_COLOUR = "#4c72b0"
RATE_COLOUR = "#c44e52"
#: The x axis spans these false positives per image (log scale).
X_RANGE = (0.08, 12.0)


def _rate_label(rate: float) -> str:
    return f"1/{round(1 / rate)}" if rate < 1 else f"{rate:g}"


class FrocPlot(QWidget):
    """``show_curve(froc)`` once per result; ``clear()`` when there is none. The score (the
    mean of the dots) is said beside the plot, not in a title: the page is short."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumSize(200, 110)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setLogMode(x=True, y=False)
        self.plot.setXRange(*np.log10(X_RANGE), padding=0)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("bottom", "false positives / image")
        self.plot.setLabel("left", "sensitivity")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(CURVE_COLOUR, width=2))
        self.rates = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(RATE_COLOUR), pen=pg.mkPen("k"))
        self.plot.addItem(self.rates)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def show_curve(self, froc: FrocCurve) -> None:
        """The curve where it has false positives (log x), each rate's sensitivity a dot."""
        fps = np.asarray(froc.fp_per_image, dtype=np.float64)
        sens = np.asarray(froc.sensitivity, dtype=np.float64)
        shown = fps > 0
        # Extend the curve to the axis's end: past its last point the sensitivity stays.
        x = np.append(fps[shown], X_RANGE[1]) if shown.any() else np.array([])
        y = np.append(sens[shown], sens[-1]) if shown.any() else np.array([])
        self.curve.setData(x, y, stepMode=None)
        self.rates.setData(np.log10(froc.rates), froc.at_rates)
        self.plot.getAxis("bottom").setTicks([[(float(np.log10(r)), _rate_label(r))
                                               for r in froc.rates]])

    def clear(self) -> None:
        self.curve.setData([], [])
        self.rates.setData([], [])
