"""Live training curves: loss (per batch, smoothed; validation per epoch) and validation AUC.

Events only append to buffers; a ~100 ms timer redraws with ``setData`` what changed, so a
fast engine never floods the GUI thread. A redraw is the GUI thread's largest piece of work
during a run (``bench/gui.py``), so it is kept small: the epoch curves (and the AUC plot)
are touched only when an epoch ends, and during a run the x axis spans the planned epochs
from the start, so the axes are not laid out again at every redraw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QWidget

SMOOTHING = 0.9  # exponential moving average of the batch loss, debiased as fastai does


class TrainingPlots(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget(background="w", title="Loss")
        self.auc_plot = pg.PlotWidget(background="w", title="Validation AUC")
        for plot in (self.loss_plot, self.auc_plot):
            plot.setLabel("bottom", "epoch")
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.addLegend(offset=(-10, 10))
        self.auc_plot.setYRange(0.4, 1.0)
        self.train_curve = self.loss_plot.plot(pen=pg.mkPen("#4c72b0", width=1.5),
                                               name="train (smoothed)")
        self.val_curve = self.loss_plot.plot(pen=pg.mkPen("#dd8452", width=2), symbol="o",
                                             symbolSize=6, symbolBrush="#dd8452",
                                             name="validation")
        self.auc_curve = self.auc_plot.plot(pen=pg.mkPen("#55a868", width=2), symbol="o",
                                            symbolSize=6, symbolBrush="#55a868",
                                            name="val AUC (macro)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.auc_plot)
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self.clear()

    def start_run(self, epochs: int) -> None:
        """Empty curves over a fixed x range of ``epochs`` (the axes then keep still)."""
        self.clear()
        for plot in (self.loss_plot, self.auc_plot):
            plot.setXRange(0, max(epochs, 1), padding=0.02)
            plot.enableAutoRange(x=False)

    def clear(self) -> None:
        self.batch_x: list[float] = []
        self.batch_loss: list[float] = []
        self.epoch_x: list[float] = []
        self.val_loss: list[float] = []
        self.val_auc: list[float] = []
        self._avg = 0.0
        self._count = 0
        self._batches_dirty = self._epochs_dirty = True
        for plot in (self.loss_plot, self.auc_plot):
            plot.enableAutoRange(x=True)

    def add_batch(self, epoch: int, progress: float, loss: float) -> None:
        """A batch of ``epoch`` (counted from 1, as the engine does) at ``progress`` in it:
        drawn at x = epoch - 1 + progress, so epoch k's batches end where its validation
        point (x = k) is."""
        if not math.isfinite(loss):
            return
        self._count += 1
        self._avg = SMOOTHING * self._avg + (1 - SMOOTHING) * loss
        self.batch_x.append(epoch - 1 + progress)
        self.batch_loss.append(self._avg / (1 - SMOOTHING ** self._count))
        self._batches_dirty = True

    def add_epoch(self, record: dict) -> None:
        self.epoch_x.append(float(record["epoch"]))
        self.val_loss.append(_number(record.get("val_loss")))
        self.val_auc.append(_number(record.get("val_auc")))
        self._epochs_dirty = True

    def show_history(self, records: Iterable[dict]) -> None:
        """A finished run's curves: per-epoch train and validation values."""
        self.clear()
        for record in records:
            self.batch_x.append(float(record["epoch"]))
            self.batch_loss.append(_number(record.get("train_loss")))
            self.add_epoch(record)
        self._redraw()

    def _redraw(self) -> None:
        if self._batches_dirty:
            self._batches_dirty = False
            self.train_curve.setData(self.batch_x, self.batch_loss, connect="finite")
        if self._epochs_dirty:
            self._epochs_dirty = False
            self.val_curve.setData(self.epoch_x, self.val_loss, connect="finite")
            self.auc_curve.setData(self.epoch_x, self.val_auc, connect="finite")


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
