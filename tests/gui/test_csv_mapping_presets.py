"""The mapping dialog on the public datasets' label tables: the detected preset fills it,
every field of the mapping is editable and round-trips, the preview re-imports on each edit
(annotation counts, notes, shapes per image), and a preset that does not fit is one line."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from public_layouts import LABELS, make_rsna, make_siim

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.importers.presets import PRESETS, detect_preset
from cxr_desktop.core.data.importers.tables import read_header
from cxr_desktop.gui.dialogs.csv_mapping import CsvMappingDialog, initial_mapping
from cxr_desktop.gui.dialogs.mapping_form import NONE, MappingForm, value_list, value_text
from cxr_desktop.gui.workers import TaskRunner

TIMEOUT = 30_000
SHAPES_COLUMN = 4


@pytest.fixture(scope="module")
def siim(tmp_path_factory) -> Path:
    return make_siim(tmp_path_factory.mktemp("siim"))


@pytest.fixture(scope="module")
def rsna(tmp_path_factory) -> Path:
    return make_rsna(tmp_path_factory.mktemp("rsna"))


@pytest.fixture
def open_dialog(qtbot):
    """``open_dialog(csv)``: the dialog with its own runner, its first preview landed."""
    dialogs: list[tuple[CsvMappingDialog, TaskRunner]] = []

    def make(path: Path) -> CsvMappingDialog:
        runner = TaskRunner()
        dialog = CsvMappingDialog(path, runner)
        runner.setParent(dialog)  # its threads are then children the conftest check sees
        dialogs.append((dialog, runner))
        dialog.show()
        wait_preview(qtbot, dialog)
        return dialog

    yield make
    for dialog, runner in dialogs:
        qtbot.waitUntil(lambda r=runner: not r.busy(), timeout=TIMEOUT)
        dialog.close()
        dialog.deleteLater()


def wait_preview(qtbot, dialog: CsvMappingDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.busy() and (dialog.spec is not None or bool(dialog.error)),
                    timeout=TIMEOUT)


def ok_enabled(dialog: CsvMappingDialog) -> bool:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()


def class_totals(spec) -> dict[str, int]:
    out: dict[str, int] = {}
    for info in spec.summary()["splits"].values():
        for name, count in info["per_class"].items():
            out[name] = out.get(name, 0) + count
    return out


def shapes_shown(dialog: CsvMappingDialog) -> list[int]:
    return [int(dialog.table.item(row, SHAPES_COLUMN).text())
            for row in range(dialog.table.rowCount())]


def test_siim_preset_fills_the_dialog_and_imports_what_the_cli_does(open_dialog, siim):
    table = siim / "train-rle.csv"
    dialog = open_dialog(table)
    form = dialog.form
    assert form.preset_name() == "siim"
    assert form.preset_combo.currentText() == "SIIM-ACR pneumothorax (detected)"
    offered = {form.preset_combo.itemData(i): form.preset_combo.model().item(i).isEnabled()
               for i in range(form.preset_combo.count())}
    assert offered == {**dict.fromkeys(PRESETS, False), "siim": True, "none": True}
    assert "Detected: SIIM-ACR pneumothorax preset." in dialog.preset_label.text()
    assert "EncodedPixels is not -1 is a pneumothorax" in dialog.preset_label.text()
    assert form.image_combo.currentText() == "ImageId"
    assert form.positive_if_edit.text() == 'EncodedPixels != "-1"'
    assert form.positive_class_edit.text() == "pneumothorax"
    assert form.mask_combo.currentText() == "EncodedPixels"
    assert form.patient_combo.currentText() == NONE  # patients come from the DICOM headers

    spec = dialog.spec
    assert spec is not None and ok_enabled(dialog) and not dialog.error
    assert len(spec.items) == 12
    assert class_totals(spec) == {"no_pneumothorax": 7, "pneumothorax": 5}
    counts = spec.annotation_counts()
    assert counts["images"] == 5 and counts["shapes"] >= 8
    status = dialog.status.text()
    assert "<b>12 images</b>, binary task" in status
    assert "no_pneumothorax 7, pneumothorax 5" in status
    assert f"{counts['shapes']} shapes on 5 images" in status
    # The preset's sentence is shown once (above); the import's own notes in the preview.
    assert "DICOM headers (PatientID)" in dialog.notes.text()
    assert "SIIM-ACR pneumothorax preset" not in dialog.notes.text()
    assert shapes_shown(dialog) == [len(item.shapes) for item in spec.items[:20]]
    assert sum(shapes_shown(dialog)) == counts["shapes"]  # all 12 images are in the table

    # Accepted as it is, the mapping imports exactly what `cxr-desktop inspect FOLDER` does.
    mapping = dialog.mapping()
    assert replace(mapping, guess=True) == initial_mapping(table, dialog.columns)[0]
    accepted = open_dataset(table, format="csv", mapping=mapping)
    cli = open_dataset(siim)
    assert [item.to_dict() for item in accepted.items] == [item.to_dict() for item in cli.items]
    assert accepted.notes == cli.notes
    assert accepted.source["mapping"]["preset"] == "siim"
    positives = [item for item in accepted.items if item.labels == "pneumothorax"]
    assert len(positives) == 5 and all(item.shapes for item in positives)
    assert all(s.shape_type == "polygon" for item in positives for s in item.shapes)


def test_editing_the_condition_updates_the_preview(open_dialog, qtbot, rsna):
    dialog = open_dialog(rsna / "stage_2_train_labels.csv")
    form = dialog.form
    assert form.preset_name() == "rsna"
    assert form.positive_if_edit.text() == "Target == 1"
    assert [c.currentText() for c in form.box_combos] == ["x", "y", "width", "height"]
    assert form.box_format_combo.currentData() == "xywh"
    assert form.patient_combo.currentText() == "patientId"
    assert class_totals(dialog.spec) == {"no_opacity": 7, "opacity": 5}
    assert "no_opacity 7, opacity 5" in dialog.status.text()
    assert "9 shapes on 5 images" in dialog.status.text()
    boxed = {item.path for item in dialog.spec.items if item.shapes}

    form.positive_if_edit.setText("Target == 0")
    assert dialog.spec is None and not ok_enabled(dialog)  # until the new import lands
    wait_preview(qtbot, dialog)
    spec = dialog.spec
    assert class_totals(spec) == {"no_opacity": 5, "opacity": 7}
    assert "no_opacity 5, opacity 7" in dialog.status.text()
    assert dialog.mapping().positive_if == "Target == 0"
    assert dialog.mapping().preset == "rsna"  # an edit the preset can carry keeps it
    for row, item in enumerate(spec.items[:20]):  # the table follows: boxed images flipped
        assert dialog.table.item(row, 3).text() == item.labels
        assert (item.labels == "no_opacity") == (item.path in boxed)

    form.positive_if_edit.setText("Target ==")  # a condition that cannot be read
    wait_preview(qtbot, dialog)
    assert "cannot read condition" in dialog.error and not ok_enabled(dialog)
    assert dialog.table.rowCount() == 0


def test_preset_none_on_siim_is_an_error_line_then_a_mapping_of_ones_own(open_dialog, qtbot,
                                                                        siim):
    dialog = open_dialog(siim / "train-rle.csv")
    form = dialog.form
    form.preset_combo.setCurrentIndex(form.preset_combo.findData("none"))
    wait_preview(qtbot, dialog)
    assert dialog.spec is None and not ok_enabled(dialog)
    assert "cannot tell which column holds the labels" in dialog.error
    assert "Tick a label column" in dialog.status.text()
    assert "Preset off" in dialog.preset_label.text()
    assert form.positive_if_edit.text() == "" and form.mask_combo.currentText() == NONE
    assert form.image_combo.currentText() == "ImageId"  # still guessed by its name

    form.positive_if_edit.setText("EncodedPixels != -1")  # the user's own mapping imports
    wait_preview(qtbot, dialog)
    spec = dialog.spec
    assert spec is not None and ok_enabled(dialog)
    assert class_totals(spec) == {"no_positive": 7, "positive": 5}
    assert spec.annotation_counts()["shapes"] == 0  # no mask column chosen
    assert dialog.mapping().preset == "none"
    assert not any("preset" in note for note in spec.notes)


def test_a_field_cleared_stays_cleared_and_the_preset_stays_named(open_dialog, qtbot, siim):
    dialog = open_dialog(siim / "train-rle.csv")
    assert dialog.spec.annotation_counts()["images"] == 5
    dialog.form.mask_combo.setCurrentText(NONE)
    dialog.form.patient_combo.setCurrentText(NONE)
    wait_preview(qtbot, dialog)
    # read exactly as shown: neither the preset nor the column names fill the mask back in
    mapping = dialog.mapping()
    assert mapping.mask is None and mapping.patient is None
    assert mapping.preset == "siim" and mapping.guess is False
    assert dialog.spec.annotation_counts() == {"images": 0, "shapes": 0}
    assert class_totals(dialog.spec) == {"no_pneumothorax": 7, "pneumothorax": 5}
    assert set(shapes_shown(dialog)) == {0}
    assert any("SIIM-ACR pneumothorax preset" in note for note in dialog.spec.notes)
    dialog.form.mask_combo.setCurrentText("EncodedPixels")  # back as the preset has it
    wait_preview(qtbot, dialog)
    assert dialog.spec.annotation_counts()["images"] == 5


@pytest.mark.parametrize("table", sorted(p.name for p in LABELS.glob("*.csv")
                                         if detect_preset(read_header(p))))
def test_every_preset_round_trips_through_the_form(qtbot, table):
    path = LABELS / table
    columns = read_header(path)
    mapping, error = initial_mapping(path, columns)
    assert not error and mapping.preset in PRESETS
    form = MappingForm(columns, mapping.preset)
    qtbot.addWidget(form)
    form.set_preset(mapping.preset)
    form.set_mapping(mapping)
    assert form.mapping() == mapping


def test_value_lists_read_as_the_values_of_an_in_filter():
    values = ["PA", "AP Supine", ""]
    assert value_text(values) == 'PA, AP Supine, ""'
    assert value_list(value_text(values)) == values
    assert value_list(' "todo" , unknown ') == ["todo", "unknown"]
    assert value_list("  ") == []
