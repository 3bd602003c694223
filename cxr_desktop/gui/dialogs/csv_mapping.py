"""Map the columns of a label table, from the preset its header matches or from scratch,
with a live preview of what they give.

The form starts from the core's mapping (``complete_mapping``: the preset the header
matches, else columns guessed by name). Every change re-imports the table through the core
(``open_dataset`` with the form's ``ColumnMapping``) in a worker, a moment after the user
stops typing, one import at a time; the preview shows the first rows exactly as the dataset
will hold them, with their shapes, the annotation counts and the import's notes, or its
one-line error.
"""

from __future__ import annotations

import html
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data import ColumnMapping, DatasetSpec, open_dataset
from cxr_desktop.core.data.importers.mapping import complete_mapping
from cxr_desktop.core.data.importers.presets import PRESETS, detect_preset
from cxr_desktop.core.data.importers.tables import read_header
from cxr_desktop.core.errors import DatasetError
from cxr_desktop.gui.dialogs.mapping_form import NO_PRESET, MappingForm
from cxr_desktop.gui.widgets.thumbnail_grid import label_text
from cxr_desktop.gui.workers import TaskRunner

PREVIEW_ROWS = 20
DEBOUNCE_MS = 250
CLASSES_SHOWN = 12
# More classes than this reads like a wrong label column (an age, an ID): say so.
MANY_CLASSES = 20
WARNING_COLOUR = "#b36b00"
ERROR_COLOUR = "#c0392b"
NO_LABELS = "Tick a label column or write a 'Positive if' condition."


def initial_mapping(path: Path, columns: list[str],
                    preset: str | None = None) -> tuple[ColumnMapping, str]:
    """The core's mapping of a table with these columns: from ``preset`` (a name of
    ``PRESETS`` or ``"none"``; default: the one the header matches), the rest guessed.
    When the core cannot tell, only the image column is guessed and the second value says
    why (otherwise ``""``)."""
    frame = pd.DataFrame(columns=columns)
    try:
        return complete_mapping({"preset": preset} if preset else None, frame, path), ""
    except DatasetError as exc:
        error = str(exc)
    try:
        image = complete_mapping({"preset": NO_PRESET, "labels": [columns[-1]]}, frame,
                                 path).image
    except DatasetError:
        image = columns[0]
    return ColumnMapping(image=image, preset=preset), error


def preset_text(detected: str | None, chosen: str) -> str:
    """What the dialog says about the presets: the one detected, the one used and what it
    assumes (rich text)."""
    if detected:
        text = f"<b>Detected: {html.escape(PRESETS[detected].title)} preset.</b> "
    else:
        text = "<b>No preset matches this header</b>: columns are guessed from their names. "
    if chosen in PRESETS:
        if chosen != detected:
            text += f"Using the {html.escape(PRESETS[chosen].title)} preset instead. "
        text += html.escape(PRESETS[chosen].assumes[0].upper() + PRESETS[chosen].assumes[1:])
        text += ". Every field below can be changed; the table is read exactly as set."
    elif detected:
        text += "Preset off: the columns are read as set below."
    return text


def _parse(path: str, mapping: ColumnMapping) -> DatasetSpec:
    return open_dataset(path, format="csv", mapping=mapping)


class CsvMappingDialog(QDialog):
    """The column mapping of a label table, a preset's or the user's, previewed live."""

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
        self.resize(980, 640)  # fits a 1024 x 700 screen, title bar included
        self.columns = read_header(self.path)
        preset = detect_preset(self.columns)
        self.detected = preset.name if preset else None
        guess, self.guess_error = initial_mapping(self.path, self.columns)
        self.form = MappingForm(self.columns, self.detected)
        self.form.set_preset(guess.preset or NO_PRESET)
        self.form.set_mapping(guess)
        self.preset_label = QLabel("")
        form_area = QScrollArea()
        form_area.setWidgetResizable(True)
        form_area.setFrameShape(QScrollArea.Shape.NoFrame)
        form_area.setWidget(self.form)
        self.status = QLabel("")
        self.notes = QLabel("")
        for label in (self.preset_label, self.status, self.notes):
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)  # one note alone is rich text too
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Image", "Split", "Patient", "Label(s)",
                                              "Shapes"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 60), (2, 170), (3, 150), (4, 60)):
            self.table.setColumnWidth(column, width)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        preview = QWidget()
        preview_layout = QVBoxLayout(preview)
        preview_layout.setContentsMargins(0, 0, 0, 0)
        preview_layout.addWidget(QLabel(f"<b>Preview</b> (first {PREVIEW_ROWS} images as "
                                        "imported)"))
        preview_layout.addWidget(self.status)
        preview_layout.addWidget(self.notes)
        preview_layout.addWidget(self.table, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(form_area)
        splitter.addWidget(preview)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(1, 1)
        form_height = self.form.sizeHint().height() + 2 * form_area.frameWidth()
        splitter.setSizes([form_height, max(200, self.height() - form_height)])
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Open dataset")
        layout = QVBoxLayout(self)
        layout.addWidget(self.preset_label)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.buttons)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self.form.changed.connect(self._schedule)
        self.form.preset_chosen.connect(self._on_preset_chosen)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.refresh()

    def mapping(self) -> ColumnMapping:
        """The mapping the form describes, read exactly as shown (``guess`` off: a field the
        user cleared stays cleared, nothing is filled in from the preset or the names)."""
        return replace(self.form.mapping(), guess=False)

    @Slot(str)
    def _on_preset_chosen(self, name: str) -> None:
        """Fill the form from preset ``name`` (``"none"``: the columns guessed by name)."""
        mapping, self.guess_error = initial_mapping(self.path, self.columns, name)
        self.form.set_mapping(mapping)
        self.refresh()

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
        self.preset_label.setText(preset_text(self.detected, self.form.preset_name()))
        if not mapping.labels and not mapping.positive_if:
            self._show_error(f"{self.guess_error} {NO_LABELS}".strip())
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
        self.status.setText(summary_text(spec))
        self.status.setToolTip("\n".join(p.detail for p in spec.problems[:30]))
        shown_above = PRESETS[self.form.preset_name()].note() \
            if self.form.preset_name() in PRESETS else None
        notes = [n for n in spec.notes if n != shown_above]
        self.notes.setText("<br>".join(f"&bull; {html.escape(n)}" for n in notes))
        self.notes.setVisible(bool(notes))
        self.table.setRowCount(0)
        for item in spec.items[:PREVIEW_ROWS]:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for column, text in enumerate((item.path, item.split, item.patient or "",
                                           label_text(item.labels), str(len(item.shapes)))):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                self.table.setItem(row, column, cell)
        self._set_ok(True)

    def _on_error(self, generation: int, message: str) -> None:
        if self._landed(generation):
            self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.spec = None
        self.error = message
        self.status.setText(f"<span style='color:{ERROR_COLOUR}'>{html.escape(message)}"
                            "</span>")
        self.status.setToolTip("")
        self.notes.setVisible(False)
        self.table.setRowCount(0)
        self._set_ok(False)

    def _set_ok(self, enabled: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(enabled)


def summary_text(spec: DatasetSpec) -> str:
    """One paragraph (rich text): images, task, classes and their images, splits, shapes,
    rows skipped."""
    summary = spec.summary()
    splits = ", ".join(f"{name} {info['images']}" for name, info in summary["splits"].items()
                       if info["images"])
    counts = spec.annotation_counts()
    shapes = (f"; {counts['shapes']} shapes on {counts['images']} images"
              if counts["shapes"] else "")
    skipped = (f"; {len(spec.problems)} row{'s' if len(spec.problems) > 1 else ''} skipped "
               "(hover for why)" if spec.problems else "")
    totals = {name: sum(info["per_class"].get(name, 0) for info in summary["splits"].values())
              for name in spec.classes}
    shown = [f"{name} {totals[name]}" for name in spec.classes[:CLASSES_SHOWN]]
    more = len(spec.classes) - len(shown)
    classes = html.escape(", ".join(shown) + (f" and {more} more" if more > 0 else ""))
    many = (f"<br><span style='color:{WARNING_COLOUR}'>{len(spec.classes)} classes: is the "
            f"label column right?</span>" if len(spec.classes) > MANY_CLASSES else "")
    return (f"<b>{len(spec.items)} images</b>, {spec.task} task, classes: {classes}; "
            f"{splits}{shapes}{skipped}{many}")
