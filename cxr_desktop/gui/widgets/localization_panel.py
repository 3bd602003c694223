"""The Evaluate page's localization panel: does the run's map point at the annotations?

For the run shown on the Evaluate page (an ensemble's best member), the worker runs the
core's ``localize`` on the evaluated split: the pointing game with its 95 % interval, the
energy inside the annotations, the FROC curve, and an overlay thumbnail of each miss
(``miss_overlay``). The panel shows them with the CAM method and layer to choose (default
Grad-CAM at the last layer), an amber warning when the model classifies well but its maps
mostly miss (``shortcut_warning``, in ``warning``), and the misses in ``gallery``; a click
on one asks the Viewer to open it with the run. The page places ``warning`` and
``gallery`` (a full-width line, a tab under the plots). A dataset without annotations, or
a split without an annotated positive, gets a sentence instead of the numbers. The newest
request wins; a superseded one is stopped at its next batch; results are kept per run,
method and layer.
"""

from __future__ import annotations

import html
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.evaluate.localization import ImageScore
from cxr_desktop.core.evaluate.localization_report import miss_overlay
from cxr_desktop.core.evaluate.localize import Localization, class_shapes, localize
from cxr_desktop.core.evaluate.suite import run_dataset
from cxr_desktop.core.infer.methods import CAM_METHODS
from cxr_desktop.core.runs.load import load_run
from cxr_desktop.gui.widgets.froc_plot import FrocPlot
from cxr_desktop.gui.widgets.misses_gallery import THUMB, MissesGallery
from cxr_desktop.gui.widgets.model_panel import CAM_LABELS, WARNING_STYLE
from cxr_desktop.gui.workers import TaskRunner

CHANNEL = "evaluate.localize"
DEFAULT_METHOD = "gradcam"
#: Misses shown in the gallery (the first ones, in the split's order).
MAX_SHOWN = 48
NO_ANNOTATIONS = ("This dataset has no annotations (boxes or masks), so where the model looks "
                  "cannot be measured. Datasets with shapes (Object-CXR, RSNA, SIIM, VinDr, "
                  "NIH boxes, the demo) can be.")
EXPLAINED = ("Pointing game (95% interval): the share of annotated positives whose map peaks "
             "inside the bounding box of an annotation of the class.\nEnergy in boxes: the "
             "share of the map's sum inside the annotations.\nFROC: the mean sensitivity at "
             "1/8, 1/4, 1/2, 1, 2, 4 and 8 false positives per image (the map's local "
             "maxima as findings; the negatives give false positives only).")
WAITING = "Evaluate a run to see where its maps point against the annotations."


class Cancelled(CxrError):
    """A newer request took over; the result would be dropped anyway."""


@dataclass(frozen=True)
class Request:
    run_dir: str
    dataset: str | None
    split: str
    method: str
    layer: str | None  # None: the model's last layer


@dataclass
class Outcome:
    """What the worker hands back: the model's layers and either the scores with the
    thumbnails of the first misses, or the sentence to show instead (``message``)."""

    request: Request
    layers: list[str]
    result: Localization | None = None
    message: str | None = None
    misses: list[tuple[ImageScore, np.ndarray | None]] = field(default_factory=list)


def compute_localization(request: Request, cancel: threading.Event,
                         progress: Callable[[int, int], None] | None = None) -> Outcome:
    """Runs in a worker thread; raises ``Cancelled`` at the next batch once ``cancel`` is set."""
    layers = list(load_run(request.run_dir, device="cpu").model.cam_layers())
    spec = open_dataset(request.dataset) if request.dataset else run_dataset(request.run_dir)
    if not any(item.shapes for item in spec.items):
        return Outcome(request, layers, message=NO_ANNOTATIONS)

    def on_progress(done: int, total: int) -> None:
        if cancel.is_set():
            raise Cancelled("a newer localization was asked for")
        if progress is not None:
            progress(done, total)

    result = localize(request.run_dir, spec, request.split, method=request.method,
                      layer=request.layer, progress=on_progress)
    shown = result.misses()[:MAX_SHOWN]
    by_path = {str(spec.abspath(item)): item for item in spec.items}
    misses = []
    for score in shown:
        if cancel.is_set():
            raise Cancelled("a newer localization was asked for")
        cam = result.miss_maps.get((score.image, score.label))
        item = by_path.get(score.image)
        shapes = class_shapes(item, score.label, spec.task) if item else []
        misses.append((score, None if cam is None else _thumbnail(score, cam, shapes)))
    result.miss_maps.clear()  # the thumbnails are made: the page keeps results, not maps
    return Outcome(request, layers, result, misses=misses)


def _thumbnail(score: ImageScore, cam: np.ndarray, shapes: list[Shape]) -> np.ndarray | None:
    try:
        return miss_overlay(score, cam, shapes, side=THUMB)
    except CxrError:
        return None  # the image can no longer be read: listed without a picture


def _fmt(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.3f}"


def describe(result: Localization) -> str:
    """The numbers of ``result`` as rich text, with the notes of the measure."""
    low, high = result.pointing_game_ci
    hits = sum(s.hit for s in result.images)
    method = CAM_LABELS.get(result.method, result.method)
    lines = [f"<b>Pointing game {_fmt(result.pointing_game)}</b> ({_fmt(low)}-{_fmt(high)}): "
             f"{hits} of {result.n} {html.escape(method)} peaks on the annotation",
             f"<b>Energy in boxes {_fmt(result.energy_in_boxes)}</b> · <b>FROC "
             f"{_fmt(result.froc.score)}</b>"]
    lines += [f"<small>{html.escape(note)}</small>" for note in result.notes]
    return "<br>".join(lines)


def per_class(result: Localization) -> str:
    """One line per class when there are several (for the tooltip: 14 lines do not fit)."""
    if len(result.per_class) < 2:
        return ""
    return "\n".join(f"{name}: pointing game {_fmt(c['pointing_game'])}, energy in boxes "
                     f"{_fmt(c['energy_in_boxes'])} (n {c['n']})"
                     for name, c in result.per_class.items())


class LocalizationPanel(QGroupBox):
    """See the module docstring. ``show_run`` asks for a run."""

    open_in_viewer = Signal(str, str, str, str)  # image path, run folder, CAM method, layer
    localized = Signal(object)  # the Outcome shown
    misses_changed = Signal(int, int)  # misses shown in the gallery, misses in all
    _progress = Signal(int, int, int)  # request token, maps done, maps in all

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__("Where the model looks", parent)
        self.runner = runner
        self.outcome: Outcome | None = None
        self.auc: float | None = None
        self._request: Request | None = None
        self._cache: dict[Request, Outcome] = {}
        self._cancel = threading.Event()
        self._tokens = itertools.count(1)
        self._token = 0
        self._measuring = ""
        self.method = QComboBox()
        self.method.setToolTip("How the map is made (Grad-CAM by default)")
        for name in CAM_METHODS:
            self.method.addItem(CAM_LABELS.get(name, name), name)
        self.method.setCurrentIndex(self.method.findData(DEFAULT_METHOD))
        self.layer = QComboBox()
        self.layer.setToolTip("The block whose feature maps make the map (default: the last)")
        for combo in (self.method, self.layer):  # long names must not widen the page
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(7)
        self.message = QLabel(WAITING)
        self.message.setWordWrap(True)
        self.numbers = QLabel()
        self.numbers.setWordWrap(True)
        self.numbers.setToolTip(EXPLAINED)
        self.warning = QLabel(self)  # the page moves it (and the gallery) to its layout
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.setVisible(False)
        self.froc = FrocPlot()
        self.gallery = MissesGallery(self)
        self.gallery.image_clicked.connect(self._on_miss_clicked)
        choose = QFormLayout()  # one row each: the page must fit 1024 px
        choose.addRow("Method:", self.method)
        choose.addRow("Layer:", self.layer)
        results = QWidget()
        shown = QVBoxLayout(results)
        shown.setContentsMargins(0, 0, 0, 0)
        shown.addWidget(self.numbers)
        shown.addWidget(self.froc, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.message)
        self.pages.addWidget(results)
        layout = QVBoxLayout(self)
        layout.addLayout(choose)
        layout.addWidget(self.pages, 1)
        self.method.currentIndexChanged.connect(self._on_choice)
        self.layer.currentIndexChanged.connect(self._on_choice)
        self._progress.connect(self._on_progress)

    # --- asking ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the results kept (a new evaluation: the runs may have been retrained)."""
        self._cache.clear()

    def show_run(self, run_dir: str, dataset: str | None, split: str,
                 auc: float | None) -> None:
        """Measure (or show the kept result of) ``run_dir``'s maps on ``split``; ``auc``,
        the run's AUC there, decides the shortcut warning."""
        self.auc = auc
        same_run = self._request is not None and self._request.run_dir == run_dir
        layer = (self.layer.currentText() or None) if same_run else None
        self._ask(Request(run_dir, dataset, split, str(self.method.currentData()), layer))

    @Slot()
    def _on_choice(self) -> None:
        if self._request is not None:
            self._ask(replace(self._request, method=str(self.method.currentData()),
                              layer=self.layer.currentText() or None))

    def _ask(self, request: Request) -> None:
        self._cancel.set()  # stop the one computing, if any: its result would be dropped
        self._request = request
        self._token = next(self._tokens)  # progress of an earlier request is ignored
        kept = self._cache.get(request)
        if kept is not None:
            self.runner.submit(CHANNEL, _none, done=_none, failed=_none)  # supersede
            self._show(kept)
            return
        self._cancel = threading.Event()
        self._measuring = (f"Measuring where {CAM_LABELS.get(request.method, request.method)}"
                           f" points on the annotated images of the {request.split} split")
        self._say(self._measuring + "...")
        self._show_gallery([])
        report = partial(self._progress.emit, self._token)
        self.runner.submit(CHANNEL, compute_localization, request, self._cancel, report,
                           done=self._on_done, failed=self._on_failed)

    # --- showing --------------------------------------------------------------------------
    def _on_done(self, outcome: Outcome) -> None:
        self._cache[outcome.request] = outcome
        if outcome.request.layer is None and outcome.result is not None:
            self._cache[replace(outcome.request, layer=outcome.result.layer)] = outcome
        self._show(outcome)

    def _on_failed(self, message: str) -> None:
        self._say(message)

    @Slot(int, int, int)
    def _on_progress(self, token: int, done: int, total: int) -> None:
        if token == self._token and self.pages.currentWidget() is self.message:
            self.message.setText(f"{self._measuring}: {done} of {total} maps...")

    def _show(self, outcome: Outcome) -> None:
        self.outcome = outcome
        result = outcome.result
        self._fill_layers(outcome.layers, result.layer if result else outcome.request.layer)
        if result is None:
            self._say(outcome.message or "")
            self._show_gallery([])
        else:
            self.numbers.setText(describe(result))
            self.numbers.setToolTip("\n\n".join(filter(None, (per_class(result), EXPLAINED))))
            warning = result.shortcut_warning(self.auc)
            self.warning.setText(warning or "")
            self.warning.setVisible(bool(warning))
            self.froc.show_curve(result.froc)
            self.pages.setCurrentIndex(1)
            self._show_gallery(outcome.misses, len(result.misses()))
        self.localized.emit(outcome)

    def _fill_layers(self, layers: list[str], current: str | None) -> None:
        self.layer.blockSignals(True)
        if [self.layer.itemText(i) for i in range(self.layer.count())] != layers:
            self.layer.clear()
            self.layer.addItems(layers)
        if current:
            self.layer.setCurrentText(current)
        self.layer.blockSignals(False)

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.pages.setCurrentIndex(0)
        self.froc.clear()

    def _show_gallery(self, misses: list[tuple[ImageScore, np.ndarray | None]],
                      total: int = 0) -> None:
        self.gallery.show_misses(misses)
        self.misses_changed.emit(len(misses), total)

    @Slot(str)
    def _on_miss_clicked(self, path: str) -> None:
        if self.outcome is not None:
            request = self.outcome.request
            self.open_in_viewer.emit(path, request.run_dir, request.method,
                                     self.outcome.result.layer)

    def shutdown(self) -> None:
        """Stop a localization still computing (the view's runner then waits for it)."""
        self._cancel.set()


def _none(*_: object) -> None:
    return None
