"""Run core functions off the GUI thread; results come back as signals.

Each call runs in its own QThread through a QObject worker. Requests share a *channel*
("load image", "predict", ...): when a newer request on a channel finishes first, or an
older one finishes late, only the newest result is delivered (the newest request wins).
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cxr_desktop.core.crashlog import record_crash
from cxr_desktop.core.errors import CxrError

log = logging.getLogger(__name__)

#: how much nicer (Linux) a long worker runs than the GUI thread: at nice 10 a thread
#: weighs a tenth of one at nice 0 in the scheduler
WORKER_NICENESS = 10


def call_guarded(fn: Callable[[], Any], where: str) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, a one-line message)`` when ``fn`` raised; an
    unexpected error is also logged with its traceback and written to the crash log."""
    try:
        return True, fn()
    except CxrError as exc:
        return False, str(exc)
    except Exception as exc:  # shown to the user as one line, logged with its traceback
        log.exception("unexpected error in %s", where)
        record_crash(exc, where)
        return False, f"unexpected error: {type(exc).__name__}: {exc}"


def lower_thread_priority() -> None:
    """Lower the calling worker thread's scheduling priority below the GUI thread's.

    Training keeps every core busy (torch's threads, the cache's decoders); on a 2-core
    machine a repaint then waited for a core and the event loop stalled 50-120 ms. At a
    lower priority the GUI thread gets a core as soon as it wakes, while training still has
    the cores the GUI leaves idle. On Linux the priority is the thread's nice value, which
    the threads it starts (torch's OpenMP pool, the cache's decoders) inherit.
    """
    if sys.platform.startswith("linux"):
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread,
                       min(os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS, 19))
    else:
        QThread.currentThread().setPriority(QThread.Priority.LowPriority)


def start_in_thread(parent: QObject, worker: QObject, ends: tuple[Any, ...],
                    on_finished: Callable[[], None]) -> QThread:
    """Move ``worker`` to a new QThread and run its ``run`` slot there; the thread quits on
    any of the ``ends`` signals, and ``on_finished`` (connected before the start, so a job
    that ends at once is not missed) runs when it has."""
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    for end in ends:
        end.connect(thread.quit)
    thread.finished.connect(on_finished)
    thread.start()
    return thread


_still_running: list[tuple[QThread, QObject]] = []


def wait_or_keep_alive(thread: QThread, worker: QObject, timeout_ms: int) -> bool:
    """Wait for ``thread``; True when it has finished. A thread still running after the
    timeout is detached from its parent and kept referenced until the process ends: Qt
    aborts the process when a running QThread is destroyed (with its parent, or by GC)."""
    if thread.wait(timeout_ms):
        return True
    log.warning("a worker thread is still running after %d ms; left to finish", timeout_ms)
    thread.setParent(None)
    _still_running.append((thread, worker))
    return False


class _Task(QObject):
    succeeded = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, request_id: int, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self._id, self._fn, self._args = request_id, fn, args

    @Slot()
    def run(self) -> None:
        where = f"background task {getattr(self._fn, '__qualname__', '?')}"
        ok, value = call_guarded(lambda: self._fn(*self._args), where)
        if ok:
            self.succeeded.emit(self._id, value)
        else:
            self.failed.emit(self._id, value)


class TaskRunner(QObject):
    """Starts background tasks and delivers the newest result per channel."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._callbacks: dict[int, tuple[str, Callable, Callable]] = {}
        self._threads: dict[int, tuple[QThread, _Task]] = {}

    def submit(self, channel: str, fn: Callable[..., Any], *args: Any,
               done: Callable[[Any], None], failed: Callable[[str], None]) -> int:
        request_id = next(self._ids)
        self._latest[channel] = request_id
        self._callbacks[request_id] = (channel, done, failed)
        task = _Task(request_id, fn, args)
        task.succeeded.connect(self._on_succeeded)
        task.failed.connect(self._on_failed)
        thread = start_in_thread(self, task, (task.succeeded, task.failed),
                                 self._on_thread_finished)
        self._threads[request_id] = (thread, task)
        return request_id

    def busy(self, channel: str | None = None) -> bool:
        if channel is None:
            return bool(self._threads)
        return any(self._callbacks.get(rid, ("",))[0] == channel for rid in self._threads)

    @Slot(int, object)
    def _on_succeeded(self, request_id: int, result: object) -> None:
        callback = self._take(request_id)
        if callback is not None:
            callback[1](result)

    @Slot(int, str)
    def _on_failed(self, request_id: int, message: str) -> None:
        callback = self._take(request_id)
        if callback is not None:
            callback[2](message)

    def _take(self, request_id: int) -> tuple[str, Callable, Callable] | None:
        channel, done, failed = self._callbacks.pop(request_id)
        if self._latest.get(channel) != request_id:
            return None  # a newer request on this channel was made: drop the stale result
        return channel, done, failed

    @Slot()
    def _on_thread_finished(self) -> None:
        for request_id, (thread, task) in list(self._threads.items()):
            if thread.isFinished():
                del self._threads[request_id]
                task.deleteLater()
                thread.deleteLater()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Wait for every running task; used when the window closes (after waiting for
        :meth:`busy` to turn false, so normally nothing is left to wait for)."""
        for request_id, (thread, task) in list(self._threads.items()):
            thread.quit()
            if not wait_or_keep_alive(thread, task, timeout_ms):
                del self._threads[request_id]
        self._on_thread_finished()
