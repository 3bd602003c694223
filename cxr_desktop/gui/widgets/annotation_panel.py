"""The annotations of the image on the canvas: tools, list, project folder, saves, exchange.

Owns the Qt-free document, editor and project, the layer that draws them and the toolbar.
The shapes of an image are saved to the project folder with Ctrl+S, and automatically when
another image is opened or the application quits, so edits are never dropped silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.annotations.editing import AnnotationDocument
from cxr_desktop.core.annotations.project import AnnotationProject, ExchangeReport
from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.annotations.tools import Editor
from cxr_desktop.core.errors import CxrError
from cxr_desktop.gui.settings import app_settings
from cxr_desktop.gui.widgets.annotation_layer import AnnotationLayer
from cxr_desktop.gui.widgets.annotation_toolbar import AnnotationToolbar
from cxr_desktop.gui.widgets.image_canvas import ImageCanvas
from cxr_desktop.gui.workers import TaskRunner

log = logging.getLogger(__name__)
PROJECT_KEY = "annotations/project_dir"
CSV_FILTER = "Object-CXR CSV (*.csv);;All files (*)"


class AnnotationPanel(QWidget):
    """The side page; ``toolbar`` goes above the canvas."""

    status_message = Signal(str)

    def __init__(self, canvas: ImageCanvas, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas, self._runner = canvas, runner
        self.last_report: ExchangeReport | None = None
        self._dataset_shapes: dict[str, list[Shape]] = {}
        saved_root = app_settings().value(PROJECT_KEY, "")
        self.project = AnnotationProject(saved_root or None)
        self.document = AnnotationDocument()
        self.editor = Editor(self.document, ask_text=self._ask_text)
        self.layer = AnnotationLayer(canvas, self.editor, self)
        self.toolbar = AnnotationToolbar()
        self.image_path: str | None = None
        self.image_size: tuple[int, int] | None = None
        self._unreadable: str | None = None  # a JSON that failed to load is never overwritten
        self.shape_list = QListWidget()
        self.project_label = QLabel()
        self.project_label.setWordWrap(True)
        change = QPushButton("Change folder...")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Shapes (topmost last):"))
        layout.addWidget(self.shape_list, 1)
        layout.addWidget(QLabel("Project folder (one labelme JSON per image):"))
        layout.addWidget(self.project_label)
        layout.addWidget(change)
        exchange_note = QLabel("Import/Export CSV (toolbar): Object-CXR holds rectangles, "
                               "ellipses and polygons; freehand strokes become polygons, "
                               "arrows and text are left out.")
        exchange_note.setWordWrap(True)
        layout.addWidget(exchange_note)
        self._show_project()
        self._connect(change)
        self.document.subscribe(self._on_document_changed)
        self._on_document_changed()

    def _connect(self, change: QPushButton) -> None:
        bar = self.toolbar
        bar.tool_group.triggered.connect(self._on_tool_triggered)
        bar.delete_action.triggered.connect(self.editor.delete)
        bar.undo_action.triggered.connect(self.editor.undo)
        bar.redo_action.triggered.connect(self.editor.redo)
        bar.save_action.triggered.connect(self.save)
        bar.import_action.triggered.connect(self.choose_import)
        bar.export_action.triggered.connect(self.choose_export)
        bar.label_combo.textActivated.connect(self._on_label_chosen)
        self.shape_list.currentRowChanged.connect(self._on_row_selected)
        change.clicked.connect(self.choose_project)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.autosave)

    # -- image and labels ------------------------------------------------------------------
    def set_labels(self, labels: Sequence[str], default: str | None = None) -> None:
        """The label choices: the classes of the model or dataset in use."""
        self.document.set_labels(labels, default)

    def set_image(self, path: str, size: tuple[int, int]) -> None:
        """Switch to the image at ``path`` of ``(height, width)``: save the previous one's
        changes, then load this one's shapes from the project."""
        self.autosave()
        self.image_path, self.image_size, self._unreadable = str(path), size, None
        try:
            shapes = self.project.load_for(path)
        except CxrError as exc:
            self._unreadable = str(exc)
            self.status_message.emit(f"Annotations not loaded: {exc}")
            shapes = []
        if not shapes and not self.project.has(path):
            shapes = self._dataset_shapes.get(os.path.abspath(path), [])
        self.document.reset(shapes, size)

    def set_dataset_shapes(self, shapes_by_path: dict[str, list[Shape]]) -> None:
        """The open dataset's own shapes (its ground truth, e.g. Object-CXR boxes) by
        absolute image path: an image with nothing saved in the project starts from them,
        so the CAM can be compared with them; edited, they are saved to the project."""
        self._dataset_shapes = shapes_by_path

    def add_dataset_shapes(self, shapes_by_path: dict[str, list[Shape]]) -> None:
        """Add the shapes of another dataset's images (a run's, for an image opened from
        the Evaluate page) to those of the open dataset."""
        self._dataset_shapes = {**self._dataset_shapes, **shapes_by_path}

    def clear(self) -> None:
        """No image: save the previous one's changes and show no shapes."""
        self.autosave()
        self.image_path, self.image_size, self._unreadable = None, None, None
        self.document.reset([], None)

    def set_tool(self, name: str) -> None:
        self.toolbar.tool_actions[name].setChecked(True)
        self.layer.set_tool(name)

    def _on_tool_triggered(self, action) -> None:
        self.layer.set_tool(action.data())

    # -- saving ----------------------------------------------------------------------------
    def save(self) -> bool:
        """Write the shapes of the current image; True when they are on disk."""
        if self.image_path is None or self.image_size is None:
            return False
        if self._unreadable is not None:
            self.status_message.emit(f"Not saved, to keep the file that failed to load: "
                                     f"{self._unreadable}")
            return False
        self.editor.tool.finish()
        try:
            target = self.project.save(self.image_path, self.document.shapes, self.image_size)
        except OSError as exc:
            self.status_message.emit(f"Annotations of {Path(self.image_path).name} NOT saved: "
                                     f"{exc}")
            log.exception("saving annotations failed")
            return False
        self.document.mark_saved()
        self.status_message.emit(f"Saved {len(self.document.shapes)} annotations to {target}")
        self._on_document_changed()
        return True

    def autosave(self) -> None:
        if self.image_path is not None and self.document.dirty:
            self.save()

    # -- project and exchange --------------------------------------------------------------
    def set_project_dir(self, folder: str | Path) -> None:
        self.autosave()
        self.project = AnnotationProject(folder)
        app_settings().setValue(PROJECT_KEY, str(folder))
        self._show_project()
        if self.image_path is not None and self.image_size is not None:
            self.set_image(self.image_path, self.image_size)

    def choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Annotation project folder",
                                                  str(self.project.root))
        if folder:
            self.set_project_dir(folder)

    def export_csv(self, csv_path: str | Path) -> None:
        """Every annotated image of the project as an Object-CXR CSV (saved first; written
        in a worker, the report in the status bar)."""
        self.autosave()
        self.status_message.emit(f"Exporting the annotations to {csv_path}...")
        self._runner.submit("annotations.exchange", self.project.export_objectcxr,
                            str(csv_path), done=partial(self._on_exchanged, "Exported", "to",
                                                        csv_path),
                            failed=self.status_message.emit)

    def import_csv(self, csv_path: str | Path, image_root: str | Path) -> None:
        """Shapes from an Object-CXR CSV into the project (in a worker: each listed image's
        size is read); the current image's shapes are reloaded when it is done."""
        self.autosave()
        self.status_message.emit(f"Importing annotations from {csv_path}...")
        self._runner.submit("annotations.exchange", self.project.import_objectcxr,
                            str(csv_path), str(image_root), self.document.label,
                            done=partial(self._on_exchanged, "Imported", "from", csv_path),
                            failed=self.status_message.emit)

    def _on_exchanged(self, verb: str, preposition: str, csv_path: str | Path,
                      report: ExchangeReport) -> None:
        self.last_report = report
        for failure in report.failed:
            log.warning("Object-CXR %s: %s", verb.lower(), failure)
        failed = f"; {len(report.failed)} failed: {report.failed[0]}" if report.failed else ""
        self.status_message.emit(f"{verb} {report.summary()} {preposition} {csv_path}{failed}")
        if verb == "Imported" and self.image_path is not None and self.image_size is not None:
            self.set_image(self.image_path, self.image_size)

    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export Object-CXR CSV",
                                              str(self.project.root / "annotations.csv"),
                                              CSV_FILTER)
        if path:
            self.export_csv(path)

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import Object-CXR CSV", "", CSV_FILTER)
        if not path:
            return
        root = QFileDialog.getExistingDirectory(self, "Folder the image names are relative to",
                                                str(Path(path).parent))
        if root:
            self.import_csv(path, root)

    # -- view updates ----------------------------------------------------------------------
    def _ask_text(self, x: float, y: float) -> str | None:
        text, ok = QInputDialog.getText(self, "Text note", f"Note at ({x:.0f}, {y:.0f}):")
        return text if ok else None

    def _show_project(self) -> None:
        self.project_label.setText(str(self.project.root))

    def _on_document_changed(self) -> None:
        doc, bar = self.document, self.toolbar
        bar.undo_action.setEnabled(doc.can_undo)
        bar.redo_action.setEnabled(doc.can_redo)
        bar.delete_action.setEnabled(doc.selected is not None)
        combo = bar.label_combo
        combo.blockSignals(True)
        if [combo.itemText(i) for i in range(combo.count())] != doc.labels:
            combo.clear()
            combo.addItems(doc.labels)
        shown = doc.selected_shape.label if doc.selected_shape is not None else doc.label
        combo.setCurrentText(shown)
        combo.blockSignals(False)
        rows = [f"{s.label}: {s.shape_type}" + (f' "{s.text}"' if s.text else "")
                for s in doc.shapes]
        current = [self.shape_list.item(i).text() for i in range(self.shape_list.count())]
        self.shape_list.blockSignals(True)
        if rows != current:
            self.shape_list.clear()
            self.shape_list.addItems(rows)
        self.shape_list.setCurrentRow(-1 if doc.selected is None else doc.selected)
        self.shape_list.blockSignals(False)
        title = Path(self.image_path).name if self.image_path else "no image"
        self.setToolTip(f"{title}: {len(doc.shapes)} shapes" + (" (unsaved)" if doc.dirty
                                                                 else ""))

    def _on_label_chosen(self, label: str) -> None:
        label = label.strip()
        if not label:
            return
        if label not in self.document.labels:
            self.document.set_labels([*self.document.labels, label])
        self.document.set_label(label)

    def _on_row_selected(self, row: int) -> None:
        self.document.select(row if row >= 0 else None)
