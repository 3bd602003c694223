"""The run history: the registry's runs, newest first, with a menu to forget one.

Forgetting removes the registry row only; the run folder, its checkpoints and metrics stay
on disk (the folder can be reopened in the Viewer or resumed from the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QMenu, QTableWidget, QTableWidgetItem, QWidget

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.runs.registry import RunRecord, RunRegistry

COLUMNS = ("Created", "Architecture", "Dataset", "Status", "Epochs", "Best val AUC")
STATUS_COLUMN = COLUMNS.index("Status")
STATUS_TIPS = {"interrupted": "Its process ended without saying so (killed, crashed): "
                              "select it and press Resume to go on from the last checkpoint.",
               "stopped": "Stopped by the user: Resume goes on from the last checkpoint."}


def list_runs(report: Callable[[str], None],
              registry: RunRegistry | None = None) -> list[RunRecord]:
    """The registry's runs, newest first; [] when it cannot be read, the one-line reason
    passed to ``report``."""
    try:
        return (registry or RunRegistry()).list()
    except CxrError as exc:
        report(str(exc))
        return []


class RunHistory(QTableWidget):
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.records: list[RunRecord] = []
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setStretchLastSection(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._show_menu)

    def refresh(self) -> None:
        self.records = list_runs(self.status_message.emit)
        self.setRowCount(len(self.records))
        for row, record in enumerate(self.records):
            auc = "" if record.best_val_auc is None else f"{record.best_val_auc:.4f}"
            cells = (record.created, record.arch, Path(record.dataset).name, record.status,
                     f"{record.epochs_done}/{record.epochs}", auc)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                tip = STATUS_TIPS.get(record.status) if column == STATUS_COLUMN else None
                item.setToolTip(tip or record.run_dir)
                self.setItem(row, column, item)
        self.resizeColumnsToContents()

    def selected_run(self) -> RunRecord | None:
        rows = self.selectionModel().selectedRows()
        return self.records[rows[0].row()] if rows else None

    def forget(self, record: RunRecord) -> None:
        """Remove ``record`` from the registry; its folder stays where it is."""
        try:
            RunRegistry().remove(record.run_dir)
        except CxrError as exc:
            self.status_message.emit(str(exc))
            return
        self.status_message.emit(f"Forgot {Path(record.run_dir).name}; its folder is kept: "
                                 f"{record.run_dir}")
        self.refresh()

    def _show_menu(self, position: QPoint) -> None:
        row = self.rowAt(position.y())
        if row < 0:
            return
        self.selectRow(row)
        record = self.records[row]
        menu = QMenu(self)
        copy = menu.addAction("Copy folder path")
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(record.run_dir))
        forget = menu.addAction("Forget this run (keeps its folder)")
        forget.setEnabled(record.status != "running")
        forget.triggered.connect(lambda: self.forget(record))
        menu.popup(self.viewport().mapToGlobal(position))
