"""A pyqtgraph bar chart of class counts per split."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
            "#8c8c8c", "#ccb974", "#64b5cd")


class BalanceChart(QWidget):
    """Grouped bars: one group per split, one bar per class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(180)
        self.plot.setMouseEnabled(False, False)
        self.plot.setMenuEnabled(False)
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setLabel("left", "images")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.bars: list[pg.BarGraphItem] = []

    def show_counts(self, splits: dict[str, dict], classes: list[str]) -> None:
        self.plot.clear()
        self.bars = []
        names = list(splits)
        width = 0.8 / max(len(classes), 1)
        for c, name in enumerate(classes):
            heights = [splits[s]["per_class"].get(name, 0) for s in names]
            xs = [i - 0.4 + width * (c + 0.5) for i in range(len(names))]
            bar = pg.BarGraphItem(x=xs, height=heights, width=width * 0.9,
                                  brush=_COLOURS[c % len(_COLOURS)], name=name)
            self.plot.addItem(bar)
            self.bars.append(bar)
        self.plot.getAxis("bottom").setTicks([list(enumerate(names))])
