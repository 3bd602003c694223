"""The fields of a ``ColumnMapping`` as widgets: labels, rows, annotations and readers.

``MappingForm.set_mapping`` shows a mapping (a preset's, the core's guess) and
``MappingForm.mapping`` gives back the one the widgets describe now, field for field. The
form reads nothing itself: lists of values (views to keep, unknown values) are read with the
core's own condition grammar, as the values of an ``in`` filter.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data import ColumnMapping
from cxr_desktop.core.data.importers.filters import parse_filter
from cxr_desktop.core.data.importers.mapping import READER_RULES
from cxr_desktop.core.data.importers.presets import PRESETS

NONE = "(none)"
NO_PRESET = "none"
COMBO_CHARACTERS = 6
BOX_FORMAT_TEXT = {"xywh": "x, y, width, height", "xyxy": "x_min, y_min, x_max, y_max"}
BOX_PARTS = ("Box x (x_min)", "Box y (y_min)", "Box width (x_max)", "Box height (y_max)")


def value_list(text: str) -> list[str]:
    """``PA, AP, ""`` -> ``["PA", "AP", ""]``, read as the values of an ``in`` filter."""
    if not text.strip():
        return []
    return parse_filter(f"column in {text}")[2]


def value_text(values: list[str]) -> str:
    """The inverse of ``value_list``: the blank value written ``""``."""
    return ", ".join(value or '""' for value in values)


class MappingForm(QWidget):
    """Every field of a column mapping; ``changed`` on each edit by the user,
    ``preset_chosen(name)`` when another preset (or ``"none"``) is picked."""

    changed = Signal()
    preset_chosen = Signal(str)

    def __init__(self, columns: list[str], detected: str | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = columns
        self.preset_combo = QComboBox()
        for name, preset in PRESETS.items():
            suffix = " (detected)" if name == detected else ""
            self.preset_combo.addItem(preset.title + suffix, name)
            if not preset.matches(columns):  # its columns are not in this table
                index = self.preset_combo.count() - 1
                self.preset_combo.model().item(index).setEnabled(False)
                self.preset_combo.setItemData(index, "This table lacks the preset's columns",
                                              Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.addItem("None: map the columns yourself", NO_PRESET)
        self.preset_combo.setToolTip("The public dataset this table comes from; its preset "
                                     "fills the fields, which you can still change")
        self.image_combo = QComboBox()
        self.image_combo.addItems(columns)
        self.image_combo.setToolTip("The column of image file names, paths or ids, found "
                                    "under the table's folder")
        self.label_list = QListWidget()
        self.label_list.setToolTip("One column of class names or 0/1 makes a binary or "
                                   "multi-class task; several 0/1 columns a multi-label one")
        self.label_list.setMaximumHeight(88)
        self.label_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.label_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        for column in columns:
            entry = QListWidgetItem(column)
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Unchecked)
            self.label_list.addItem(entry)
        self.positive_if_edit = QLineEdit()
        self.positive_if_edit.setPlaceholderText('e.g. Target == 1   or   finding contains '
                                                 '"COVID-19"')
        self.positive_if_edit.setToolTip(
            "A binary label from a condition (replaces the label columns): column == value, "
            "!=, in a, b, not in a, b, contains, not contains, <, <=, >, >=; \"\" is blank")
        self.positive_class_edit = QLineEdit()
        self.positive_class_edit.setPlaceholderText("default: the condition's value")
        self.positive_class_edit.setToolTip("The name of the positive class; the other one is "
                                            "no_<name>")
        self.multilabel_check = QCheckBox("One finding per row (rows merged)")
        self.multilabel_check.setToolTip("The label column names one finding per row; the "
                                         "rows of an image are merged into its findings")
        self.binarize_check = QCheckBox("Non-zero is 1 (binarise counts)")
        self.binarize_check.setToolTip("Counts or grades become present / absent")
        self.separator_edit = QLineEdit()
        self.separator_edit.setPlaceholderText("e.g. |  for A|B in one cell")
        self.unknown_edit = QLineEdit()
        self.unknown_edit.setPlaceholderText("e.g. todo, unknown")
        self.unknown_edit.setToolTip("Label cells that mean 'not known', as a blank does "
                                     "(comma-separated)")
        self.patient_combo = self._optional_combo("Keeps each patient's images in one split")
        self.folder_combo = self._optional_combo("A column of folders the image names are in")
        self.split_combo = self._optional_combo("A column saying train / val / test; without "
                                                "one, splits are drawn at random (by patient "
                                                "when known)")
        self.filters_edit = QPlainTextEdit()
        self.filters_edit.setPlaceholderText("e.g. view == PA")
        self.filters_edit.setMaximumHeight(52)
        self.filters_edit.setToolTip("One per line; keep only the rows that pass every filter: "
                                     "column == "
                                     "value, !=, in a, b, not in a, b, contains, <, > (case "
                                     "is ignored)")
        self.view_combo = self._optional_combo("The column of views (PA, AP, ...)")
        self.views_edit = QLineEdit()
        self.views_edit.setPlaceholderText('e.g. PA, AP, ""')
        self.views_edit.setToolTip("Keep the rows of these views (comma-separated; \"\" keeps "
                                   "rows with no view)")
        self.box_combos = [self._optional_combo(f"{name}: a column in image pixels; blank "
                                                f"for a row with no box")
                           for name in BOX_PARTS]
        self.box_format_combo = QComboBox()
        for key, text in BOX_FORMAT_TEXT.items():
            self.box_format_combo.addItem(text, key)
        self.box_label_combo = self._optional_combo("The class of each box (default: the row's "
                                                    "label)")
        self.mask_combo = self._optional_combo("Run-length masks (SIIM's EncodedPixels); "
                                               "-1 or blank is no mask")
        self.reader_combo = self._optional_combo("The column telling readers apart (VinDr's "
                                                 "rad_id)")
        self.readers_combo = QComboBox()
        self.readers_combo.addItems(READER_RULES)
        self.readers_combo.setToolTip("any: a finding counts when any reader marks it; "
                                      "majority: when most readers do")
        self._layout()
        narrow = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        for combo in self.findChildren(QComboBox):  # long column names must not widen it
            if combo is self.preset_combo:
                continue
            combo.setSizeAdjustPolicy(narrow)
            combo.setMinimumContentsLength(COMBO_CHARACTERS)
        self._connect()

    def _optional_combo(self, tip: str) -> QComboBox:
        combo = QComboBox()
        combo.addItems([NONE, *self.columns])
        combo.setToolTip(tip)
        return combo

    def _layout(self) -> None:
        labels = QGroupBox("Labels")
        form = QFormLayout(labels)
        form.addRow("Image column", self.image_combo)
        form.addRow("Label column(s)", self.label_list)
        form.addRow("Positive if", self.positive_if_edit)
        form.addRow("Positive class", self.positive_class_edit)
        form.addRow(self.multilabel_check)
        form.addRow(self.binarize_check)
        rows = QGroupBox("Rows")
        form = QFormLayout(rows)
        form.addRow("Patient column", self.patient_combo)
        form.addRow("Folder column", self.folder_combo)
        form.addRow("Split column", self.split_combo)
        form.addRow("Filters", self.filters_edit)
        form.addRow("View column", self.view_combo)
        form.addRow("Views to keep", self.views_edit)
        form.addRow("Label separator", self.separator_edit)
        form.addRow("Unknown values", self.unknown_edit)
        annotations = QGroupBox("Annotations and readers")
        form = QFormLayout(annotations)
        for name, combo in zip(BOX_PARTS, self.box_combos, strict=True):
            form.addRow(name, combo)
        form.addRow("Box format", self.box_format_combo)
        form.addRow("Box label", self.box_label_combo)
        form.addRow("Mask column", self.mask_combo)
        readers = QHBoxLayout()
        readers.addWidget(self.reader_combo, 1)
        readers.addWidget(self.readers_combo)
        form.addRow("Reader column", readers)
        preset = QHBoxLayout()
        preset.addWidget(QLabel("Preset"))
        preset.addWidget(self.preset_combo)
        preset.addStretch(1)
        groups = QHBoxLayout()
        for box in (labels, rows, annotations):
            groups.addWidget(box, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(preset)
        layout.addLayout(groups)

    def _connect(self) -> None:
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        for combo in (self.image_combo, self.patient_combo, self.folder_combo,
                      self.split_combo, self.view_combo, self.box_format_combo,
                      self.box_label_combo, self.mask_combo, self.reader_combo,
                      self.readers_combo, *self.box_combos):
            combo.currentIndexChanged.connect(self.changed)
        for edit in (self.positive_if_edit, self.positive_class_edit, self.separator_edit,
                     self.unknown_edit, self.views_edit, self.filters_edit):
            edit.textChanged.connect(self.changed)
        for check in (self.multilabel_check, self.binarize_check):
            check.toggled.connect(self.changed)
        self.label_list.itemChanged.connect(self.changed)

    @Slot(int)
    def _on_preset_changed(self, _index: int) -> None:
        self.preset_chosen.emit(self.preset_name())

    # The mapping -------------------------------------------------------------------------
    def preset_name(self) -> str:
        """The preset picked: a name of ``PRESETS`` or ``"none"``."""
        return str(self.preset_combo.currentData())

    def set_mapping(self, mapping: ColumnMapping) -> None:
        """Show ``mapping`` (no ``changed`` signal; the preset combo is left as it is)."""
        self.blockSignals(True)
        try:
            self.image_combo.setCurrentText(mapping.image)
            self.set_labels(mapping.labels)
            self.positive_if_edit.setText(mapping.positive_if or "")
            self.positive_class_edit.setText(mapping.positive_class or "")
            self.multilabel_check.setChecked(mapping.multilabel)
            self.binarize_check.setChecked(mapping.binarize == "nonzero")
            self.separator_edit.setText(mapping.separator or "")
            self.unknown_edit.setText(value_text(mapping.unknown_values))
            for combo, value in ((self.patient_combo, mapping.patient),
                                 (self.folder_combo, mapping.folder),
                                 (self.split_combo, mapping.split),
                                 (self.view_combo, mapping.view),
                                 (self.box_label_combo, mapping.box_label),
                                 (self.mask_combo, mapping.mask),
                                 (self.reader_combo, mapping.reader)):
                combo.setCurrentText(value or NONE)
            self.filters_edit.setPlainText("\n".join(mapping.filters))
            self.views_edit.setText(value_text(mapping.views))
            boxes = mapping.boxes if len(mapping.boxes) == 4 else [None] * 4
            for combo, column in zip(self.box_combos, boxes, strict=True):
                combo.setCurrentText(column or NONE)
            self.box_format_combo.setCurrentIndex(self.box_format_combo.findData(
                mapping.box_format))
            self.readers_combo.setCurrentText(mapping.readers)
            for edit in (self.positive_if_edit, self.views_edit, self.unknown_edit):
                edit.setCursorPosition(0)  # the start of a long text shows, not its end
        finally:
            self.blockSignals(False)

    def set_preset(self, name: str) -> None:
        """Pick preset ``name`` (or ``"none"``) without ``preset_chosen``."""
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(name))
        self.preset_combo.blockSignals(False)

    def set_labels(self, columns: list[str]) -> None:
        """Tick exactly ``columns`` as label columns."""
        for i in range(self.label_list.count()):
            entry = self.label_list.item(i)
            checked = entry.text() in columns
            entry.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def mapping(self) -> ColumnMapping:
        """The mapping the widgets describe now."""
        def optional(combo: QComboBox) -> str | None:
            text = combo.currentText()
            return None if text == NONE else text

        boxes = [optional(combo) for combo in self.box_combos]
        return ColumnMapping(
            image=self.image_combo.currentText(),
            labels=[self.label_list.item(i).text() for i in range(self.label_list.count())
                    if self.label_list.item(i).checkState() == Qt.CheckState.Checked],
            patient=optional(self.patient_combo),
            folder=optional(self.folder_combo),
            split=optional(self.split_combo),
            filters=[line.strip() for line in self.filters_edit.toPlainText().splitlines()
                     if line.strip()],
            binarize="nonzero" if self.binarize_check.isChecked() else None,
            separator=self.separator_edit.text().strip() or None,
            positive_class=self.positive_class_edit.text().strip() or None,
            positive_if=self.positive_if_edit.text().strip() or None,
            multilabel=self.multilabel_check.isChecked(),
            boxes=[column for column in boxes if column],
            box_format=str(self.box_format_combo.currentData()),
            box_label=optional(self.box_label_combo),
            mask=optional(self.mask_combo),
            reader=optional(self.reader_combo),
            readers=self.readers_combo.currentText(),
            view=optional(self.view_combo),
            views=value_list(self.views_edit.text()),
            unknown_values=value_list(self.unknown_edit.text()),
            preset=self.preset_name(),
        )
