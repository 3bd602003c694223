"""The Evaluation view: runs on a held-out split, alone or ensembled.

Pick runs (checkboxes) and a split, press Evaluate: predictions and every number are
computed off the GUI thread (``evaluate_runs``); the view then shows, for the chosen source
(an ensemble method or one run) and class, the ROC curve with the operating point, the
confusion matrix and the most confidently wrong images, and beside them where the run's
maps point against the annotations (``LocalizationPanel``: pointing game, energy in boxes,
FROC, the misses). The threshold slider recomputes the operating point from the
predictions in memory (no model runs again). A click on a wrong image or a miss emits
``open_in_viewer(image_path, run_dir)``; for an ensemble the run is the member with the best
validation AUC.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.evaluate import metrics
from cxr_desktop.core.evaluate.evaluation import Evaluation
from cxr_desktop.core.evaluate.suite import EvaluationSet, evaluate_runs, run_dataset
from cxr_desktop.core.io import load_image, model_input
from cxr_desktop.core.runs.folder import BEST_NAME, LAST_NAME
from cxr_desktop.core.runs.registry import RunRecord, RunRegistry
from cxr_desktop.gui.widgets.confusion_table import ConfusionTable
from cxr_desktop.gui.widgets.localization_panel import LocalizationPanel
from cxr_desktop.gui.widgets.loss_grid import THUMB, LossGrid
from cxr_desktop.gui.widgets.roc_plot import RocPlot
from cxr_desktop.gui.widgets.run_history import list_runs
from cxr_desktop.gui.workers import TaskRunner

CHANNEL = "evaluate"
SPLITS = ("test", "val", "train", "all")
SLIDER_STEPS = 1000


@dataclass
class EvaluationOutcome:
    """What the worker hands back: the numbers and a thumbnail per wrong image."""

    result: EvaluationSet
    thumbnails: dict[str, np.ndarray | None]


def compute_evaluation(run_dirs: list[str], split: str,
                       dataset: str | None = None) -> EvaluationOutcome:
    """Runs in a worker thread: evaluate, then make thumbnails of the top losses.

    ``dataset`` None means the dataset (and splits) the first run was trained on.
    """
    if dataset:
        from cxr_desktop.core.data import open_dataset

        spec = open_dataset(dataset)
    else:
        spec = run_dataset(run_dirs[0])
    result = evaluate_runs(run_dirs, spec, split)
    thumbnails: dict[str, np.ndarray | None] = {}
    for evaluation in result.sources().values():
        for loss in evaluation.top_losses:
            if loss.path not in thumbnails:
                try:
                    thumbnails[loss.path] = model_input(load_image(loss.path), THUMB)
                except CxrError:
                    thumbnails[loss.path] = None
    return EvaluationOutcome(result, thumbnails)


def _fmt(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.3f}"


PICK_RUNS = "Tick one run, or several for an ensemble, and press Evaluate."


class EvaluationView(QWidget):
    """See the module docstring. ``runner`` defaults to a TaskRunner of its own."""

    open_in_viewer = Signal(str, str, str, str)  # image, run folder, CAM method, layer
    evaluated = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, registry: RunRegistry | None = None,
                 runner: TaskRunner | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.runner = runner or TaskRunner(self)
        self.outcome: EvaluationOutcome | None = None
        self.dataset: str | None = None
        self.threshold: float | None = None
        self.counts: metrics.Counts | None = None
        self._build()
        self.refresh_runs()

    # --- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.run_list = QListWidget()
        self.run_list.setMinimumWidth(180)
        self.run_list.setWordWrap(True)  # a narrow list wraps, it does not clip
        self.run_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.split_box = QComboBox()
        self.split_box.addItems(SPLITS)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.status = QLabel(PICK_RUNS)
        self.status.setWordWrap(True)
        picker = QVBoxLayout()
        picker.addWidget(QLabel("Runs"))
        picker.addWidget(self.run_list, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Split"))
        row.addWidget(self.split_box, 1)
        picker.addLayout(row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.evaluate_button)
        picker.addLayout(buttons)
        picker.addWidget(self.status)
        left = QWidget()
        left.setLayout(picker)

        self.source_box = QComboBox()
        self.source_box.currentIndexChanged.connect(self._on_source_changed)
        self.class_box = QComboBox()
        self.class_box.currentIndexChanged.connect(self._on_class_changed)
        self.summary = QLabel()
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.roc = RocPlot()
        self.confusion = ConfusionTable()
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.valueChanged.connect(self._on_slider)
        self.operating = QLabel()
        self.operating.setWordWrap(True)  # a long line must not widen the page
        self.losses = LossGrid()
        self.losses.image_clicked.connect(self._on_loss_clicked)
        self.localization = LocalizationPanel(self.runner)
        self.localization.open_in_viewer.connect(self.open_in_viewer)
        self.localization.misses_changed.connect(self._on_misses_changed)

        choose = QHBoxLayout()
        choose.addWidget(QLabel("Show"))
        choose.addWidget(self.source_box, 2)
        choose.addWidget(QLabel("Class"))
        choose.addWidget(self.class_box, 1)
        point = QGroupBox("Operating point")
        grid = QGridLayout(point)
        grid.addWidget(self.confusion, 0, 0, 1, 2)
        grid.addWidget(QLabel("Threshold"), 1, 0)
        grid.addWidget(self.slider, 1, 1)
        grid.addWidget(self.operating, 2, 0, 1, 2)
        plots = QHBoxLayout()
        plots.addWidget(self.roc, 1)
        plots.addWidget(point, 1)
        plots.addWidget(self.localization, 1)
        self.images = QTabWidget()
        self.images.setMinimumHeight(THUMB + 76)  # one row of thumbnails and captions
        self.images.addTab(self.losses, "Most confidently wrong")
        self.images.addTab(self.localization.gallery, "")
        self._on_misses_changed(0, 0)
        self.images.setToolTip("Click an image to open it in the Viewer with the run's model "
                               "and CAM")
        results = QVBoxLayout()
        results.addLayout(choose)
        results.addWidget(self.summary)
        results.addWidget(self.localization.warning)
        results.addLayout(plots, 3)
        results.addWidget(self.images, 2)
        right = QWidget()
        right.setLayout(results)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([200, 1000])  # the plots need the width more than the run names
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._set_results_enabled(False)

    def _set_results_enabled(self, enabled: bool) -> None:
        for widget in (self.source_box, self.class_box, self.slider):
            widget.setEnabled(enabled)

    # --- runs ---------------------------------------------------------------------------
    @Slot()
    def refresh_runs(self) -> None:
        """List the registry's runs that have a checkpoint, keeping the ticks."""
        ticked = set(self.checked_runs())
        self.run_list.clear()
        for record in list_runs(self.status.setText, self.registry):
            folder = Path(record.run_dir)
            if not ((folder / BEST_NAME).is_file() or (folder / LAST_NAME).is_file()):
                continue
            item = QListWidgetItem(self._run_label(record))
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if record.run_dir in ticked else Qt.Unchecked)
            item.setData(Qt.UserRole, record.run_dir)
            item.setToolTip(record.run_dir)
            self.run_list.addItem(item)
        if not self.run_list.count():
            self.status.setText("No trained run yet: train one on the Train page; it is "
                                "listed here once it has saved a checkpoint.")
        elif self.outcome is None:
            self.status.setText(PICK_RUNS)

    @staticmethod
    def _run_label(record: RunRecord) -> str:
        auc = "-" if record.best_val_auc is None else f"{record.best_val_auc:.3f}"
        return (f"{Path(record.run_dir).name}\n{record.arch} · {record.task} · AUC {auc} · "
                f"{record.status}")

    def checked_runs(self) -> list[str]:
        items = (self.run_list.item(i) for i in range(self.run_list.count()))
        return [str(item.data(Qt.UserRole)) for item in items
                if item.checkState() == Qt.Checked]

    def set_checked_runs(self, run_dirs: list[str]) -> None:
        wanted = {str(Path(d).resolve()) for d in run_dirs}
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            state = Qt.Checked if str(item.data(Qt.UserRole)) in wanted else Qt.Unchecked
            item.setCheckState(state)

    def set_dataset(self, dataset: str | None) -> None:
        """Evaluate on this dataset (any path ``open_dataset`` takes) instead of the runs'."""
        self.dataset = dataset

    # --- computing ----------------------------------------------------------------------
    @Slot()
    def evaluate(self) -> None:
        runs = self.checked_runs()
        if not runs:
            self.status.setText("Tick at least one run.")
            return
        split = self.split_box.currentText()
        self.evaluate_button.setEnabled(False)
        self.status.setText(f"Evaluating {len(runs)} run(s) on the {split} split...")
        self.runner.submit(CHANNEL, compute_evaluation, runs, split, self.dataset,
                           done=self._on_done, failed=self._on_failed)

    def _on_done(self, outcome: EvaluationOutcome) -> None:
        self.evaluate_button.setEnabled(True)
        self.outcome = outcome
        result = outcome.result
        headline = result.headline
        excluded = len(headline.predictions.excluded)
        self.status.setText(f"{headline.n} images of the {headline.predictions.split} split"
                            + (f", {excluded} unreadable left out" if excluded else ""))
        self.source_box.blockSignals(True)
        self.source_box.clear()
        for name, evaluation in result.sources().items():
            label = name if name in result.ensembles else Path(name).name
            self.source_box.addItem(f"{label}  (AUC {_fmt(evaluation.auc)})", name)
        self.source_box.blockSignals(False)
        self._set_results_enabled(True)
        self.localization.reset()
        self._on_source_changed(0)
        self.evaluated.emit(result)

    def _on_failed(self, message: str) -> None:
        self.evaluate_button.setEnabled(True)
        self.status.setText(f"Evaluation failed: {message}")

    # --- showing ------------------------------------------------------------------------
    def current(self) -> Evaluation | None:
        if self.outcome is None or self.source_box.currentIndex() < 0:
            return None
        return self.outcome.result.sources()[self.source_box.currentData()]

    @Slot(int)
    def _on_source_changed(self, index: int) -> None:
        evaluation = self.current()
        if evaluation is None:
            return
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItems([c.name for c in evaluation.per_class])
        self.class_box.blockSignals(False)
        low, high = evaluation.auc_ci
        self.summary.setText(
            f"AUC {_fmt(evaluation.auc)} (95% CI {_fmt(low)}-{_fmt(high)}), accuracy "
            f"{_fmt(evaluation.accuracy)}, ECE {_fmt(evaluation.ece)}, n = {evaluation.n}")
        self._localize()
        thumbs = self.outcome.thumbnails if self.outcome else {}
        self.losses.show_losses([
            (t.path, thumbs.get(t.path), f"{Path(t.path).name}\nis {t.truth}, said "
             f"{t.predicted} ({t.probability:.2f})") for t in evaluation.top_losses])
        self._on_class_changed(0)

    @Slot(int)
    def _on_class_changed(self, index: int) -> None:
        evaluation = self.current()
        if evaluation is None or not 0 <= index < len(evaluation.per_class):
            return
        item = evaluation.per_class[index]
        fpr, tpr, _ = item.roc
        self.roc.show_curve(fpr, tpr, f"{item.name}: AUC {_fmt(item.auc)}")
        multiclass = evaluation.predictions.task == "multiclass"
        self.slider.setEnabled(not multiclass)
        if multiclass:
            self.roc.show_point(1 - item.counts.specificity, item.counts.sensitivity)
            self.confusion.show_matrix(evaluation.confusion, evaluation.predictions.classes)
            self.operating.setText(f"arg-max class; {item.name}: " + self._rates(item.counts))
            return
        self.slider.blockSignals(True)
        self.slider.setValue(round(float(item.threshold) * SLIDER_STEPS))
        self.slider.blockSignals(False)
        self.set_threshold(float(item.threshold))

    def _column(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        evaluation = self.current()
        assert evaluation is not None
        preds = evaluation.predictions
        name, target, score = preds.columns()[max(self.class_box.currentIndex(), 0)]
        if preds.task == "binary":
            negative = next(c for c in preds.classes if c != preds.positive_class)
            return target, score, [negative, name]
        return target, score, [f"no {name}", name]

    def set_threshold(self, threshold: float) -> None:
        """Operating point at ``threshold`` from the predictions already computed."""
        if self.current() is None or self.current().predictions.task == "multiclass":
            return
        target, score, labels = self._column()
        counts = metrics.counts_at(target, score, threshold)
        self.threshold = threshold
        self.counts = counts
        self.roc.show_point(1 - counts.specificity, counts.sensitivity)
        self.confusion.show_matrix(counts.matrix(), labels)
        self.operating.setText(f"threshold {threshold:.3f}: " + self._rates(counts))

    @staticmethod
    def _rates(counts: metrics.Counts) -> str:
        return (f"sensitivity {_fmt(counts.sensitivity)}, specificity "
                f"{_fmt(counts.specificity)}, precision {_fmt(counts.precision)}, accuracy "
                f"{_fmt(counts.accuracy)}")

    @Slot(int)
    def _on_slider(self, value: int) -> None:
        self.set_threshold(value / SLIDER_STEPS)

    def _localize(self) -> None:
        """Where the current run's maps point (an ensemble's: its best member's)."""
        run = self._run_for_current()
        member = self.outcome.result.sources().get(run) if self.outcome else None
        split = self.outcome.result.headline.predictions.split if self.outcome else "test"
        self.localization.show_run(run, self.dataset, split,
                                   None if member is None else member.auc)

    @Slot(int, int)
    def _on_misses_changed(self, shown: int, total: int) -> None:
        count = f" ({shown} of {total})" if shown < total else f" ({total})" if total else ""
        self.images.setTabText(1, "Where the map missed the annotation" + count)

    @Slot(str)
    def _on_loss_clicked(self, path: str) -> None:
        self.open_in_viewer.emit(path, self._run_for_current(), "", "")

    def _run_for_current(self) -> str:
        """The current run, or for an ensemble the member with the best validation AUC."""
        name = str(self.source_box.currentData())
        result = self.outcome.result if self.outcome else None
        if result is None or name not in result.ensembles:
            return name
        best = int(np.argmax(result.weights))
        return result.members[best].predictions.source

    def shutdown(self) -> None:
        """Wait for a running evaluation (call from the window's closeEvent)."""
        self.localization.shutdown()
        self.runner.shutdown()
