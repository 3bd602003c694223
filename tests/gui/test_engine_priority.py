"""The training worker and every thread it starts run at a lower priority than the GUI
thread, so that a repaint never waits for a core while training keeps them busy."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
import torch

from cxr_desktop.gui.engine_worker import EngineRunner
from cxr_desktop.gui.workers import WORKER_NICENESS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="thread nice values are Linux's")


def _nice_values() -> dict[int, int]:
    """Every thread of this process: its nice value (field 19 of /proc's stat)."""
    values = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        values[int(task.name)] = int(fields[16])
    return values


def _job_seeing_its_threads(on_event, should_stop) -> dict:
    before = _nice_values()
    release = threading.Event()
    helper = threading.Thread(target=release.wait)
    helper.start()
    torch.ones(512, 512) @ torch.ones(512, 512)  # torch's thread pool, started from here
    after = _nice_values()
    release.set()
    helper.join()
    return {"worker": after[threading.get_native_id()],
            "started": {tid: nice for tid, nice in after.items() if tid not in before}}


def test_training_and_the_threads_it_starts_run_below_the_gui_thread(qtbot) -> None:
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    engine = EngineRunner()
    with qtbot.waitSignal(engine.done, timeout=20_000) as done:
        engine.start(_job_seeing_its_threads)
    qtbot.waitUntil(lambda: not engine.is_running(), timeout=5_000)
    seen = done.args[0]
    expected = min(gui + WORKER_NICENESS, 19)
    assert seen["worker"] == expected
    assert seen["started"], "the job started a thread"
    assert set(seen["started"].values()) == {expected}, seen
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui
