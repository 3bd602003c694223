"""The Evaluation view on two real tiny runs: computes off-thread, the slider moves the
operating point without recomputing, a wrong image opens in the Viewer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from evaluation_runs import trained_runs

from cxr_desktop.core.evaluate import predictions as predictions_module
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.gui.widgets.evaluation_view import EvaluationView


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
    assert blocker.args == [view.losses.path_at(0), str(tiny.runs[0])]


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


def test_a_failure_is_shown_and_the_view_keeps_going(qtbot, view, tiny, tmp_path):
    view.set_dataset(str(tmp_path / "missing.csv"))
    view.set_checked_runs([str(tiny.runs[0])])
    view.evaluate()
    qtbot.waitUntil(lambda: not view.runner.busy(), timeout=30_000)
    assert "Evaluation failed" in view.status.text() and "missing.csv" in view.status.text()
    assert view.evaluate_button.isEnabled()
