"""Dataset tab: open a folder or CSV, see its splits and classes, and what is wrong with it."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.checks import run_checks
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.data.spec import DatasetSpec, Problem
from cxr_desktop.core.paths import demo_dir
from cxr_desktop.gui.widgets.balance_chart import BalanceChart
from cxr_desktop.gui.workers import TaskRunner

DEMO_TEXT = ("<b>No dataset open.</b> Open a folder of class folders, an Object-CXR folder, or a "
             "label CSV (NIH, CheXpert, or any CSV) — or try the demo dataset: about 200 "
             "synthetic chest radiographs, half with a foreign object, laid out like Object-CXR.")


def _demo_dataset() -> DatasetSpec:
    root = demo_dir()
    if not (root / "train.csv").exists():
        make_demo_dataset(root)
    return open_dataset(root)


class DatasetTab(QWidget):
    status_message = Signal(str)
    dataset_opened = Signal(object)
    open_image_requested = Signal(str)
    check_progress = Signal(int, int)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._cancel = threading.Event()
        self.spec: DatasetSpec | None = None
        self.problems: list[Problem] = []
        self.setAcceptDrops(True)
        open_button = QPushButton("Open dataset...")
        self.demo_button = QPushButton("Try the demo dataset")
        self.path_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel checks")
        self.cancel_button.setVisible(False)
        top = QHBoxLayout()
        for widget in (open_button, self.demo_button, self.path_label):
            top.addWidget(widget)
        top.addStretch(1)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        self.banner = QLabel(DEMO_TEXT)
        self.banner.setWordWrap(True)
        self.banner.setFrameShape(QFrame.Shape.StyledPanel)
        self.banner.setMargin(12)
        self.summary = QTreeWidget()
        self.summary.setHeaderLabels(["Split / class", "Images"])
        self.chart = BalanceChart()
        self.problem_list = QListWidget()
        self.problem_list.setToolTip("Click a problem to show its image in the Viewer")
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.summary)
        left.addWidget(self.chart)
        problems_box = QWidget()
        problems_layout = QVBoxLayout(problems_box)
        problems_layout.setContentsMargins(0, 0, 0, 0)
        self.problems_title = QLabel("<b>Problems</b>")
        problems_layout.addWidget(self.problems_title)
        problems_layout.addWidget(self.problem_list)
        body = QSplitter()
        body.addWidget(left)
        body.addWidget(problems_box)
        body.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(body, 1)
        open_button.clicked.connect(self.choose_dataset)
        self.demo_button.clicked.connect(self.open_demo)
        self.cancel_button.clicked.connect(self._cancel.set)
        self.problem_list.itemClicked.connect(self._on_problem_clicked)
        self.check_progress.connect(self._on_check_progress)

    # Opening -----------------------------------------------------------------------------
    def choose_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open dataset folder")
        if path:
            self.open_dataset(path)

    def open_dataset(self, path: str | Path) -> None:
        self.status_message.emit(f"Reading {path}...")
        self._runner.submit("dataset.open", open_dataset, str(path),
                            done=self._on_opened, failed=self._on_failed)

    def open_demo(self) -> None:
        self.status_message.emit("Preparing the demo dataset...")
        self._runner.submit("dataset.open", _demo_dataset,
                            done=self._on_opened, failed=self._on_failed)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        urls = event.mimeData().urls()
        if urls:
            self.open_dataset(urls[0].toLocalFile())

    @Slot(object)
    def _on_opened(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.banner.setVisible(False)
        self.path_label.setText(str(spec.root))
        self._show_summary(spec)
        self.dataset_opened.emit(spec)
        self.status_message.emit(f"Opened {spec.root.name}: {len(spec.items)} images, "
                                 f"{spec.task}, classes {', '.join(spec.classes)}")
        self._start_checks(spec)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status_message.emit(message)

    def _show_summary(self, spec: DatasetSpec) -> None:
        summary = spec.summary()
        self.summary.clear()
        for split, info in summary["splits"].items():
            node = QTreeWidgetItem([split, str(info["images"])])
            for name, count in info["per_class"].items():
                node.addChild(QTreeWidgetItem([name, str(count)]))
            self.summary.addTopLevelItem(node)
            node.setExpanded(True)
        self.summary.resizeColumnToContents(0)
        self.chart.show_counts(summary["splits"], spec.classes)

    # Checks ------------------------------------------------------------------------------
    def _start_checks(self, spec: DatasetSpec) -> None:
        self._cancel.clear()
        self.problem_list.clear()
        self.problems_title.setText("<b>Problems</b> (checking...)")
        self.progress.setRange(0, max(1, len(spec.items)))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self._runner.submit("dataset.checks", self._checks, spec,
                            done=self._on_checked, failed=self._on_failed)

    def _checks(self, spec: DatasetSpec) -> list[Problem]:
        """Runs in the worker thread: progress goes out through a (thread-safe) signal."""
        return run_checks(spec, progress=self.check_progress.emit,
                          should_stop=self._cancel.is_set)

    @Slot(int, int)
    def _on_check_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    @Slot(object)
    def _on_checked(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        stopped = " (stopped early)" if self._cancel.is_set() else ""
        self.problems_title.setText(f"<b>Problems</b>: {len(problems)}{stopped}")
        for problem in problems:
            item = QListWidgetItem(f"[{problem.kind}] {problem.detail}")
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

    def shutdown(self) -> None:
        self._cancel.set()
