"""Dataset tab: open a folder or CSV, see its splits and classes, and what is wrong with it.

Left: the summary per split and class, the notes (the shapes the annotations hold, what the
import assumed: a preset's rules, rows merged) and the balance chart. Centre: thumbnails
filtered by split and class, annotations drawn. Right: the problems the checks found, and
the augmentation preview of the selected thumbnail. Reading the labels, the checks and the
thumbnails run in workers; the checks report progress and can be cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data import (
    CheckReport,
    check_dataset,
    detect_format,
    open_dataset,
    reopen,
)
from cxr_desktop.core.data.checks import unreadable_paths
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.data.importers import folder_table, unwrap
from cxr_desktop.core.data.spec import DatasetSpec, Problem
from cxr_desktop.core.dicom_out.deid_dataset import DeidOptions
from cxr_desktop.core.dicom_out.deidentify import DeidReport, deidentify
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.paths import demo_dir
from cxr_desktop.gui.dialogs.csv_mapping import CsvMappingDialog
from cxr_desktop.gui.drops import accept_file_drag, dropped_path
from cxr_desktop.gui.widgets.augment_preview import AugmentPreview
from cxr_desktop.gui.widgets.dataset_summary import DatasetSummary
from cxr_desktop.gui.widgets.thumbnail_grid import ThumbnailGrid
from cxr_desktop.gui.workers import TaskRunner

DEMO_TEXT = ("<b>No dataset open.</b> Open a folder of class folders, an Object-CXR folder, or a "
             "label CSV (NIH, CheXpert, or any CSV) — or try the demo dataset: about 200 "
             "synthetic chest radiographs, half with a foreign object, laid out like Object-CXR.")
TABLE_FILTER = "Label tables and saved specs (*.csv *.tsv *.txt *.json);;All files (*)"
PROBLEM_PATHS_SHOWN = 2


TEST_FRACTION = 0.1


def _demo_dataset(test_fraction: float) -> DatasetSpec:
    root = demo_dir()
    if not (root / "train.csv").exists():
        make_demo_dataset(root)
    return open_dataset(root, test_fraction=test_fraction)


def _checks(spec: DatasetSpec, cancel: threading.Event,
            progress: Callable[[int, int], None]) -> CheckReport:
    """Runs in the worker thread: ``progress`` is a signal's (thread-safe) emit."""
    return check_dataset(spec, progress=progress, should_stop=cancel.is_set)


def problem_text(problem: Problem) -> str:
    """Two lines: the kind and the first files, then what is wrong."""
    paths = ", ".join(problem.paths[:PROBLEM_PATHS_SHOWN])
    if len(problem.paths) > PROBLEM_PATHS_SHOWN:
        paths += f" and {len(problem.paths) - PROBLEM_PATHS_SHOWN} more"
    return f"{problem.kind.replace('_', ' ')}: {paths}\n{problem.detail}"


def _open_or_find_table(path: Path, test_fraction: float) -> DatasetSpec | Path:
    """The dataset at ``path``, or the label table whose columns the mapping dialog asks
    for (one of no known layout, or one a preset recognises, offered to accept)."""
    if detect_format(path) == "csv":
        return folder_table(unwrap(path)) if path.is_dir() else path
    return open_dataset(str(path), test_fraction=test_fraction)


class DatasetTab(QWidget):
    status_message = Signal(str)
    dataset_opened = Signal(object)
    open_image_requested = Signal(str)
    check_progress = Signal(object, int, int)  # the check's cancel event, done, total

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._cancel = threading.Event()
        self.spec: DatasetSpec | None = None
        self.problems: list[Problem] = []
        self.report: CheckReport | None = None
        self.mapping_dialog: CsvMappingDialog | None = None
        self.setAcceptDrops(True)
        self._build(runner)
        self.check_progress.connect(self._on_check_progress)

    def _build(self, runner: TaskRunner) -> None:
        open_folder = QPushButton("Open folder...")
        open_folder.setToolTip("A folder of class folders, an Object-CXR, NIH or CheXpert "
                               "folder (you can also drop a folder or CSV on this tab)")
        open_table = QPushButton("Open CSV or spec...")
        open_table.setToolTip("A label CSV (NIH, CheXpert, Object-CXR or any other, mapped "
                              "in a dialog) or a saved dataset spec (.json)")
        self.demo_button = QPushButton("Try the demo dataset")
        self.hold_out = QCheckBox("Hold out a test split when the data has none")
        self.hold_out.setChecked(True)
        self.hold_out.setToolTip("Unticked, a dataset without a test split keeps all its "
                                 "training images (as --test 0 on the command line)")
        self.path_label = QLabel("")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setFormat("checking %v / %m")
        self.cancel_button = QPushButton("Cancel checks")
        self.cancel_button.setVisible(False)
        top = QHBoxLayout()
        for widget in (open_folder, open_table, self.demo_button, self.hold_out,
                       self.path_label):
            top.addWidget(widget)
        top.addStretch(1)
        self.deidentify_button = QPushButton("De-identify a copy...")
        self.deidentify_button.setToolTip(
            "Copy the dataset's DICOM files into a new or empty folder with names, IDs, "
            "dates, institution and private tags removed or replaced (DICOM Basic Profile), "
            "class folders kept, pixels untouched")
        self.deidentify_button.clicked.connect(self.choose_deidentify_destination)
        top.addWidget(self.deidentify_button)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        self.banner = QLabel(DEMO_TEXT)
        self.banner.setWordWrap(True)
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner.setMargin(12)

        self.summary_pane = DatasetSummary()
        self.summary, self.notes, self.notes_area, self.chart = (
            self.summary_pane.tree, self.summary_pane.notes, self.summary_pane.notes_area,
            self.summary_pane.chart)

        self.thumbnails = ThumbnailGrid(runner)
        self.problem_list = QListWidget()
        self.problem_list.setWordWrap(True)
        self.problem_list.setAlternatingRowColors(True)
        self.problem_list.setToolTip("Click a problem to show its image in the Viewer")
        self.problems_title = QLabel("Open a dataset to check it.")
        self.problems_title.setWordWrap(True)
        problems_box = QWidget()
        problems_layout = QVBoxLayout(problems_box)
        problems_layout.addWidget(self.problems_title)
        problems_layout.addWidget(self.problem_list, 1)
        self.augment = AugmentPreview(runner)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(problems_box, "Problems")
        self.side_tabs.addTab(self.augment, "Augmentation preview")

        body = QSplitter()
        body.addWidget(self.summary_pane)
        body.addWidget(self.thumbnails)
        body.addWidget(self.side_tabs)
        for index, share in enumerate((2, 5, 3)):  # a narrow window narrows all three
            body.setStretchFactor(index, share)
        body.setSizes([260, 700, 380])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(body, 1)

        open_folder.clicked.connect(self.choose_dataset)
        open_table.clicked.connect(self.choose_table)
        self.demo_button.clicked.connect(self.open_demo)
        self.hold_out.toggled.connect(self._on_hold_out_toggled)
        self.summary_pane.open_image_requested.connect(self.open_image_requested)
        self.cancel_button.clicked.connect(self.cancel_checks)
        self.problem_list.itemClicked.connect(self._on_problem_clicked)
        self.thumbnails.image_activated.connect(self.open_image_requested)
        self.thumbnails.image_selected.connect(self.augment.set_image)
        self.side_tabs.currentChanged.connect(self._on_side_tab_changed)

    # Opening -----------------------------------------------------------------------------
    def choose_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder")
        if path:
            self.open_dataset(path)

    def choose_table(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open label CSV or spec", "", TABLE_FILTER)
        if path:
            self.open_dataset(path)

    def open_dataset(self, path: str | Path) -> None:
        """Open a folder, CSV or spec (in a worker: detecting the layout lists the folder);
        a CSV of no known layout first asks for its columns."""
        self.status_message.emit(f"Reading {path}...")
        self._runner.submit("dataset.open", _open_or_find_table, Path(path),
                            self.test_fraction(), done=self._on_opened_or_table,
                            failed=self._on_failed)

    def test_fraction(self) -> float:
        return TEST_FRACTION if self.hold_out.isChecked() else 0.0

    @Slot(bool)
    def _on_hold_out_toggled(self, _checked: bool) -> None:
        """Open the dataset again with or without a test split drawn from train."""
        if self.spec is None or "path" not in self.spec.source:
            return
        self.status_message.emit(f"Reading {self.spec.source['path']}...")
        task = partial(reopen, self.spec, test_fraction=self.test_fraction())
        self._runner.submit("dataset.open", task, done=self._on_opened, failed=self._on_failed)

    @Slot(object)
    def _on_opened_or_table(self, result: DatasetSpec | Path) -> None:
        if isinstance(result, Path):
            self.ask_mapping(result)
        else:
            self._on_opened(result)

    def ask_mapping(self, csv_path: Path) -> None:
        """Show the column-mapping dialog (non-blocking); OK opens the dataset with it."""
        if self.mapping_dialog is not None:
            self.mapping_dialog.deleteLater()
            self.mapping_dialog = None
        try:
            self.mapping_dialog = CsvMappingDialog(csv_path, self._runner, self)
        except CxrError as exc:  # its header cannot be read
            self.status_message.emit(str(exc))
            return
        self.mapping_dialog.accepted.connect(self._on_mapping_accepted)
        self.mapping_dialog.open()

    @Slot()
    def _on_mapping_accepted(self) -> None:
        dialog = self.mapping_dialog
        if dialog is None:
            return
        mapping = dialog.mapping()
        self.status_message.emit(f"Reading {dialog.path}...")
        task = partial(open_dataset, str(dialog.path), format="csv", mapping=mapping,
                       test_fraction=self.test_fraction())
        self._runner.submit("dataset.open", task, done=self._on_opened, failed=self._on_failed)

    def open_demo(self) -> None:
        self.status_message.emit("Preparing the demo dataset...")
        self._runner.submit("dataset.open", _demo_dataset, self.test_fraction(),
                            done=self._on_opened, failed=self._on_failed)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_file_drag(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_path(event)
        if path:
            self.open_dataset(path)

    @Slot(object)
    def _on_opened(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.banner.setVisible(False)
        self.path_label.setText(str(spec.source.get("path") or spec.root))
        self.summary_pane.show_spec(spec)
        self.thumbnails.set_dataset(spec)
        self.dataset_opened.emit(spec)
        self.status_message.emit(f"Opened {spec.root.name}: {len(spec.items)} images, "
                                 f"{spec.task}, classes {', '.join(spec.classes)}")
        self._start_checks(spec)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status_message.emit(message)

    # Checks ------------------------------------------------------------------------------
    def _start_checks(self, spec: DatasetSpec) -> None:
        self._cancel.set()  # a check of the previous dataset stops
        self._cancel = threading.Event()
        self.report = None
        self.problems = []
        self.problem_list.clear()
        self.problems_title.setText("Checking the images...")
        self.side_tabs.setTabText(0, "Problems")
        self.progress.setRange(0, max(1, len(spec.items)))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(True)
        self._runner.submit("dataset.checks", _checks, spec, self._cancel,
                            partial(self.check_progress.emit, self._cancel),
                            done=self._on_checked, failed=self._on_checks_failed)

    @Slot()
    def cancel_checks(self) -> None:
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.problems_title.setText("Stopping the checks...")

    @Slot(object, int, int)
    def _on_check_progress(self, check: threading.Event, done: int, total: int) -> None:
        if check is not self._cancel:
            return  # from a check that was cancelled for a newer one
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _end_checks(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    @Slot(str)
    def _on_checks_failed(self, message: str) -> None:
        self._end_checks()
        self.problems_title.setText(f"The checks failed: {message}")
        self.status_message.emit(message)

    @Slot(object)
    def _on_checked(self, report: CheckReport) -> None:
        self._end_checks()
        self.report = report
        self.problems = list(report.problems)
        if self.spec is not None:
            self.summary_pane.show_spec(self.spec, unreadable_paths(self.problems))
        count = len(self.problems)
        text = f"<b>{count} problem{'s' if count != 1 else ''}</b> in {report.checked} images"
        if report.stopped:
            text += f" (checks stopped after {report.checked} of {report.total} images)"
        self.problems_title.setText(text + ". Click one to open its image.")
        self.side_tabs.setTabText(0, f"Problems ({count})")
        for problem in self.problems:
            item = QListWidgetItem(problem_text(problem))
            item.setData(Qt.ItemDataRole.UserRole, problem)
            item.setToolTip("\n".join(problem.paths))
            self.problem_list.addItem(item)

    @Slot(QListWidgetItem)
    def _on_problem_clicked(self, item: QListWidgetItem) -> None:
        problem: Problem = item.data(Qt.ItemDataRole.UserRole)
        if self.spec is None or not problem.paths:
            return
        path = Path(problem.paths[0])
        if not path.is_absolute():
            path = self.spec.root / path
        self.open_image_requested.emit(str(path))

    @Slot(int)
    def _on_side_tab_changed(self, index: int) -> None:
        """Show the preview of the first thumbnail when none is selected yet."""
        if self.side_tabs.widget(index) is self.augment and self.augment.source is None \
                and self.thumbnails.list.count() and self.thumbnails.list.currentItem() is None:
            self.thumbnails.list.setCurrentRow(0)

    # De-identified copy -------------------------------------------------------------------
    def choose_deidentify_destination(self) -> None:
        if self.spec is None:
            self.status_message.emit("Open a dataset first: its DICOM files are what is copied")
            return
        path = QFileDialog.getExistingDirectory(self, "De-identified copy: a new or empty "
                                                "folder outside the dataset")
        if path:
            self.deidentify_copy(path)

    def deidentify_copy(self, destination: str | Path) -> None:
        """Write a de-identified copy of the open dataset's DICOM files (class folders
        kept) into ``destination``, in a worker; the outcome is a status message."""
        if self.spec is None:
            return
        self.status_message.emit(f"De-identifying a copy into {destination}...")
        self._runner.submit("dataset.deidentify", deidentify, self.spec.root, Path(destination),
                            DeidOptions(keep_folders=True), done=self._on_deidentified,
                            failed=self._on_failed)

    @Slot(object)
    def _on_deidentified(self, report: DeidReport) -> None:
        if not report.written:
            self.status_message.emit("No DICOM file in the dataset to de-identify "
                                     f"({len(report.skipped)} other files left out)")
            return
        warnings = len(report.warnings)
        text = (f"De-identified copy in {report.destination}: {len(report.written)} files "
                f"written, {len(report.skipped)} left out, {warnings} "
                f"warning{'' if warnings == 1 else 's'}")
        if warnings:
            text += " (burned-in annotation YES or not stated: look at those images first)"
        self.status_message.emit(text)

    def shutdown(self) -> None:
        self._cancel.set()
