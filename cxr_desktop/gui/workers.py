"""Run core functions off the GUI thread; results come back as signals.

Each call runs in its own QThread through a QObject worker. Requests share a *channel*
("load image", "predict", ...): when a newer request on a channel finishes first, or an
older one finishes late, only the newest result is delivered (the newest request wins).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cxr_desktop.core.crashlog import record_crash
from cxr_desktop.core.errors import CxrError

log = logging.getLogger(__name__)


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
