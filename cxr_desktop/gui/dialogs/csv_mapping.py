"""Map the columns of a CSV of no known layout, with a live preview of what they give.

Every change re-imports the table through the core (``open_dataset`` with a
``ColumnMapping``) in a worker, a moment after the user stops typing, and the preview shows
the first rows exactly as the dataset will hold them, or the import's one-line error.
"""

from __future__ import annotations

import html
from functools import partial
from pathlib import Path

import pandas as pd
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data import ColumnMapping, DatasetSpec, open_dataset
from cxr_desktop.core.data.importers.mapping import complete_mapping
from cxr_desktop.core.data.importers.tables import read_header
from cxr_desktop.core.errors import DatasetError
from cxr_desktop.gui.widgets.thumbnail_grid import label_text
from cxr_desktop.gui.workers import TaskRunner

PREVIEW_ROWS = 20
NONE = "(none)"
DEBOUNCE_MS = 250
CLASSES_SHOWN = 12
# More classes than this reads like a wrong label column (an age, an ID): say so.
MANY_CLASSES = 20


def initial_mapping(path: Path, columns: list[str]) -> ColumnMapping:
    """The core's guess of the columns; the first and last column when it cannot tell."""
    frame = pd.DataFrame(columns=columns)
    try:
        return complete_mapping(None, frame, path)
    except DatasetError:
        pass
    try:
        return complete_mapping({"labels": [columns[-1]]}, frame, path)
    except DatasetError:
        return ColumnMapping(image=columns[0], labels=[columns[-1]] if len(columns) > 1 else [])


def _parse(path: str, mapping: ColumnMapping) -> DatasetSpec:
    return open_dataset(path, format="csv", mapping=mapping)


class CsvMappingDialog(QDialog):
    """Pick the image, label, patient and split columns, filters and a binarise rule."""

    def __init__(self, path: str | Path, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._runner = runner
        self._generation = 0
        self._in_flight = self._pending = False
        self.spec: DatasetSpec | None = None
        self.error = ""
        self.setWindowTitle(f"Columns of {self.path.name}")
        self.resize(860, 760)
        self.columns = read_header(self.path)
        guess = initial_mapping(self.path, self.columns)
        self.image_combo = QComboBox()
        self.image_combo.addItems(self.columns)
        self.image_combo.setCurrentText(guess.image)
        self.image_combo.setToolTip("The column of image file names or paths, relative to "
                                    "the CSV's folder")
        self.label_list = QListWidget()
        self.label_list.setToolTip("One column of class names or 0/1 makes a binary or "
                                   "multi-class task; several 0/1 columns a multi-label one")
        self.label_list.setMaximumHeight(100)
        for column in self.columns:
            entry = QListWidgetItem(column)
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = column in guess.labels
            entry.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            self.label_list.addItem(entry)
        self.patient_combo = self._optional_combo(guess.patient)
        self.patient_combo.setToolTip("Keeps each patient's images in one split")
        self.split_combo = self._optional_combo(guess.split)
        self.split_combo.setToolTip("A column saying train / val / test; without one, splits "
                                    "are drawn at random (by patient when known)")
        self.filters_edit = QPlainTextEdit("\n".join(guess.filters))
        self.filters_edit.setPlaceholderText('One per line, e.g.  view == PA   or   '
                                             'finding in COVID-19, Pneumonia')
        self.filters_edit.setMaximumHeight(56)
        self.filters_edit.setToolTip("Keep only the rows that pass every filter: column == "
                                     "value, !=, in a, b, not in a, b (case is ignored)")
        self.binarize_check = QCheckBox("Non-zero is 1 (counts or grades become present/absent)")
        self.separator_edit = QLineEdit()
        self.separator_edit.setPlaceholderText("e.g. |  for labels like A|B in one column")
        self.separator_edit.setMaximumWidth(260)
        form = QFormLayout()
        form.addRow("Image column", self.image_combo)
        form.addRow("Label column(s)", self.label_list)
        form.addRow("Patient column", self.patient_combo)
        form.addRow("Split column", self.split_combo)
        form.addRow("Filters", self.filters_edit)
        form.addRow("Binarise", self.binarize_check)
        form.addRow("Label separator", self.separator_edit)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Image", "Split", "Patient", "Label(s)"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Open dataset")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel(f"<b>Preview</b> (first {PREVIEW_ROWS} images as imported)"))
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        for combo in (self.image_combo, self.patient_combo, self.split_combo):
            combo.currentIndexChanged.connect(self._schedule)
        self.label_list.itemChanged.connect(self._schedule)
        self.filters_edit.textChanged.connect(self._schedule)
        self.binarize_check.toggled.connect(self._schedule)
        self.separator_edit.textChanged.connect(self._schedule)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.refresh()

    def _optional_combo(self, current: str | None) -> QComboBox:
        combo = QComboBox()
        combo.addItems([NONE, *self.columns])
        combo.setCurrentText(current or NONE)
        return combo

    # The mapping -------------------------------------------------------------------------
    def mapping(self) -> ColumnMapping:
        """The mapping the widgets describe now."""
        labels = [self.label_list.item(i).text() for i in range(self.label_list.count())
                  if self.label_list.item(i).checkState() == Qt.CheckState.Checked]
        filters = [line.strip() for line in self.filters_edit.toPlainText().splitlines()
                   if line.strip()]

        def optional(combo: QComboBox) -> str | None:
            text = combo.currentText()
            return None if text == NONE else text

        return ColumnMapping(
            image=self.image_combo.currentText(),
            labels=labels,
            patient=optional(self.patient_combo),
            split=optional(self.split_combo),
            filters=filters,
            binarize="nonzero" if self.binarize_check.isChecked() else None,
            separator=self.separator_edit.text().strip() or None,
        )

    def set_labels(self, columns: list[str]) -> None:
        """Tick exactly ``columns`` as label columns."""
        for i in range(self.label_list.count()):
            entry = self.label_list.item(i)
            checked = entry.text() in columns
            entry.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # Preview -----------------------------------------------------------------------------
    @Slot()
    def _schedule(self) -> None:
        self._generation += 1
        self.spec = None
        self._set_ok(False)
        self.status.setText("Reading...")
        self._timer.start()

    @Slot()
    def refresh(self) -> None:
        """Re-import the table with the current mapping (in a worker)."""
        self._timer.stop()
        self._generation += 1
        self.spec = None
        self._set_ok(False)
        mapping = self.mapping()
        if not mapping.labels:
            self._show_error("Tick at least one label column.")
            return
        self.status.setText("Reading...")
        if self._in_flight:  # one import at a time: a big table must not pile them up
            self._pending = True
            return
        self._in_flight = True
        self._runner.submit("dataset.mapping_preview", _parse, str(self.path), mapping,
                            done=partial(self._on_parsed, self._generation),
                            failed=partial(self._on_error, self._generation))

    def busy(self) -> bool:
        return self._timer.isActive() or self._in_flight

    def _landed(self, generation: int) -> bool:
        """An import ended: start the one asked for meanwhile; True if this is current."""
        self._in_flight = False
        if self._pending:
            self._pending = False
            self.refresh()
            return False
        return generation == self._generation

    def _on_parsed(self, generation: int, spec: DatasetSpec) -> None:
        if not self._landed(generation):
            return
        self.spec = spec
        self.error = ""
        summary = spec.summary()
        splits = ", ".join(f"{name} {info['images']}" for name, info in summary["splits"].items()
                           if info["images"])
        skipped = f"; {len(spec.problems)} rows skipped (hover for why)" if spec.problems else ""
        shown = spec.classes[:CLASSES_SHOWN]
        more = len(spec.classes) - len(shown)
        classes = html.escape(", ".join(shown) + (f" and {more} more" if more > 0 else ""))
        many = (f"<br><span style='color:#b36b00'>{len(spec.classes)} classes: is the "
                f"label column right?</span>" if len(spec.classes) > MANY_CLASSES else "")
        self.status.setText(f"<b>{len(spec.items)} images</b>, {spec.task} task, classes: "
                            f"{classes}; {splits}{skipped}{many}")
        self.status.setToolTip("\n".join(p.detail for p in spec.problems[:30]))
        self.table.setRowCount(0)
        for item in spec.items[:PREVIEW_ROWS]:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for column, text in enumerate((item.path, item.split, item.patient or "",
                                           label_text(item.labels))):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self._set_ok(True)

    def _on_error(self, generation: int, message: str) -> None:
        if self._landed(generation):
            self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.spec = None
        self.error = message
        self.status.setText(f"<span style='color:#c0392b'>{html.escape(message)}</span>")
        self.status.setToolTip("")
        self.table.setRowCount(0)
        self._set_ok(False)

    def _set_ok(self, enabled: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(enabled)
