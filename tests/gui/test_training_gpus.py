"""The Training tab's "GPUs" choice: hidden with one GPU; with two visible (faked here), a
tiny real run trains as two gloo processes on the CPU, its curves live in the tab, and Stop
ends every process with a checkpoint to resume from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.runs.load import load_run
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.gui.tabs.training_tab import TrainingTab
from cxr_desktop.gui.widgets import gpu_choice
from cxr_desktop.gui.workers import TaskRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, n_images=40, size=96, seed=3)
    return open_dataset(root)


def _tab(qtbot, monkeypatch, gpus: int) -> TrainingTab:
    monkeypatch.setattr(gpu_choice, "visible_gpus", lambda: gpus)
    widget = TrainingTab(TaskRunner())
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture
def tab(qtbot, monkeypatch):
    widget = _tab(qtbot, monkeypatch, 2)
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
    tab.pretrained.setCurrentIndex(tab.pretrained.findText("none"))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("gpus", [0, 1])
def test_one_gpu_or_none_hides_the_choice(qtbot, monkeypatch, demo_spec, gpus):
    widget = _tab(qtbot, monkeypatch, gpus)
    try:
        assert widget.gpus.isHidden() and not widget.gpus.available
        assert widget.gpus.value() == 1 and widget.gpus.processes("auto") == 1
    finally:
        widget.shutdown()


def test_two_gpus_train_one_run_with_live_curves(tab, qtbot, demo_spec):
    assert not tab.gpus.isHidden() and tab.gpus.value() == 1 and tab.gpus.maximum() == 2
    _configure(tab, demo_spec, epochs=2)
    tab.gpus.setValue(2)
    events: list[dict] = []
    tab.engine.event.connect(events.append)
    with qtbot.waitSignal(tab.engine.done, timeout=180_000) as finished:
        tab.start_button.click()
        assert "on 2 GPUs" in tab.message.text()
    result = finished.args[0]
    assert result.world_size == 2 and result.status == "done" and result.epochs_done == 2
    assert [row["epoch"] for row in result.history] == [1, 2]
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=10_000)
    assert len(tab.plots.batch_x) >= 2 and len(tab.plots.epoch_x) == 2
    kinds = {event["type"] for event in events}
    assert {"cache", "message", "batch", "epoch", "done"} <= kinds
    left_out = [e for e in events if e["type"] == "message" and "left out" in e["text"]]
    assert len(left_out) == 1  # told by the cache here, not again by rank 0
    assert tab.history.item(0, 3).text() == "done" and tab.history.item(0, 4).text() == "2/2"
    assert "Run done: 2/2 epochs" in tab.message.text()
    assert (result.run_dir / "best.pt").is_file()


def test_stop_ends_every_process_with_a_checkpoint(tab, qtbot, demo_spec):
    _configure(tab, demo_spec, epochs=300)
    tab.gpus.setValue(2)
    tab.start_button.click()
    qtbot.waitUntil(lambda: len(tab.plots.epoch_x) >= 1 and len(tab.plots.batch_x) >= 2,
                    timeout=180_000)
    launchers = [pid for pid in _children(os.getpid())
                 if b"torch.distributed.run" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    ranks = [pid for launcher in launchers for pid in _children(launcher)]
    assert len(launchers) == 1 and len(ranks) == 2
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.engine.is_running(), timeout=90_000)
    assert not any(_alive(pid) for pid in launchers + ranks)
    records = RunRegistry().list()
    assert len(records) == 1 and records[0].status == "stopped"
    assert 1 <= records[0].epochs_done < 300
    run = load_run(records[0].run_dir, which="last")
    assert run.metadata["arch"] == "small_cnn"
    assert "Run stopped" in tab.message.text()
    tab.history.selectRow(0)
    assert tab.resume_button.isEnabled()
