"""The Viewer's DICOM exports: the model's results and the image's annotations, back into
the image's own study as DICOM (``cxr_desktop.core.dicom_out``), written in a worker.

Results: an SR with each class probability, the threshold, the model and run and the CAM
peak; the CAM overlay as a Secondary Capture (at the window on screen); the peak and the
annotations as a presentation state. Annotations alone: a presentation state. One writer
lives as long as the Viewer, so what a session writes for one study lands in one series per
kind. A PNG or JPEG has no study: that is said in one line, nothing is written.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from cxr_desktop.gui.workers import TaskRunner

if TYPE_CHECKING:
    from cxr_desktop.core.dicom_out import ResultWriter
    from cxr_desktop.gui.tabs.viewer_tab import ViewerTab


def _annotation(writer: ResultWriter, radiograph: object, shapes: list) -> list[Path]:
    return [writer.annotation(radiograph, shapes)]


class ViewerDicomExport(QObject):
    status_message = Signal(str)

    def __init__(self, viewer: ViewerTab, runner: TaskRunner) -> None:
        super().__init__(viewer)
        self.viewer = viewer
        self._runner = runner
        self._writers: dict[str, ResultWriter] = {}

    def _writer(self, out_dir: str) -> ResultWriter:
        from cxr_desktop.core.dicom_out import ResultWriter

        key = str(Path(out_dir).resolve())
        if key not in self._writers:
            self._writers[key] = ResultWriter(out_dir)
        return self._writers[key]

    def _choose(self, what: str) -> str:
        parent = self.viewer if isinstance(self.viewer, QWidget) else None
        return QFileDialog.getExistingDirectory(parent, f"Folder for the {what} (DICOM)")

    # results ------------------------------------------------------------------------------
    def choose_and_save_results(self) -> None:
        if self._results_missing() is None:
            folder = self._choose("results")
            if folder:
                self.save_results(folder)
        else:
            self.status_message.emit(str(self._results_missing()))

    def _results_missing(self) -> str | None:
        panel = self.viewer.model_panel
        if self.viewer.radiograph is None:
            return "Open a DICOM image first"
        if panel.predictor is None or panel.prediction is None:
            return "Load a model and let it predict on this image first"
        return None

    def save_results(self, out_dir: str) -> None:
        """Write the results of the image on screen into ``out_dir`` (in a worker)."""
        missing = self._results_missing()
        if missing:
            self.status_message.emit(missing)
            return
        from cxr_desktop.core.dicom_out import RunInfo

        viewer, panel = self.viewer, self.viewer.model_panel
        task = partial(self._writer(out_dir).results, viewer.radiograph, panel.prediction,
                       panel.cam_result, RunInfo.from_predictor(panel.predictor),
                       shapes=list(viewer.annotations.document.shapes),
                       window=viewer.canvas.window)
        self._runner.submit("viewer.dicom", task, done=self._on_written,
                            failed=self.status_message.emit)

    # annotations --------------------------------------------------------------------------
    def choose_and_export_annotation(self) -> None:
        if not self.viewer.annotations.document.shapes:
            self.status_message.emit("This image has no annotation to export")
            return
        folder = self._choose("annotations")
        if folder:
            self.export_annotation(folder)

    def export_annotation(self, out_dir: str) -> None:
        """Write the image's annotations as a presentation state into ``out_dir``."""
        viewer = self.viewer
        shapes = list(viewer.annotations.document.shapes)
        if viewer.radiograph is None or not shapes:
            self.status_message.emit("Open an image with annotations first")
            return
        task = partial(_annotation, self._writer(out_dir), viewer.radiograph, shapes)
        self._runner.submit("viewer.dicom", task, done=self._on_written,
                            failed=self.status_message.emit)

    def _on_written(self, paths: list[Path]) -> None:
        folder = paths[0].parent if paths else ""
        self.status_message.emit(f"Wrote {len(paths)} DICOM file(s) to {folder}: "
                                 + ", ".join(p.name for p in paths))
