"""One long engine call (fit, resume, LR finder) in a QThread, reported through signals.

The core call gets ``on_event=worker.event.emit`` and ``should_stop=cancel.is_set``; the
Stop button sets the ``threading.Event`` directly, because a queued slot would never run
while ``run()`` blocks. The worker emits ``done`` or ``failed`` exactly once, and runs at a
lower priority than the GUI thread so that a repaint never waits for a core.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cxr_desktop.core.errors import CxrError
from cxr_desktop.gui.workers import (
    call_guarded,
    lower_thread_priority,
    start_in_thread,
    wait_or_keep_alive,
)

#: ``job(on_event, should_stop) -> result``
Job = Callable[[Callable[[dict], None], Callable[[], bool]], Any]


class EngineWorker(QObject):
    event = Signal(object)
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job
        self.cancel = threading.Event()

    @Slot()
    def run(self) -> None:
        lower_thread_priority()
        ok, value = call_guarded(lambda: self._job(self.event.emit, self.cancel.is_set),
                                 "the training worker")
        if ok:
            self.done.emit(value)
        else:
            self.failed.emit(value)


class EngineRunner(QObject):
    """Holds at most one running EngineWorker; relays its signals on the GUI thread."""

    event = Signal(object)
    done = Signal(object)
    failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: EngineWorker | None = None

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, job: Job) -> None:
        if self._thread is not None:
            raise CxrError("a training job is already running")
        worker = EngineWorker(job)
        worker.event.connect(self.event)
        worker.done.connect(self.done)
        worker.failed.connect(self.failed)
        self._worker = worker
        self._thread = start_in_thread(self, worker, (worker.done, worker.failed),
                                       self._on_finished)
        self.running_changed.emit(True)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel.set()

    @Slot()
    def _on_finished(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            thread.deleteLater()
        self.running_changed.emit(False)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop the job and wait for its thread (the engine saves a checkpoint first)."""
        if self._thread is None:
            return
        self.stop()
        self._thread.quit()
        if wait_or_keep_alive(self._thread, self._worker, timeout_ms):
            self._on_finished()
