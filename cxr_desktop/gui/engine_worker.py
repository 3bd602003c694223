"""One long engine call (fit, resume, LR finder) in a QThread, reported through signals.

The core call gets ``on_event=worker.event.emit`` and ``should_stop=cancel.is_set``; the
Stop button sets the ``threading.Event`` directly, because a queued slot would never run
while ``run()`` blocks. The worker emits ``done`` or ``failed`` exactly once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cxr_desktop.core.crashlog import record_crash
from cxr_desktop.core.errors import CxrError

log = logging.getLogger(__name__)

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
        try:
            result = self._job(self.event.emit, self.cancel.is_set)
        except CxrError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # one line for the user; the traceback goes to the log
            log.exception("training worker failed")
            record_crash(exc, "the training worker")
            self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            self.done.emit(result)


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
        thread = QThread(self)
        worker = EngineWorker(job)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self.event)
        worker.done.connect(self.done)
        worker.failed.connect(self.failed)
        worker.done.connect(thread.quit)
        worker.failed.connect(thread.quit)
        thread.finished.connect(self._on_finished)
        self._thread, self._worker = thread, worker
        thread.start()
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
        self._thread.wait(timeout_ms)
        self._on_finished()
