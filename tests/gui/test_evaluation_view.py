"""The Evaluation view on real tiny runs: computes off-thread, the slider moves the
operating point without recomputing, a wrong image opens in the Viewer; the localization
panel shows what ``localize`` gives, its misses open in the Viewer, a dataset without
annotations gets a sentence."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from evaluation_runs import trained_runs

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.evaluate import predictions as predictions_module
from cxr_desktop.core.evaluate.localize import localize
from cxr_desktop.core.runs.load import load_run
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.core.train import TrainConfig, fit
from cxr_desktop.gui.widgets.evaluation_view import EvaluationView
from cxr_desktop.gui.widgets.localization_panel import NO_ANNOTATIONS


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return trained_runs(tmp_path_factory.mktemp("evaluation-runs"))


@pytest.fixture
def view(qtbot, tiny):
    widget = EvaluationView(registry=RunRegistry(tiny.registry))
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    yield widget
    qtbot.waitUntil(lambda: not widget.runner.busy(), timeout=60_000)


def run_evaluation(qtbot, view, runs) -> None:
    view.set_checked_runs([str(r) for r in runs])
    with qtbot.waitSignal(view.evaluated, timeout=60_000):
        view.evaluate()
    qtbot.waitUntil(lambda: not view.runner.busy(), timeout=10_000)


def test_one_run_slider_moves_sensitivity_and_a_click_opens_the_image(qtbot, view, tiny,
                                                                      monkeypatch):
    assert view.run_list.count() == 2
    run_evaluation(qtbot, view, tiny.runs[:1])
    assert view.source_box.count() == 1 and view.confusion.rowCount() == 2
    matrix = [[view.confusion.value(r, c) for c in range(2)] for r in range(2)]
    assert sum(map(sum, matrix)) == 40
    preds = view.current().predictions

    def not_again(*args, **kwargs):
        raise AssertionError("the slider must not run the model again")

    monkeypatch.setattr(predictions_module, "_infer", not_again)
    sensitivities = []
    for value in (0, 300, 600, 1000):
        view.slider.setValue(value)
        called = preds.probs >= value / 1000
        positive = preds.targets == 1
        assert view.counts.sensitivity == pytest.approx(called[positive].mean())
        assert view.counts.specificity == pytest.approx((~called)[~positive].mean())
        assert view.confusion.value(1, 1) == int(np.sum(called & positive))
        assert f"sensitivity {view.counts.sensitivity:.3f}" in view.operating.text()
        sensitivities.append(view.counts.sensitivity)
    assert sensitivities[0] == 1.0 and sensitivities == sorted(sensitivities, reverse=True)
    assert view.roc.point.data["x"][0] == pytest.approx(1 - view.counts.specificity)

    assert view.losses.count() > 0
    assert not view.losses.item(0).icon().isNull()
    with qtbot.waitSignal(view.open_in_viewer) as blocker:
        view.losses.itemClicked.emit(view.losses.item(0))
    assert blocker.args == [view.losses.path_at(0), str(tiny.runs[0]), "", ""]


def test_an_ensemble_lists_every_method_and_opens_the_best_member(qtbot, view, tiny):
    run_evaluation(qtbot, view, tiny.runs)
    names = [view.source_box.itemData(i) for i in range(view.source_box.count())]
    assert names[:3] == ["mean", "vote", "auc-weighted"]
    assert sorted(names[3:]) == sorted(map(str, tiny.runs))
    result = view.outcome.result
    val_aucs = {r.run_dir: r.best_val_auc for r in RunRegistry(tiny.registry).list()}
    assert view.losses.count() > 0
    with qtbot.waitSignal(view.open_in_viewer) as blocker:
        view.losses.itemClicked.emit(view.losses.item(0))
    assert val_aucs[blocker.args[1]] == max(val_aucs.values())
    view.source_box.setCurrentIndex(4)
    assert view.current() is result.members[1]
    # The member's maps are measured now (in a worker): let it finish before the view goes.
    member = view.source_box.currentData()
    qtbot.waitUntil(lambda: view.localization.outcome.request.run_dir == member
                    and not view.runner.busy(), timeout=60_000)


def test_a_failure_is_shown_and_the_view_keeps_going(qtbot, view, tiny, tmp_path):
    view.set_dataset(str(tmp_path / "missing.csv"))
    view.set_checked_runs([str(tiny.runs[0])])
    view.evaluate()
    qtbot.waitUntil(lambda: not view.runner.busy(), timeout=30_000)
    assert "Evaluation failed" in view.status.text() and "missing.csv" in view.status.text()
    assert view.evaluate_button.isEnabled()


def annotated_blobs(root: Path) -> DatasetSpec:
    """Blob images whose positives carry a box around the blob (their annotation)."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:80, 0:80].astype(np.float32)
    items = []
    for split, count in (("train", 40), ("val", 12), ("test", 20)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image = 90 + 30 * np.sin(xx / 9 + rng.uniform(0, 6)) + rng.normal(0, 12, (80, 80))
            shapes = []
            if index % 2:
                cy, cx = rng.uniform(20, 60, 2)
                image += 150 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 128)
                shapes = [Shape("blob", "rectangle", ((cx - 12, cy - 12), (cx + 12, cy + 12)))]
            name = f"{split}/{index:03d}.png"
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / name)
            items.append(ImageItem(name, split, None, "blob" if index % 2 else "clear", shapes))
    return DatasetSpec(root=root, task="binary", classes=["clear", "blob"],
                       positive_class="blob", items=items)


@pytest.fixture(scope="session")
def annotated(tmp_path_factory):
    base = tmp_path_factory.mktemp("annotated-run")
    spec = annotated_blobs(base / "ds")
    spec.save(base / "ds.json")
    config = TrainConfig(dataset=str(base / "ds.json"), arch="small_cnn", size=64, epochs=3,
                         batch_size=8, lr=3e-3, pretrained="none", seed=0,
                         out=str(base / "run"), cache_dir=str(base / "cache"))
    assert fit(config, spec=spec, registry=RunRegistry(base / "runs.sqlite")).status == "done"
    return base / "run", spec, base / "runs.sqlite"


def wait_localized(qtbot, view) -> None:
    panel = view.localization
    qtbot.waitUntil(lambda: panel.outcome is not None and not view.runner.busy(),
                    timeout=60_000)


def test_the_localization_panel_shows_what_localize_gives(qtbot, annotated):
    run, spec, registry = annotated
    view = EvaluationView(registry=RunRegistry(registry))
    qtbot.addWidget(view)
    view.resize(1024, 700)
    view.show()
    run_evaluation(qtbot, view, [run])
    wait_localized(qtbot, view)
    panel = view.localization
    expected = localize(run, spec, "test", method="gradcam")
    result = panel.outcome.result
    assert panel.pages.currentIndex() == 1 and result.n == expected.n == 10
    assert result.pointing_game == pytest.approx(expected.pointing_game)
    assert result.pointing_game_ci == pytest.approx(expected.pointing_game_ci)
    assert f"Pointing game {expected.pointing_game:.3f}" in panel.numbers.text()
    assert f"Energy in boxes {expected.energy_in_boxes:.3f}" in panel.numbers.text()
    # The method and layer offered are the model's; the default is Grad-CAM, last layer.
    model = load_run(run).model
    layers = [panel.layer.itemText(i) for i in range(panel.layer.count())]
    assert layers == list(model.cam_layers())
    assert panel.layer.currentText() == model.default_cam_layer == result.layer
    assert panel.method.currentData() == "gradcam" == result.method
    # The FROC: the curve where it has false positives, a dot per rate on a log x axis.
    x, y = panel.froc.curve.getData()
    assert panel.froc.plot.getPlotItem().ctrl.logXCheck.isChecked()
    assert list(panel.froc.rates.data["y"]) == pytest.approx(expected.froc.at_rates)
    assert list(panel.froc.rates.data["x"]) == pytest.approx(np.log10(expected.froc.rates))
    assert len(x) == len(y) > 0
    # The gallery: every miss (at most 48), each with its overlay, name and score.
    misses = expected.misses()
    assert misses, "the tiny run should miss some blobs"
    assert panel.gallery.count() == min(len(misses), 48)
    assert [panel.gallery.path_at(i) for i in range(panel.gallery.count())] == \
        [m.image for m in misses[:48]]
    first = panel.gallery.item(0)
    assert not first.icon().isNull()
    assert first.text() == f"{Path(misses[0].image).name}\nscore {misses[0].score:.2f}"
    assert f"({len(misses)})" in view.images.tabText(1)
    with qtbot.waitSignal(view.open_in_viewer) as blocker:
        panel.gallery.itemClicked.emit(first)
    # it opens with the map measured: the method and the layer of the panel
    assert blocker.args == [misses[0].image, str(run), "gradcam", model.default_cam_layer]
    # Another layer: measured again, then kept (no new work when it is picked again).
    other = layers[-2]
    panel.layer.setCurrentText(other)
    qtbot.waitUntil(lambda: panel.outcome.result.layer == other and not view.runner.busy(),
                    timeout=60_000)
    assert panel.outcome.result.pointing_game == pytest.approx(
        localize(run, spec, "test", layer=other).pointing_game)
    panel.layer.setCurrentText(model.default_cam_layer)
    assert panel.outcome.result is result  # at once: the result kept is shown again
    qtbot.waitUntil(lambda: not view.runner.busy(), timeout=60_000)


def test_a_good_classifier_whose_maps_miss_is_warned_of(qtbot):
    from cxr_desktop.core.evaluate.localization import FrocCurve, ImageScore
    from cxr_desktop.core.evaluate.localize import Localization
    from cxr_desktop.gui.widgets.localization_panel import LocalizationPanel, Outcome, Request
    from cxr_desktop.gui.workers import TaskRunner

    panel = LocalizationPanel(TaskRunner())
    qtbot.addWidget(panel)
    scores = [ImageScore(f"/x/{i}.png", "blob", 0.9, 5.0, 5.0, i == 0, 0.1) for i in range(4)]
    result = Localization("run", "test", "gradcam", "block4", scores,
                          FrocCurve([0.0, 0.5], [0.0, 0.25], at_rates=[0.25] * 7), 4)
    panel.auc = 0.95
    panel._show(Outcome(Request("run", None, "test", "gradcam", None), ["block4"], result,
                        misses=[(s, None) for s in result.misses()]))
    assert not panel.warning.isHidden() and panel.warning.wordWrap()
    assert panel.warning.text() == result.shortcut_warning(0.95)
    assert "the model may use shortcuts: look at these images" in panel.warning.text()
    assert panel.gallery.count() == 3
    panel.auc = 0.6
    panel._show(panel.outcome)
    assert panel.warning.isHidden()


def test_a_dataset_without_annotations_gets_a_sentence(qtbot, view, tiny):
    run_evaluation(qtbot, view, tiny.runs[:1])
    wait_localized(qtbot, view)
    panel = view.localization
    assert panel.pages.currentWidget() is panel.message
    assert panel.message.text() == NO_ANNOTATIONS
    assert panel.gallery.count() == 0 and not panel.warning.isVisibleTo(view)
