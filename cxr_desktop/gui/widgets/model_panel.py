"""The Viewer's Model page: pick a run, see its class probabilities, the scope warning and
the CAM overlay, and whether the CAM peak falls inside the image's annotations. Prediction
and CAM run in workers, which also shrink the map to the small grid the canvas stretches
over the image (no full-resolution work on the GUI thread); the newest request wins."""

from __future__ import annotations

import html
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.annotations.editing import AnnotationDocument
from cxr_desktop.core.infer.cam import CAM_METHODS, CamExplainer, CamResult
from cxr_desktop.core.infer.predictor import Prediction, Predictor
from cxr_desktop.core.io import Radiograph
from cxr_desktop.gui.widgets.cam_peak import peak_verdict
from cxr_desktop.gui.widgets.image_canvas import ImageCanvas, overlay_grid
from cxr_desktop.gui.widgets.run_history import list_runs
from cxr_desktop.gui.workers import TaskRunner

CAM_LABELS = {"cam": "CAM (no backward pass)", "gradcam": "Grad-CAM", "gradcampp": "Grad-CAM++",
              "scorecam": "Score-CAM", "eigencam": "Eigen-CAM"}
COLORMAPS = ("turbo", "inferno", "viridis", "magma")
NO_MODEL = ("No model loaded: pick a run above and press Use run (runs appear here once "
            "trained in the Training tab), or open a run folder or checkpoint.")
BARS_HEIGHT, BAR_PIXELS = 120, 22
WARNING_STYLE = "background:#fff3cd; color:#664d03; padding:6px; border:1px solid #ffe69c;"


#: A CAM and the uint8 grid of it that the canvas shows.
ShownCam = tuple[CamResult, np.ndarray]


def _predict_and_explain(predictor: Predictor, explainer: CamExplainer, radiograph: Radiograph,
                         cam: dict | None) -> tuple[Prediction, ShownCam | None]:
    prediction = predictor.predict(radiograph)
    if not cam:
        return prediction, None
    result = explainer.explain(radiograph, prediction=prediction, **cam)
    return prediction, (result, overlay_grid(result.map))


def _explain(explainer: CamExplainer, radiograph: Radiograph, cam: dict) -> ShownCam:
    result = explainer.explain(radiograph, **cam)
    return result, overlay_grid(result.map)


class ModelPanel(QWidget):
    status_message = Signal(str)

    def __init__(self, canvas: ImageCanvas, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas, self._runner = canvas, runner
        self.predictor: Predictor | None = None
        self._wanted_cam = ("", "")  # method and layer to show once a model is loaded
        self.explainer: CamExplainer | None = None
        self.prediction: Prediction | None = None
        self.cam_result: CamResult | None = None
        self.document: AnnotationDocument | None = None
        self.run_choice = QComboBox()
        # Run names are long: they must not widen the panel (the image needs the room).
        self.run_choice.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_choice.setMinimumContentsLength(16)
        self.run_choice.setToolTip("A run from the registry (its best checkpoint)")
        refresh = QPushButton("↻")
        refresh.setToolTip("Reload the run list")
        refresh.setFixedWidth(32)
        load_run = QPushButton("Use run")
        browse = QPushButton("Run folder or checkpoint...")
        pick = QHBoxLayout()
        pick.addWidget(self.run_choice, 1)
        pick.addWidget(refresh)
        self.model_label = QLabel(NO_MODEL)
        self.model_label.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.setVisible(False)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        # The two scope signals apart: the image score against its threshold, the tags.
        self.scope_label = QLabel("")
        self.scope_label.setWordWrap(True)
        self.scope_label.setToolTip(
            "Image score: how unlike the run's validation images this image is (higher is "
            "further), from the statistics of every stage of the network; the threshold "
            "flags that share of validation images. DICOM tags: body part, modality and "
            "view against the training data.")
        self.bars = pg.PlotWidget(background="w")
        self.bars.setFixedHeight(BARS_HEIGHT)
        self.bars.setMouseEnabled(False, False)
        self.bars.setMenuEnabled(False)
        self.bars.setXRange(0, 1)
        self.bars.setLabel("bottom", "probability")
        self.show_cam = QCheckBox("Show CAM overlay (C)")
        self.method = QComboBox()
        for name in CAM_METHODS:
            self.method.addItem(CAM_LABELS.get(name, name), name)
        self.target = QComboBox()
        self.layer = QComboBox()
        self.layer.setToolTip("The block whose feature maps explain the prediction")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.peak = QLabel("")
        self.peak.setWordWrap(True)
        self.peak.setStyleSheet("font-weight: bold;")
        self.peak.setToolTip("The pointing game of the Evaluate page on this image: is the "
                             "CAM's peak inside the bounding box of an annotation?")
        self.peak.setVisible(False)
        cam_form = QFormLayout()
        cam_form.addRow(self.show_cam)
        cam_form.addRow("Method:", self.method)
        cam_form.addRow("Class:", self.target)
        cam_form.addRow("Layer:", self.layer)
        cam_form.addRow("Opacity:", self.opacity)
        cam_form.addRow("Colours:", self.colormap)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        buttons = QHBoxLayout()
        buttons.addWidget(load_run)
        buttons.addWidget(browse)
        layout.addLayout(buttons)
        layout.addWidget(self.model_label)
        layout.addWidget(self.warning)
        layout.addWidget(self.verdict)
        layout.addWidget(self.scope_label)
        layout.addWidget(self.peak)
        layout.addWidget(self.bars)
        layout.addLayout(cam_form)
        layout.addStretch(1)
        refresh.clicked.connect(self.refresh_runs)
        load_run.clicked.connect(self._use_selected_run)
        browse.clicked.connect(self._browse)
        self.show_cam.toggled.connect(self._on_cam_settings)
        self.method.currentIndexChanged.connect(self._on_cam_settings)
        self.target.currentIndexChanged.connect(self._on_cam_settings)
        self.layer.currentIndexChanged.connect(self._on_cam_settings)
        self.opacity.valueChanged.connect(self._on_style)
        self.colormap.currentIndexChanged.connect(self._on_style)
        self._set_cam_enabled(False)
        self.refresh_runs()

    # Choosing a model --------------------------------------------------------------------
    def refresh_runs(self) -> None:
        self.run_choice.clear()
        for record in list_runs(self.status_message.emit):
            if record.epochs_done > 0:
                auc = "" if record.best_val_auc is None else f", AUC {record.best_val_auc:.3f}"
                self.run_choice.addItem(f"{Path(record.run_dir).name} ({record.arch}{auc})",
                                        record.run_dir)

    def _use_selected_run(self) -> None:
        run_dir = self.run_choice.currentData()
        if run_dir:
            self.load_model(run_dir)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder")
        if path:
            self.load_model(path)

    def load_model(self, path: str | Path, method: str = "", layer: str = "") -> None:
        """Load a run or checkpoint in a worker; ``method`` and ``layer`` (when given) are
        set once it is loaded."""
        self._wanted_cam = (method, layer)
        self.model_label.setText(f"Loading {Path(path).name}...")
        self._runner.submit("viewer.model", Predictor.load, str(path),
                            done=self._on_model_loaded, failed=self._on_failed)

    def _on_model_loaded(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.explainer = CamExplainer(predictor)
        meta = predictor.metadata
        self.model_label.setText(
            f"<b>{meta.get('arch')}</b> at {predictor.input_size} px, {predictor.task}: "
            f"{', '.join(predictor.classes)}; threshold {predictor.threshold:.2f}<br>"
            f"<small>{predictor.source}</small>")
        for combo, items in ((self.target, self._target_names()),
                             (self.layer, self.explainer.layers())):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            combo.blockSignals(False)
        method, layer = self._wanted_cam
        self.layer.setCurrentText(layer or predictor.model.default_cam_layer)
        if method and self.method.findData(method) >= 0:
            self.method.setCurrentIndex(self.method.findData(method))
        elif not predictor.model.cam_exact and self.method.currentData() == "cam":
            self.method.setCurrentIndex(self.method.findData("gradcam"))
        self._show_loaded_run(predictor.source)
        self._set_cam_enabled(True)
        self.status_message.emit(f"Model ready: {meta.get('arch')}")
        self.request_prediction()

    def _show_loaded_run(self, checkpoint: Path | None) -> None:
        """Point the run picker at the run the model came from, so it never names another."""
        if checkpoint is None:
            return
        folder = Path(checkpoint).parent.resolve()
        for index in range(self.run_choice.count()):
            if Path(self.run_choice.itemData(index)).resolve() == folder:
                self.run_choice.setCurrentIndex(index)
                return
        self.run_choice.insertItem(0, f"{folder.name} (opened from its folder)", str(folder))
        self.run_choice.setCurrentIndex(0)

    def _target_names(self) -> list[str]:
        predictor = self.predictor
        if predictor is None:
            return []
        if predictor.task == "binary":
            return [predictor.output_names[0]] + [c for c in predictor.classes
                                                  if c != predictor.output_names[0]]
        return list(predictor.output_names)

    # Predicting --------------------------------------------------------------------------
    def cam_request(self) -> dict | None:
        if not self.show_cam.isChecked():
            return None
        return {"method": self.method.currentData(), "target_class": self.target.currentText()
                or None, "layer": self.layer.currentText() or None}

    def request_prediction(self) -> None:
        radiograph = self.canvas.radiograph
        if self.predictor is None or radiograph is None:
            return
        self._runner.submit("viewer.predict", _predict_and_explain, self.predictor,
                            self.explainer, radiograph, self.cam_request(),
                            done=partial(self._on_predicted, radiograph, self.predictor),
                            failed=self._on_failed)

    def _on_predicted(self, radiograph: Radiograph, predictor: Predictor,
                      result: tuple[Prediction, ShownCam | None]) -> None:
        if radiograph is not self.canvas.radiograph or predictor is not self.predictor:
            return  # for an image or a model no longer shown
        self.prediction, cam = result
        self._show_prediction(self.prediction)
        self._offer_cam(radiograph, cam)

    def _on_cam_settings(self) -> None:
        radiograph = self.canvas.radiograph
        request = self.cam_request()
        if request is None or self.explainer is None or radiograph is None:
            # An empty job on the CAM channel makes any CAM still computing stale.
            self._runner.submit("viewer.cam", _none, done=_none, failed=self._on_failed)
            self._show_cam(None)
            return
        self._runner.submit("viewer.cam", _explain, self.explainer, radiograph, request,
                            done=partial(self._offer_cam, radiograph), failed=self._on_failed)

    def _offer_cam(self, radiograph: Radiograph, shown: ShownCam | None) -> None:
        """Show a CAM (computed for ``radiograph``) only if it answers what the panel asks
        now: the prediction and the CAM channels finish in any order."""
        if radiograph is not self.canvas.radiograph:
            return
        request = self.cam_request()
        cam = shown[0] if shown is not None else None
        if request is None:
            self._show_cam(None)
        elif cam is not None and cam.method == request["method"] \
                and request["layer"] in (None, cam.layer) \
                and request["target_class"] in (None, cam.target_class):
            self._show_cam(shown)

    def _show_cam(self, shown: ShownCam | None) -> None:
        cam, grid = shown if shown is not None else (None, None)
        self.cam_result = cam
        self.canvas.set_overlay(grid, None if cam is None else cam.peak)
        verdict = self.refresh_peak()
        if cam is not None:
            peak = f", peak at x {cam.peak[0]}, y {cam.peak[1]}" if cam.peak else ""
            self.status_message.emit(f"{CAM_LABELS.get(cam.method, cam.method)} for "
                                     f"{cam.target_class} at {cam.layer} in {cam.ms:.0f} ms"
                                     f"{peak}" + (f": {verdict}" if verdict else ""))

    # The CAM peak against the annotations ------------------------------------------------
    def follow_shapes(self, document: AnnotationDocument) -> None:
        """Compare the CAM peak with ``document``'s shapes, again whenever they change."""
        self.document = document
        document.subscribe(self.refresh_peak)

    def refresh_peak(self) -> str | None:
        """Say where the shown CAM's peak falls against the shapes; the sentence or None."""
        cam = self.cam_result
        verdict = None
        if cam is not None and self.document is not None:
            # The peak pixel's centre, as the Evaluate page's pointing game places it.
            centre = None if cam.peak is None else (cam.peak[0] + 0.5, cam.peak[1] + 0.5)
            verdict = peak_verdict(centre, self.document.shapes, cam.target_class)
        self.peak.setText(verdict or "")
        self.peak.setVisible(bool(verdict))
        return verdict

    def clear_prediction(self) -> None:
        """No image: no bars, no verdict, no warning, no overlay."""
        self.prediction = None
        self.bars.clear()
        self.verdict.setText("")
        self.scope_label.setText("")
        self.warning.setVisible(False)
        self._show_cam(None)

    def _show_prediction(self, prediction: Prediction) -> None:
        """Bars of the model's outputs: one for a binary task (its positive class: the other
        is its complement, and a red bar for it would read as a finding), one per class
        otherwise; red where the class is called, the threshold dashed."""
        self.bars.clear()
        task = self.predictor.task if self.predictor is not None else "multiclass"
        names = list(prediction.probabilities)
        if task == "binary" and self.predictor is not None:
            names = [self.predictor.output_names[0]]
            positive = names[0]
            self.verdict.setText(
                f"Predicted: <b>{html.escape(', '.join(prediction.positives))}</b> "
                f"(P({html.escape(positive)}) {prediction.probabilities[positive]:.3f}, "
                f"threshold {prediction.threshold:.2f})")
        else:
            called = ", ".join(prediction.positives) or "none above the threshold"
            self.verdict.setText(f"Predicted: <b>{html.escape(called)}</b>")
        values = [prediction.probabilities[n] for n in names]
        colours = ["#c44e52" if n in prediction.positives else "#4c72b0" for n in names]
        self.bars.addItem(pg.BarGraphItem(x0=0, y=list(range(len(names))), height=0.6,
                                          width=values, brushes=colours))
        for i, value in enumerate(values):
            label = pg.TextItem(f"{value:.3f}", color="k", anchor=(0, 0.5))
            label.setPos(min(value, 0.8) + 0.02, i)
            self.bars.addItem(label)
        if task != "multiclass":
            self.bars.addItem(pg.InfiniteLine(pos=prediction.threshold, angle=90,
                                              pen=pg.mkPen("#333", style=Qt.PenStyle.DashLine)))
        self.bars.getAxis("left").setTicks([list(enumerate(names))])
        self.bars.setYRange(-0.6, len(names) - 0.4)
        # As tall as its bars need: the page scrolls on a short screen, the plot never
        # swallows the room of the CAM settings below it.
        self.bars.setFixedHeight(BARS_HEIGHT + BAR_PIXELS * max(len(names) - 2, 0))
        self.scope_label.setText(scope_text(prediction))
        notes = list(self.predictor.warnings if self.predictor else [])
        if not prediction.in_scope:
            notes.insert(0, f"Out of scope: {prediction.scope_reason}. The model answers "
                            "anyway; do not trust this prediction.")
        self.warning.setText("\n".join(notes))
        self.warning.setVisible(bool(notes))

    def _on_style(self) -> None:
        self.canvas.set_overlay_style(self.opacity.value() / 100.0, self.colormap.currentText())

    def _set_cam_enabled(self, enabled: bool) -> None:
        for widget in (self.show_cam, self.method, self.target, self.layer):
            widget.setEnabled(enabled)

    def _on_failed(self, message: str) -> None:
        self.status_message.emit(message)
        if self.predictor is None:
            self.model_label.setText(message)


def scope_text(prediction: Prediction) -> str:
    """Two lines: the image score with its threshold, and what the DICOM tags say."""
    image = prediction.scope_image
    if image is None:
        first = "Image scope: no score (the run has no scope file)"
    else:
        verdict = "like the validation images" if image.in_scope else "OUT OF SCOPE"
        first = f"Image {image.describe()}: {verdict}"
    tags = "match" if prediction.scope_tags_in_scope else "OUT OF SCOPE"
    return f"{first}\nDICOM tags: {tags} ({prediction.scope_tags_reason})"


def _none(*_: object) -> None:
    return None
