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
    tab.lr.setValue(1e-3)


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


def test_schedule_shown_before_start_follows_the_form_and_the_probe(tab, qtbot, demo_spec):
    assert tab.schedule.text().startswith("Schedule: open a dataset")
    assert tab.size.text() == "auto" and tab.size.value() == 0  # the architecture's own
    tab.set_dataset(demo_spec)
    tab.arch.setCurrentIndex(tab.arch.findData("small_cnn"))
    tab.size.setValue(64)
    tab.pretrained.setCurrentIndex(tab.pretrained.findText("none"))
    assert tab.freeze.text() == "auto" and tab.batch.text() == "auto" and tab.lr.text() == "auto"
    tab.epochs.setValue(12)
    plan = tab.schedule.plan
    assert plan is not None and plan.freeze_epochs == 0  # nothing pretrained to freeze
    assert plan.batch_size == 16 and plan.lr_source == "auto" and plan.sizes == [64] * 12
    assert "LR auto" in tab.schedule.text() and "no frozen epoch" in tab.schedule.text()
    tab.pretrained.setCurrentIndex(tab.pretrained.findText("auto"))
    tab.arch.setCurrentIndex(tab.arch.findData("efficientnet_lite0"))
    assert tab.schedule.plan.freeze_epochs == 1 and "1 frozen" in tab.schedule.text()
    tab.epochs.setValue(3)
    assert tab.schedule.plan.freeze_epochs == 0
    tab.lr.setValue(2e-3)
    tab.batch.setValue(8)
    assert tab.schedule.plan.lr == 2e-3 and "head 2.0e-03" in tab.schedule.text()
    assert "batch 8" in tab.schedule.text()
    # A run with the LR left at auto shows the LR its probe found.
    _configure(tab, demo_spec, epochs=1)
    tab.pretrained.setCurrentIndex(tab.pretrained.findText("none"))
    tab.lr.setValue(0.0)
    tab.start_button.click()
    qtbot.waitUntil(lambda: tab.schedule.text().startswith("Running:"), timeout=120_000)
    assert tab.schedule.plan.lr_source == "probe" and "LR from the probe" in tab.schedule.text()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=120_000)
    assert tab.schedule.text().startswith("Schedule:")


def test_resume_selected_run_finishes_it(tab, qtbot, demo_spec):
    _configure(tab, demo_spec, epochs=2)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.plots.batch_x) >= 1, timeout=120_000)
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=30_000)
    assert not tab.resume_button.isEnabled()  # nothing selected
    tab.history.selectRow(0)
    assert tab.resume_button.isEnabled()
    tab.resume_button.click()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=120_000)
    record = RunRegistry().list()[0]
    assert record.status == "done" and record.epochs_done == 2
    assert (Path(record.run_dir) / "best.pt").is_file()
    assert "done" in tab.message.text()
    tab.history.selectRow(0)
    assert not tab.resume_button.isEnabled()  # a finished run has nothing to resume


def test_a_run_whose_folder_is_gone_gives_a_message_and_can_be_forgotten(qtbot, tmp_path):
    gone = tmp_path / "deleted-run"
    RunRegistry().start(gone, arch="small_cnn", dataset="d", task="binary", epochs=3)
    RunRegistry().update(gone, status="stopped", epochs_done=1)
    widget = TrainingTab(TaskRunner())
    qtbot.addWidget(widget)
    messages: list[str] = []
    widget.status_message.connect(messages.append)
    widget.history.selectRow(0)
    widget.resume_button.click()
    assert not widget.engine.is_running()
    assert "Cannot resume" in widget.message.text() and str(gone) in widget.message.text()
    assert messages and str(gone) in messages[-1] and "\n" not in messages[-1]

    widget.history.forget(widget.history.selected_run())
    assert widget.history.rowCount() == 0 and RunRegistry().list() == []
    widget.shutdown()


def test_an_unreadable_registry_leaves_the_tab_usable(qtbot):
    from cxr_desktop.core.runs.registry import default_registry_path

    default_registry_path().parent.mkdir(parents=True, exist_ok=True)
    default_registry_path().write_bytes(b"this is not an SQLite database" * 100)
    widget = TrainingTab(TaskRunner())
    qtbot.addWidget(widget)
    messages: list[str] = []
    widget.status_message.connect(messages.append)
    widget.refresh_history()
    assert widget.history.rowCount() == 0
    assert messages == [f"{default_registry_path()}: the run registry cannot be used (file is "
                        "not a database); move the file away to start a new one (run folders "
                        "are kept)"]
    widget.shutdown()


def test_progress_and_curves_count_epochs_from_one_as_the_engine_does(tab):
    tab._begin("Training...", 2)
    tab._on_event({"type": "batch", "epoch": 1, "progress": 0.5, "loss": 0.7,
                   "images_per_s": 10.0})
    assert tab.progress.format().startswith("epoch 1/2 · 25%")
    assert tab.progress.value() == 250
    tab._on_event({"type": "epoch", "epoch": 1, "epochs": 2, "val_loss": 0.6, "val_auc": 0.8,
                   "images_per_s": 10.0})
    assert tab.progress.format().startswith("epoch 2/2 · 50%")
    tab._on_event({"type": "batch", "epoch": 2, "progress": 1.0, "loss": 0.5,
                   "images_per_s": 10.0})
    assert tab.progress.format().startswith("epoch 2/2 · 100%")
    # Epoch k's batches end where its validation point is drawn (x = k).
    assert tab.plots.batch_x == [0.5, 2.0] and tab.plots.epoch_x == [1.0]
