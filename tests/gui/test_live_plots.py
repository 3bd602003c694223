"""The live curves: a run's x axis spans its planned epochs, and a redraw touches only what
changed (the GUI thread's largest piece of work during a run)."""

from __future__ import annotations

import pytest

from cxr_desktop.gui.widgets.live_plots import TrainingPlots


@pytest.fixture
def plots(qtbot):
    widget = TrainingPlots()
    qtbot.addWidget(widget)
    widget.resize(900, 400)
    widget.show()
    return widget


def test_a_run_keeps_its_x_axis_and_redraws_epoch_curves_only_at_epoch_ends(plots, qtbot):
    plots.start_run(epochs=4)
    plots._redraw()  # the emptied curves
    epoch_updates = []
    plots.auc_curve.sigPlotChanged.connect(lambda *_: epoch_updates.append(1))
    for step in range(10):
        plots.add_batch(1, step / 10, 1.0 - step / 20)
        plots._redraw()
    low, high = plots.loss_plot.getViewBox().viewRange()[0]
    assert low == pytest.approx(0, abs=0.1) and high == pytest.approx(4, abs=0.1)
    assert len(plots.train_curve.getData()[0]) == 10 and not epoch_updates
    plots.add_epoch({"epoch": 1, "val_loss": 0.6, "val_auc": 0.8})
    plots._redraw()
    assert len(epoch_updates) == 1 and list(plots.auc_curve.getData()[1]) == [0.8]
    assert plots.auc_plot.getViewBox().viewRange()[0][1] == pytest.approx(4, abs=0.1)


def test_a_finished_runs_history_autoranges_again(plots):
    plots.start_run(epochs=40)
    plots.show_history([{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_auc": 0.7},
                        {"epoch": 2, "train_loss": 0.7, "val_loss": 0.6, "val_auc": 0.75}])
    plots.loss_plot.getViewBox().updateAutoRange()
    assert plots.loss_plot.getViewBox().viewRange()[0][1] < 10
