"""A tiny real training started from the Training tab: live curves, Stop, a usable checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.runs.load import load_run
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.gui.tabs.training_tab import TrainingTab
from cxr_desktop.gui.workers import TaskRunner


@pytest.fixture(scope="module")
def demo_spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, n_images=60, size=96, seed=3)
    return open_dataset(root)


@pytest.fixture
def tab(qtbot):
    widget = TrainingTab(TaskRunner())
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.shutdown()


def _configure(tab, demo_spec, epochs: int) -> None:
    tab.set_dataset(demo_spec)
    tab.arch.setCurrentIndex(tab.arch.findData("small_cnn"))
    tab.size.setValue(64)
    tab.epochs.setValue(epochs)
    tab.freeze.setValue(0)
    tab.batch.setValue(8)


def test_start_streams_points_then_stop_leaves_a_checkpoint(tab, qtbot, demo_spec):
    _configure(tab, demo_spec, epochs=40)
    assert not tab.stop_button.isEnabled()
    tab.start_button.click()
    assert tab.engine.is_running() and tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(tab.plots.epoch_x) >= 1 and len(tab.plots.batch_x) >= 2,
                    timeout=120_000)
    qtbot.wait(250)  # the plot timer redraws from the buffers
    xs, ys = tab.plots.val_curve.getData()
    assert len(xs) >= 1 and ys[0] == pytest.approx(tab.plots.val_loss[0])
    assert len(tab.plots.train_curve.getData()[0]) >= 2
    assert tab.history.item(0, 3).text() == "running"
    assert tab.history.item(0, 4).text() != "0/40" and tab.history.item(0, 5).text() != ""
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=30_000)
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
    records = RunRegistry().list()
    assert len(records) == 1 and records[0].status == "stopped"
    assert 1 <= records[0].epochs_done < 40
    run = load_run(records[0].run_dir, which="last")
    assert run.metadata["arch"] == "small_cnn"
    assert tab.history.rowCount() == 1 and tab.history.item(0, 3).text() == "stopped"


def test_resume_selected_run_finishes_it(tab, qtbot, demo_spec):
    _configure(tab, demo_spec, epochs=2)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.plots.batch_x) >= 1, timeout=120_000)
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=30_000)
    tab.history.selectRow(0)
    tab.resume_button.click()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=120_000)
    record = RunRegistry().list()[0]
    assert record.status == "done" and record.epochs_done == 2
    assert (Path(record.run_dir) / "best.pt").is_file()
    assert "done" in tab.message.text()
