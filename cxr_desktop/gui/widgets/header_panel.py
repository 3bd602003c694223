"""The DICOM header of the open image, filterable, patient data hidden until revealed."""

from __future__ import annotations

from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from cxr_desktop.core.io.header import HeaderRow, dicom_header
from cxr_desktop.gui.workers import TaskRunner

COLUMNS = ("Tag", "Keyword", "VR", "Value")


class HeaderPanel(QWidget):
    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self.path: str | None = None
        self.show_phi = False
        self.rows: list[HeaderRow] = []
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: tag, keyword or value")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        self.filter.textChanged.connect(self._fill)

    def set_image(self, path: str, is_dicom: bool) -> None:
        self.path = path if is_dicom else None
        self.rows = []
        self._fill()
        self._request()

    def set_show_phi(self, show: bool) -> None:
        self.show_phi = show
        self._request()

    def _request(self) -> None:
        if self.path is not None:
            self._runner.submit("viewer.header", dicom_header, self.path, self.show_phi,
                                done=self._on_rows, failed=self._on_failed)

    def _on_rows(self, rows: list[HeaderRow]) -> None:
        self.rows = rows
        self._fill()

    def _on_failed(self, message: str) -> None:
        self.tree.clear()
        self.tree.addTopLevelItem(QTreeWidgetItem(["", "", "", message]))

    def _fill(self) -> None:
        self.tree.clear()
        if self.path is None:
            self.tree.addTopLevelItem(QTreeWidgetItem(["", "", "", "not a DICOM file"]))
            return
        needle = self.filter.text().strip().lower()
        items = []
        for row in self.rows:
            cells = [row.tag, "  " * row.depth + row.keyword, row.vr, row.value]
            if needle and not any(needle in cell.lower() for cell in cells):
                continue
            items.append(QTreeWidgetItem(cells))
        self.tree.addTopLevelItems(items)
        for column in range(3):
            self.tree.resizeColumnToContents(column)
