"""A progress bar whose words sit beside it, not on it.

A style paints a bar's own text in the highlight colour over the filled part and in the
window text colour over the rest, and some (Fusion with a light palette, the offscreen
platform) make the filled part's text white on a pale fill: unreadable. A label beside the
bar keeps the window's text colour whatever the fill.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


class LabelledProgress(QWidget):
    """``setRange``, ``setValue``, ``value`` like a QProgressBar; ``setFormat`` sets the
    words beside it and ``format`` reads them back."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.label = QLabel("")
        self.label.setMinimumWidth(self.fontMetrics().horizontalAdvance(
            "epoch 88/88 · 100% · 8888 img/s · ETA 88:88"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label)

    def setRange(self, low: int, high: int) -> None:
        self.bar.setRange(low, high)

    def setValue(self, value: int) -> None:
        self.bar.setValue(value)

    def value(self) -> int:
        return self.bar.value()

    def setFormat(self, text: str) -> None:
        self.label.setText(text)

    def format(self) -> str:
        return self.label.text()
