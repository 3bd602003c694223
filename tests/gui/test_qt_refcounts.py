"""Guard against PySide6 releases that corrupt Python's reference counts.

PySide6 6.12.0 freed True/False after ~1000 ``Signal.emit`` calls (and None through
``processEvents``), which crashed the app and the test suite at random places; pyproject.toml
keeps it out. This test fails loudly if an allowed release does it again.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def _counts() -> tuple[int, int]:
    return sys.getrefcount(None), sys.getrefcount(True) + sys.getrefcount(False)


def _noop(value: object) -> None:
    return None


def test_signals_and_event_processing_keep_reference_counts(qapp):
    emitter = _Emitter()
    emitter.fired.connect(_noop)
    before = _counts()
    for index in range(500):
        emitter.fired.emit(index)
        qapp.processEvents()
    none_after, bools_after = _counts()
    assert abs(none_after - before[0]) < 50
    assert abs(bools_after - before[1]) < 50
