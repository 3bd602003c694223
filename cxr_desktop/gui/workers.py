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


class _Task(QObject):
    succeeded = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, request_id: int, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self._id, self._fn, self._args = request_id, fn, args

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(*self._args)
        except CxrError as exc:
            self.failed.emit(self._id, str(exc))
        except Exception as exc:  # shown to the user as one line, logged with its traceback
            log.exception("unexpected error in a background task")
            record_crash(exc, f"background task {getattr(self._fn, '__qualname__', '?')}")
            self.failed.emit(self._id, f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(self._id, result)


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
        thread = QThread(self)
        task = _Task(request_id, fn, args)
        task.moveToThread(thread)
        thread.started.connect(task.run)
        task.succeeded.connect(self._on_succeeded)
        task.failed.connect(self._on_failed)
        task.succeeded.connect(thread.quit)
        task.failed.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._threads[request_id] = (thread, task)
        thread.start()
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
        """Wait for every running task (they are short); used when the window closes."""
        for thread, _task in list(self._threads.values()):
            thread.quit()
            thread.wait(timeout_ms)
        self._on_thread_finished()
