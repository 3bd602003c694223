"""Training tab: settings with sensible defaults, Start/Stop/Resume, the LR finder, live
curves, and the run history from the registry. The engine runs in a QThread worker."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.device import DeviceInfo
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.models import ARCHITECTURES, get_arch
from cxr_desktop.core.models.weights import find_weights
from cxr_desktop.core.runs.folder import RunFolder
from cxr_desktop.core.runs.registry import RunRecord
from cxr_desktop.core.train import AugmentSettings, TrainConfig
from cxr_desktop.core.train.config import AUTO_BATCH, AUTO_FREEZE
from cxr_desktop.core.train.lr_finder import LrFinderResult, find_lr
from cxr_desktop.core.train.schedule import FREEZE_FROM_EPOCHS, SchedulePlan, plan_schedule
from cxr_desktop.gui.dialogs.preferences import load_preferences
from cxr_desktop.gui.engine_worker import EngineRunner
from cxr_desktop.gui.widgets.evaluation_view import EvaluationView
from cxr_desktop.gui.widgets.gpu_choice import GpuChoice
from cxr_desktop.gui.widgets.labelled_progress import LabelledProgress
from cxr_desktop.gui.widgets.live_plots import TrainingPlots
from cxr_desktop.gui.widgets.run_history import RunHistory
from cxr_desktop.gui.widgets.schedule_preview import (
    SchedulePreview,
    auto_lr_box,
    auto_spin,
    lr_setting,
)
from cxr_desktop.gui.workers import TaskRunner

RESUMABLE = ("stopped", "interrupted", "failed")  # run statuses Resume can go on from
PRETRAINED_CHOICES = ("auto", "none", "choose file...")
# Batch events every 2 batches: even a small dataset draws a curve; the plots redraw from a
# timer, so a fast GPU cannot flood the GUI thread.
GUI_LOG_EVERY = 2


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class TrainingTab(QWidget):
    status_message = Signal(str)
    open_in_viewer = Signal(str, str, str, str)  # image, run folder, CAM method, layer

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self.engine = EngineRunner(self)
        self.spec: DatasetSpec | None = None
        self.run_dir: Path | None = None
        self._started = 0.0
        self._epochs = 1
        self._done_at_start: float | None = None
        self._pretrained_file = ""
        self._train_images = 0
        self.dataset_label = QLabel("none: open one in the Dataset tab")
        self.dataset_label.setWordWrap(True)
        self.device_label = QLabel("probing...")
        self.gpus = GpuChoice()  # shown with more than one GPU
        self.arch = QComboBox()
        for name, info in ARCHITECTURES.items():
            self.arch.addItem(f"{info.label}", name)
        self.arch.setCurrentIndex(self.arch.findData("efficientnet_lite0"))
        self.arch.setToolTip("Backbone. ImageNet weights are used when found on this machine "
                             "(see resources/weights/README.md); small_cnn trains from scratch.")
        self.size = auto_spin(0, 1024, "Input size in pixels; auto: the architecture's "
                              "default (224, or 299 for Inception-v3). Smaller is faster.")
        self.epochs = _spin(1, 500, 10, "Epochs in all, frozen ones included")
        self.freeze = auto_spin(AUTO_FREEZE, 50, "Epochs with the pretrained backbone frozen "
                                "(only the new head trains, on features computed once), then "
                                "everything with lower LRs early on; auto: one in runs of "
                                f"{FREEZE_FROM_EPOCHS} epochs or more, else none")
        self.batch = auto_spin(AUTO_BATCH, 1024, "Images per batch; auto: from the number of "
                               "training images; halved automatically on a CUDA out-of-memory "
                               "error")
        self.lr = auto_lr_box("Peak learning rate of the one-cycle schedule (the head's; "
                              "earlier layers get less); auto: the LR finder's suggestion on "
                              "a short probe at the start; Find LR sets one")
        self.schedule = SchedulePreview()
        self.pretrained = QComboBox()
        self.pretrained.addItems(PRETRAINED_CHOICES)
        self.pretrained.setToolTip("auto: ImageNet weights when found, else from scratch; "
                                   "none: from scratch; or a .pth/.safetensors file")
        self.augment_settings = AugmentSettings()
        self.augment = QCheckBox("Augment as in the Dataset tab's preview")
        self.augment.setChecked(True)
        self.augment.setToolTip("The transforms (rotation, zoom, shift, brightness/contrast, "
                                "flip) set in the Dataset tab's augmentation preview")
        form = QFormLayout()
        form.addRow("Dataset:", self.dataset_label)
        form.addRow("Device:", self.device_label)
        self.gpus.add_to(form)
        form.addRow("Architecture:", self.arch)
        form.addRow("Image size:", self.size)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Frozen epochs:", self.freeze)
        form.addRow("Batch size:", self.batch)
        form.addRow("Learning rate:", self.lr)
        form.addRow("Pretrained:", self.pretrained)
        form.addRow(self.augment)
        form.addRow(self.schedule)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume selected")
        self.resume_button.setToolTip("Go on with the run selected in the history from its last "
                                      "checkpoint (a stopped, interrupted or failed run)")
        self.lr_button = QPushButton("Find LR")
        self.lr_button.setToolTip("Exponential LR sweep on the training split; sets the LR")
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button, self.lr_button):
            buttons.addWidget(button)
        self.progress = LabelledProgress()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        settings_box = QGroupBox("Run")
        settings_layout = QVBoxLayout(settings_box)
        settings_layout.addLayout(form)
        settings_layout.addLayout(buttons)
        settings_layout.addWidget(self.progress)
        settings_layout.addWidget(self.message)
        settings_layout.addStretch(1)
        self.plots = TrainingPlots()
        self.history = RunHistory()
        self.history.status_message.connect(self.status_message)
        self.lr_plot = pg.PlotWidget(background="w", title="LR finder")
        self.lr_plot.setLogMode(x=True)
        self.lr_plot.setLabel("bottom", "learning rate")
        self.lr_plot.setLabel("left", "smoothed loss")
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.history, "Run history")
        self.bottom_tabs.addTab(self.lr_plot, "LR finder")
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.plots)
        right.addWidget(self.bottom_tabs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        body = QSplitter()
        body.addWidget(settings_box)
        body.addWidget(right)
        body.setStretchFactor(1, 3)
        self.evaluation = EvaluationView(runner=runner)
        self.pages = QTabWidget()
        self.pages.addTab(body, "Train")
        self.pages.addTab(self.evaluation, "Evaluate")
        self.evaluation.open_in_viewer.connect(self.open_in_viewer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.pages)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume_selected)
        self.lr_button.clicked.connect(self.find_lr)
        self.pretrained.activated.connect(self._on_pretrained_choice)
        for box in (self.size, self.epochs, self.freeze, self.batch):
            box.valueChanged.connect(self._show_schedule)
        self.lr.valueChanged.connect(self._show_schedule)
        self.arch.currentIndexChanged.connect(self._show_schedule)
        self.pretrained.currentIndexChanged.connect(self._show_schedule)
        self.history.itemSelectionChanged.connect(self._on_history_selected)
        self.engine.event.connect(self._on_event)
        self.engine.done.connect(self._on_done)
        self.engine.failed.connect(self._on_failed)
        self.engine.running_changed.connect(self._on_running_changed)
        self._on_running_changed(False)
        self.refresh_history()

    # Inputs ------------------------------------------------------------------------------
    def set_dataset(self, spec: DatasetSpec) -> None:
        self.spec = spec
        summary = spec.summary()["splits"]
        counts = ", ".join(f"{name} {info['images']}" for name, info in summary.items())
        self.dataset_label.setText(f"{spec.root.name}: {spec.task}, "
                                   f"{', '.join(spec.classes)} ({counts})")
        self._train_images = int(summary.get("train", {}).get("images", 0))
        self._show_schedule()
        self._on_running_changed(self.engine.is_running())

    @Slot(object)
    def set_augment_settings(self, settings: AugmentSettings) -> None:
        self.augment_settings = settings

    def set_device(self, device: DeviceInfo) -> None:
        self.device_label.setText(device.label)

    def _on_pretrained_choice(self, index: int) -> None:
        if PRETRAINED_CHOICES[index] != "choose file...":
            return
        path, _ = QFileDialog.getOpenFileName(self, "Pretrained weights", "",
                                              "Weights (*.pth *.pt *.bin *.safetensors)")
        if path:
            self._pretrained_file = path
            self.pretrained.setItemText(index, Path(path).name)
        else:
            self.pretrained.setCurrentIndex(0)

    def config(self) -> TrainConfig:
        """The run the form describes."""
        if self.spec is None:
            raise ValueError("no dataset")
        choice = PRETRAINED_CHOICES[min(self.pretrained.currentIndex(), 2)]
        pretrained = self._pretrained_file if choice == "choose file..." else choice
        preferences = load_preferences()
        augment = self.augment_settings if self.augment.isChecked() else AugmentSettings.none()
        return TrainConfig(
            dataset=str(self.spec.source.get("path") or self.spec.root),
            dataset_options=dict(self.spec.source.get("options") or {}),
            arch=self.arch.currentData(), size=self.size.value(), epochs=self.epochs.value(),
            batch_size=self.batch.value(), lr=lr_setting(self.lr),
            freeze_epochs=self.freeze.value(), pretrained=pretrained, augment=augment,
            log_every_n_batches=GUI_LOG_EVERY, device=preferences.device,
            workers=preferences.cache_threads,
        )

    def _will_be_pretrained(self) -> bool:
        choice = PRETRAINED_CHOICES[min(self.pretrained.currentIndex(), 2)]
        if choice == "none":
            return False
        return choice != "auto" or find_weights(get_arch(self.arch.currentData())) is not None

    @Slot()
    def _show_schedule(self) -> None:
        """The plan Start would follow with the form as it is (not while a run shows its own)."""
        if self.engine.is_running():
            return
        if self.spec is None:
            self.schedule.show_nothing("open a dataset to see the schedule")
            return
        self.schedule.show_plan(plan_schedule(self.config(), self._train_images,
                                              pretrained=self._will_be_pretrained()))

    # Jobs --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.spec is None or self.engine.is_running():
            return
        config, spec = self.config(), self.spec
        self.plots.start_run(config.epochs)
        self._begin(f"Training {config.arch} on {spec.root.name}"
                    f"{self.gpus.describe(config.device)}...", config.epochs)
        self.engine.start(self.gpus.fit_job(config, spec))

    def resume_selected(self) -> None:
        record = self.selected_run()
        if record is None or self.engine.is_running():
            return
        run_dir = record.run_dir
        folder = RunFolder(run_dir)
        try:
            history, config = folder.read_metrics(), folder.read_config()
        except CxrError as exc:
            self.message.setText(f"Cannot resume: {exc}")
            self.status_message.emit(str(exc))
            return
        self.plots.show_history(history)
        self._begin(f"Resuming {Path(run_dir).name}{self.gpus.describe(config.device)}...",
                    config.epochs)
        self.engine.start(self.gpus.resume_job(run_dir, config.device))

    def find_lr(self) -> None:
        if self.spec is None or self.engine.is_running():
            return
        config, spec = self.config(), self.spec
        self.lr_plot.clear()
        self.bottom_tabs.setCurrentWidget(self.lr_plot)
        self._begin("Finding a learning rate...", 1)
        self.engine.start(lambda emit, stop: find_lr(config, emit, stop, spec=spec))

    def stop(self) -> None:
        self.engine.stop()
        self.message.setText("Stopping: saving a checkpoint...")

    def _begin(self, text: str, epochs: int) -> None:
        self._started = time.monotonic()
        self._done_at_start = None
        self._epochs = max(epochs, 1)
        self.message.setText(text)
        self.status_message.emit(text)
        self.progress.setValue(0)
        self.progress.setFormat("starting...")

    # Events from the engine (GUI thread) -------------------------------------------------
    @Slot(object)
    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "batch":
            self.plots.add_batch(event["epoch"], event["progress"], event["loss"])
            self._show_progress(event["epoch"] - 1 + event["progress"],
                                event.get("images_per_s"))
        elif kind == "epoch":
            self.plots.add_epoch(event)
            self.refresh_history()  # the running run's row: status, epochs, best AUC so far
            self._show_progress(event["epoch"], event.get("images_per_s"))
            auc = event.get("val_auc")
            self.message.setText(f"Epoch {event['epoch']}/{event['epochs']}: val AUC "
                                 f"{auc if auc is None else round(auc, 4)}, val loss "
                                 f"{event.get('val_loss', float('nan')):.4f}")
        elif kind == "cache":
            total = max(int(event["total"]), 1)
            self.progress.setValue(int(1000 * event["done"] / total))
            self.progress.setFormat(f"preparing images {event['done']}/{total}")
        elif kind == "message":
            if event.get("plan"):
                self.schedule.show_plan(SchedulePlan.from_dict(event["plan"]), running=True)
            self.message.setText(event["text"])
            self.status_message.emit(event["text"])
        elif kind == "lr_find":
            self.progress.setFormat("LR sweep...")

    def _show_progress(self, epochs_done: float, images_per_s: float | None) -> None:
        """``epochs_done``: whole and part epochs trained (the engine counts epochs from 1:
        a batch event of epoch 1 at progress 0.5 is 0.5 epochs done)."""
        epochs = self._epochs
        done = min(max(epochs_done / epochs, 0.0), 1.0)
        epoch = int(epochs_done)
        self.progress.setValue(int(done * 1000))
        if self._done_at_start is None:  # a resumed run starts part way
            self._done_at_start = done
        elapsed = time.monotonic() - self._started
        gained = done - self._done_at_start
        eta = elapsed * (1 - done) / gained if gained > 0 else 0.0
        speed = f" · {images_per_s:.0f} img/s" if images_per_s else ""
        self.progress.setFormat(f"epoch {min(epoch + 1, epochs)}/{epochs} · "
                                f"{done:.0%}{speed} · ETA {int(eta // 60)}:{int(eta % 60):02d}")

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if isinstance(result, LrFinderResult):
            self.lr_plot.plot(result.lrs, result.losses, pen=pg.mkPen("#4c72b0", width=2))
            self.lr_plot.addItem(pg.InfiniteLine(pos=math.log10(max(result.suggested_lr, 1e-12)),
                                                 angle=90, pen=pg.mkPen("#c44e52")))
            self.lr.setValue(result.suggested_lr)
            text = f"Suggested learning rate: {result.suggested_lr:.2e} (set above)"
        else:
            self.run_dir = Path(result.run_dir)
            auc = "n/a" if result.best_val_auc is None else f"{result.best_val_auc:.4f}"
            text = (f"Run {result.status}: {result.epochs_done}/{result.epochs} epochs, best "
                    f"val AUC {auc} (epoch {result.best_epoch}) in {self.run_dir}")
        self.message.setText(text)
        self.status_message.emit(text)
        self.progress.setFormat("idle")
        self.refresh_history()
        self.evaluation.refresh_runs()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.message.setText(message)
        self.status_message.emit(message)
        self.progress.setFormat("failed")
        self.refresh_history()

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        has_data = self.spec is not None
        self.start_button.setEnabled(has_data and not running)
        self.lr_button.setEnabled(has_data and not running)
        record = self.selected_run()
        self.resume_button.setEnabled(not running and record is not None
                                      and record.status in RESUMABLE)
        self.stop_button.setEnabled(running)
        if not running:
            self._show_schedule()

    # Run history -------------------------------------------------------------------------
    def refresh_history(self) -> None:
        self.history.refresh()

    def selected_run(self) -> RunRecord | None:
        return self.history.selected_run()

    def _on_history_selected(self) -> None:
        self._on_running_changed(self.engine.is_running())
        record = self.selected_run()
        if record is None or self.engine.is_running():
            return
        try:
            self.plots.show_history(RunFolder(record.run_dir).read_metrics())
        except CxrError as exc:
            self.plots.clear()
            self.message.setText(str(exc))

    def shutdown(self) -> None:
        self.engine.shutdown()
        self.evaluation.shutdown()
