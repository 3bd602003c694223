"""The Dataset tab's "De-identify a copy...": the open dataset's DICOM files copied in a
worker, class folders kept, the outcome (files, warnings) or a bad folder as one status
line."""

from __future__ import annotations

import sys
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from public_layouts import chest_pixels, write_dicom

from cxr_desktop.gui.tabs.dataset_tab import DatasetTab
from cxr_desktop.gui.workers import TaskRunner

TIMEOUT = 30_000
NAME, PATIENT_ID = "Quimbyfield^Josephine", "PID-QUIMBY-778121"


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "dataset"
    for index, label in enumerate(("NORMAL", "NORMAL", "PNEUMONIA", "PNEUMONIA")):
        write_dicom(root / label / f"{NAME.split('^')[0]}_{index}.dcm",
                    chest_pixels(index, 64), PatientName=NAME, PatientID=PATIENT_ID,
                    BurnedInAnnotation="YES" if index == 0 else "NO")
    return root


@pytest.fixture
def tab(qtbot):
    runner = TaskRunner()
    widget = DatasetTab(runner)
    runner.setParent(widget)
    widget.show()
    yield widget
    widget.shutdown()
    qtbot.waitUntil(lambda: not runner.busy(), timeout=TIMEOUT)
    widget.close()
    widget.deleteLater()


def _open(qtbot, tab: DatasetTab, path: Path) -> None:
    tab.open_dataset(path)
    qtbot.waitUntil(lambda: tab.report is not None and not tab._runner.busy()
                    and not tab.thumbnails.loading, timeout=TIMEOUT)


def _copy(qtbot, tab: DatasetTab, destination: Path) -> str:
    messages: list[str] = []
    tab.status_message.connect(messages.append)
    tab.deidentify_copy(destination)
    qtbot.waitUntil(lambda: len(messages) == 2 and not tab._runner.busy(), timeout=TIMEOUT)
    assert messages[0] == f"De-identifying a copy into {destination}..."
    return messages[1]


def test_copy_of_the_open_dataset(qtbot, tab, dataset, tmp_path):
    _open(qtbot, tab, dataset)
    message = _copy(qtbot, tab, tmp_path / "copy")
    assert message.startswith(f"De-identified copy in {tmp_path / 'copy'}: 4 files written, "
                              "0 left out, 1 warning (burned-in")
    copies = sorted((tmp_path / "copy").rglob("*.dcm"))
    assert sorted({p.parent.name for p in copies}) == ["NORMAL", "PNEUMONIA"]
    for path in copies:
        assert b"Quimbyfield" not in path.read_bytes()
        assert pydicom.dcmread(path).PatientID == "ANON-0001"


def test_bad_destination_is_one_status_line(qtbot, tab, dataset):
    _open(qtbot, tab, dataset)
    message = _copy(qtbot, tab, dataset / "NORMAL" / "anon")
    assert "is inside the source folder" in message and "\n" not in message
    assert not (dataset / "NORMAL" / "anon").exists()


def test_button_asks_for_a_dataset_first(tab):
    messages: list[str] = []
    tab.status_message.connect(messages.append)
    tab.deidentify_button.click()
    assert messages == ["Open a dataset first: its DICOM files are what is copied"]
