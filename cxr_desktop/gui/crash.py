"""Uncaught exceptions: write a scrubbed report to the crash log, tell the user, keep going.

``install_crash_handler(app)`` replaces ``sys.excepthook`` (exceptions raised in slots and
event handlers on the GUI thread reach it through PySide) and ``threading.excepthook``
(Python threads). The report is written on the thread that failed; the dialog is always
made on the GUI thread, reached through a queued signal. The dialog is not modal, and while
one is open further crashes only add to its count, so an exception that repeats (in a
paint handler, say) cannot bury the window under dialogs.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from cxr_desktop.core.crashlog import crash_log_path, record_crash, summary


class CrashHandler(QObject):
    """Lives on the GUI thread; ``crashed`` may be emitted from any thread."""

    crashed = Signal(str, str)  # one-line summary, the crash log's path ("" if unwritten)

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.dialog: QMessageBox | None = None
        self.count = 0
        self._previous_hooks = (sys.excepthook, threading.excepthook)
        self.crashed.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook

    def uninstall(self) -> None:
        """Put back the hooks that were there before ``install``."""
        sys.excepthook, threading.excepthook = self._previous_hooks

    def handle(self, exc: BaseException, where: str) -> None:
        """Write the report, then ask the GUI thread to show it; callable from any thread."""
        log_path = record_crash(exc, where)
        self.crashed.emit(summary(exc), str(log_path) if log_path else "")

    def excepthook(self, exc_type: type[BaseException], exc: BaseException,
                   tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_hooks[0](exc_type, exc, tb)
            return
        if exc.__traceback__ is None:
            exc = exc.with_traceback(tb)
        on_gui_thread = threading.current_thread() is threading.main_thread()
        self.handle(exc, "the GUI thread" if on_gui_thread else "a Qt thread")

    def thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        self.handle(args.exc_value, "a background thread")

    @Slot(str, str)
    def _show(self, what: str, log_path: str) -> None:
        where = (f"The details, without patient data, are in {log_path}" if log_path
                 else f"The crash log {crash_log_path()} could not be written.")
        if self.dialog is not None and self.dialog.isVisible():
            self.count += 1
            self.dialog.setInformativeText(
                f"{self.count} unexpected errors so far; the latest:\n{what}\n\n{where}")
            return
        self.count = 1
        if self.dialog is None:
            self.dialog = self._make_dialog()
        self.dialog.setInformativeText(f"{what}\n\n{where}")
        self.dialog.show()

    def _make_dialog(self) -> QMessageBox:
        # One dialog, hidden when closed and shown again for the next crash. It is never
        # released inside one of its own signals: dropping the last reference to a widget
        # while it emits crashes PySide.
        dialog = QMessageBox(QMessageBox.Icon.Critical, "Unexpected error",
                             "Something went wrong, but the app is still running. "
                             "Save your work if you can.",
                             QMessageBox.StandardButton.Ok, QApplication.activeWindow())
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.destroyed.connect(self._forget_dialog)  # its parent window was deleted
        return dialog

    @Slot()
    def _forget_dialog(self) -> None:
        self.dialog = None


def install_crash_handler(app: QApplication) -> CrashHandler:
    """Route uncaught exceptions of the GUI and of Python threads to the crash log and a dialog."""
    handler = CrashHandler(app)
    handler.install()
    return handler
