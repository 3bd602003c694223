"""One image as the model is given it, and under the training augmentations for a few seeds.

The augmented images come from ``core.train.augment.preview``, the very function training
runs on its batches, applied to ``model_input`` at the training size: what is shown is
what the model will see. "Re-roll" draws new seeds; the controls edit the
``AugmentSettings`` that :meth:`AugmentPreview.settings` returns (the Training tab can read
them).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.io import load_image, model_input
from cxr_desktop.core.train.augment import preview
from cxr_desktop.core.train.config import AugmentSettings
from cxr_desktop.gui.workers import TaskRunner

PREVIEW_SIZE = 224
N_AUGMENTED = 5
COLUMNS = 3
MAX_SEED = 2**31 - 1

#: (field, label, maximum, step, tooltip) of each numeric AugmentSettings field.
_FIELDS = (
    ("rotate_deg", "Rotate ±°", 45.0, 1.0,
     "Largest rotation in degrees, either way (films are rarely more than a few degrees off)"),
    ("scale", "Zoom ±", 0.5, 0.05,
     "Largest zoom change: 0.1 zooms by a factor between 0.9 and 1.1"),
    ("translate", "Shift ±", 0.3, 0.01,
     "Largest shift, as a fraction of the image side, in x and in y"),
    ("brightness", "Brightness ±", 0.5, 0.02,
     "Largest brightness change, as a fraction of the full grey range"),
    ("contrast", "Contrast ±", 0.5, 0.02,
     "Largest contrast change, as a fraction of the image's contrast"),
)


def _load(path: str, size: int) -> np.ndarray:
    return model_input(load_image(path), size)


class ImageCell(QWidget):
    """Paints a grayscale image scaled to fit, keeping its aspect, with a caption below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self.caption = ""
        self.setMinimumSize(90, 100)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(150, 170)

    def set_image(self, image: np.ndarray | None, caption: str = "") -> None:
        self.caption = caption
        if image is None:
            self._pixmap = None
        else:
            gray = np.ascontiguousarray(image)
            qimage = QImage(gray.data, gray.shape[1], gray.shape[0], gray.strides[0],
                            QImage.Format.Format_Grayscale8)
            self._pixmap = QPixmap.fromImage(qimage.copy())
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """The image as large as fits, centred, with its caption right under it."""
        painter = QPainter(self)
        text_height = painter.fontMetrics().height() + 2
        side = max(0.0, min(self.width() - 4.0, self.height() - 4.0 - text_height))
        top = (self.height() - side - text_height) / 2
        if self._pixmap is not None:
            target = QRectF((self.width() - side) / 2, top, side, side)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        caption = QRectF(0, top + side, self.width(), text_height)
        painter.drawText(caption, Qt.AlignmentFlag.AlignCenter, self.caption)
        painter.end()


class AugmentPreview(QWidget):
    """The selected image as-is and under the training transforms for ``N_AUGMENTED`` seeds."""

    settings_changed = Signal(object)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None,
                 size: int = PREVIEW_SIZE) -> None:
        super().__init__(parent)
        self._runner = runner
        self._size = size
        self._rng = np.random.default_rng()
        self.source: np.ndarray | None = None
        self.seeds: list[int] = list(range(1, N_AUGMENTED + 1))
        self.outputs: list[np.ndarray] = []
        self._pending_name = ""
        self.title = QLabel("Select a thumbnail to see it as training will.")
        self.title.setWordWrap(True)
        self.cells = [ImageCell() for _ in range(N_AUGMENTED + 1)]
        grid = QGridLayout()
        grid.setSpacing(4)
        for i, cell in enumerate(self.cells):
            grid.addWidget(cell, i // COLUMNS, i % COLUMNS)
        self.flip = QCheckBox("Flip left-right")
        self.flip.setToolTip("Mirror half the images. Off by default: a mirrored chest film "
                             "puts the heart on the wrong side, which a real film never does")
        self.spins: dict[str, QDoubleSpinBox] = {}
        controls = QGridLayout()
        for i, (name, label, maximum, step, tip) in enumerate(_FIELDS):
            spin = QDoubleSpinBox()
            spin.setRange(0.0, maximum)
            spin.setSingleStep(step)
            spin.setDecimals(0 if step >= 1 else 2)
            spin.setToolTip(tip)
            caption = QLabel(label)
            caption.setToolTip(tip)
            controls.addWidget(caption, i // 2, (i % 2) * 2)
            controls.addWidget(spin, i // 2, (i % 2) * 2 + 1)
            self.spins[name] = spin
        controls.addWidget(self.flip, len(_FIELDS) // 2, 2, 1, 2)
        self.reroll_button = QPushButton("Re-roll")
        self.reroll_button.setToolTip("Draw new random seeds for the augmented copies")
        defaults = QPushButton("Defaults")
        defaults.setToolTip("Back to the training defaults")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(defaults)
        buttons.addWidget(self.reroll_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(grid)
        layout.addLayout(controls)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.set_settings(AugmentSettings())
        for spin in self.spins.values():
            spin.valueChanged.connect(self._on_control_changed)
        self.flip.toggled.connect(self._on_control_changed)
        self.reroll_button.clicked.connect(self.reroll)
        defaults.clicked.connect(self._restore_defaults)

    # Settings ----------------------------------------------------------------------------
    def settings(self) -> AugmentSettings:
        values = {name: float(spin.value()) for name, spin in self.spins.items()}
        return replace(AugmentSettings(), flip=self.flip.isChecked(), **values)

    def set_settings(self, settings: AugmentSettings) -> None:
        widgets = [*self.spins.values(), self.flip]
        for widget in widgets:
            widget.blockSignals(True)
        for name, spin in self.spins.items():
            spin.setValue(float(getattr(settings, name)))
        self.flip.setChecked(settings.flip)
        for widget in widgets:
            widget.blockSignals(False)
        self._render()
        self.settings_changed.emit(self.settings())

    @Slot()
    def _on_control_changed(self) -> None:
        self._render()
        self.settings_changed.emit(self.settings())

    @Slot()
    def _restore_defaults(self) -> None:
        self.set_settings(AugmentSettings())

    # Image and seeds ---------------------------------------------------------------------
    def set_image(self, path: str) -> None:
        """Load ``path`` in a worker at the preview size, then show it."""
        self._pending_name = Path(path).name
        self.title.setText(f"Loading {self._pending_name}...")
        self._runner.submit("dataset.augment", _load, path, self._size,
                            done=self._on_loaded, failed=self._on_failed)

    def set_source(self, image: np.ndarray, name: str = "") -> None:
        """Show an already loaded (H, W) uint8 image."""
        self.source = np.array(image, dtype=np.uint8, order="C")  # a writable copy for torch
        self.title.setText(f"<b>{name}</b> as the model is given it ({image.shape[1]} x "
                           f"{image.shape[0]}) and {N_AUGMENTED} random training draws"
                           if name else "")
        self._render()

    def set_seeds(self, seeds: list[int]) -> None:
        if len(seeds) != N_AUGMENTED:
            raise ValueError(f"need {N_AUGMENTED} seeds, not {len(seeds)}")
        self.seeds = [int(s) for s in seeds]
        self._render()

    @Slot()
    def reroll(self) -> None:
        self.set_seeds(self._rng.integers(0, MAX_SEED, N_AUGMENTED).tolist())

    @Slot(object)
    def _on_loaded(self, image: np.ndarray) -> None:
        self.set_source(image, self._pending_name)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.source = None
        self.title.setText(f"Cannot preview: {message}")
        self._render()

    def _render(self) -> None:
        if self.source is None:
            self.outputs = []
            for cell in self.cells:
                cell.set_image(None)
            return
        settings = self.settings()
        augmented = [preview(self.source, settings, seed) for seed in self.seeds]
        self.outputs = [self.source, *augmented]
        self.cells[0].set_image(self.source, "original")
        for cell, image, seed in zip(self.cells[1:], augmented, self.seeds, strict=True):
            cell.set_image(image, f"seed {seed}")
