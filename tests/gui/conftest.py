"""GUI tests: offscreen, and no test may leave a QThread running."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication


def running_threads() -> list[QThread]:
    app = QApplication.instance()
    if app is None:
        return []
    threads = []
    for widget in app.topLevelWidgets():
        threads += [t for t in widget.findChildren(QThread) if t.isRunning()]
    return threads


@pytest.fixture(autouse=True)
def no_thread_left_behind(qapp):
    yield
    assert not running_threads(), "a test left a QThread running"


@pytest.fixture
def main_window(qtbot):
    from cxr_desktop.gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.device is not None, timeout=30_000)
    yield window
    window.close()  # waits (without blocking) for any work still running, then closes
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
