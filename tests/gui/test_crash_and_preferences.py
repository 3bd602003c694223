"""Crash safety (log + dialog, the app keeps running) and the preferences dialog."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import platformdirs
import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from cxr_desktop.core import paths
from cxr_desktop.gui.crash import install_crash_handler
from cxr_desktop.gui.dialogs.preferences import (
    Preferences,
    PreferencesDialog,
    apply_preferences,
    load_preferences,
)
from cxr_desktop.gui.engine_worker import EngineRunner
from cxr_desktop.gui.workers import TaskRunner

PATIENT_FILE = "/data/Doe Jane 0099887766/chest.dcm"


def _crash_log() -> str:
    return (paths.log_dir() / "crash.log").read_text(encoding="utf-8")


def _fail_with_phi() -> None:
    raise RuntimeError(f"{PATIENT_FILE}: broken for Doe^Jane")


def _assert_no_phi(text: str) -> None:
    for word in ("Doe", "Jane", "0099887766"):
        assert word not in text


@pytest.fixture
def crash_handler(qapp, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    handler = install_crash_handler(qapp)
    yield handler
    handler.uninstall()
    if handler.dialog is not None:
        handler.dialog.close()
        handler.dialog.deleteLater()
    handler.deleteLater()


def _message_boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_gui_slot_is_logged_and_shown_and_the_app_goes_on(
        qtbot, main_window, crash_handler) -> None:
    QTimer.singleShot(0, _fail_with_phi)
    qtbot.waitUntil(lambda: crash_handler.dialog is not None
                    and crash_handler.dialog.isVisible(), timeout=5_000)
    log = _crash_log()
    assert "uncaught RuntimeError in the GUI thread" in log
    assert "in _fail_with_phi" in log
    _assert_no_phi(log)
    dialog = crash_handler.dialog
    assert str(paths.log_dir() / "crash.log") in dialog.informativeText()
    assert "RuntimeError: <file:" in dialog.informativeText()
    _assert_no_phi(dialog.informativeText())
    assert QApplication.activeModalWidget() is None  # the dialog does not block the window

    # The window still works, and a second crash updates the dialog instead of adding one.
    main_window.tabs.setCurrentWidget(main_window.viewer_tab)
    main_window.show_status("still alive")
    assert main_window.statusBar().currentMessage() == "still alive"
    QTimer.singleShot(0, _fail_with_phi)
    qtbot.waitUntil(lambda: crash_handler.count == 2, timeout=5_000)
    assert _message_boxes() == [dialog]
    assert _crash_log().count("uncaught RuntimeError") == 2


def test_an_exception_in_a_python_thread_is_shown_by_the_gui_thread(qtbot,
                                                                      crash_handler) -> None:
    thread = threading.Thread(target=_fail_with_phi)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: crash_handler.dialog is not None, timeout=5_000)
    assert crash_handler.dialog.thread() is QApplication.instance().thread()
    assert "uncaught RuntimeError in a background thread" in _crash_log()
    _assert_no_phi(_crash_log())


def test_an_unexpected_error_in_a_worker_task_is_logged_and_reported(qtbot) -> None:
    runner = TaskRunner()
    messages: list[str] = []
    runner.submit("test", _fail_with_phi, done=messages.append, failed=messages.append)
    qtbot.waitUntil(lambda: bool(messages), timeout=5_000)
    runner.shutdown()
    assert messages[0].startswith("unexpected error: RuntimeError: ")  # unchanged behaviour
    log = _crash_log()
    assert "uncaught RuntimeError in background task _fail_with_phi" in log
    _assert_no_phi(log)


def _failing_job(on_event, should_stop) -> None:
    _fail_with_phi()


def test_an_unexpected_error_in_the_training_worker_is_logged(qtbot) -> None:
    engine = EngineRunner()
    with qtbot.waitSignal(engine.failed, timeout=5_000) as failed:
        engine.start(_failing_job)
    qtbot.waitUntil(lambda: not engine.is_running(), timeout=5_000)
    assert failed.args[0].startswith("unexpected error: RuntimeError")
    assert "uncaught RuntimeError in the training worker" in _crash_log()


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """No environment overrides; the platform folders are temporary ones."""
    monkeypatch.delenv("CXR_DESKTOP_DATA", raising=False)
    monkeypatch.delenv("CXR_DESKTOP_CACHE", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "home"))
    monkeypatch.setattr(platformdirs, "user_cache_dir",
                        lambda *a, **k: str(tmp_path / "home-cache"))
    yield tmp_path
    paths.set_overrides()


def test_preferences_are_saved_in_qsettings_and_used_at_the_next_start(qtbot, fresh_home,
                                                                       monkeypatch) -> None:
    dialog = PreferencesDialog()
    qtbot.addWidget(dialog)
    assert dialog.preferences() == Preferences()
    dialog.data_field.edit.setText(str(fresh_home / "my data"))
    dialog.cache_field.edit.setText(str(fresh_home / "my cache"))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.cache_threads.setValue(3)
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert (fresh_home / "my data").is_dir() and (fresh_home / "my cache").is_dir()

    ini = QSettings(str(fresh_home / "home" / "settings.ini"), QSettings.Format.IniFormat)
    assert ini.value("paths/data") == str(fresh_home / "my data")
    assert ini.value("paths/cache") == str(fresh_home / "my cache")
    assert load_preferences() == Preferences(str(fresh_home / "my data"),
                                             str(fresh_home / "my cache"), "cpu", 3)

    assert paths.data_dir() == fresh_home / "home"  # nothing changes before a restart
    apply_preferences()  # what run_gui does at start
    assert paths.data_dir() == fresh_home / "my data"
    assert paths.runs_dir() == fresh_home / "my data" / "runs"
    assert paths.log_dir() == fresh_home / "my data" / "logs"
    assert paths.cache_dir() == fresh_home / "my cache"
    assert paths.settings_dir() == fresh_home / "home"  # the settings stay where they were
    monkeypatch.setenv("CXR_DESKTOP_DATA", str(fresh_home / "env"))
    assert paths.data_dir() == fresh_home / "env"  # the environment still wins


def test_preferences_refuse_a_folder_they_cannot_use(qtbot, fresh_home, monkeypatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text: warnings.append(text))
    dialog = PreferencesDialog()
    qtbot.addWidget(dialog)
    dialog.data_field.edit.setText("relative/folder")
    dialog.accept()
    assert warnings == ["relative/folder: give a full path"]
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert load_preferences() == Preferences()


def test_the_file_menu_opens_the_preferences(qtbot, main_window) -> None:
    actions = [a for a in main_window.menuBar().actions()[0].menu().actions()
               if a.text() == "&Preferences..."]
    assert len(actions) == 1
    actions[0].trigger()
    qtbot.waitUntil(lambda: main_window.findChild(PreferencesDialog) is not None
                    and main_window.findChild(PreferencesDialog).isVisible(), timeout=5_000)
    dialog = main_window.findChild(PreferencesDialog)
    assert Path(dialog.data_field.note.text().splitlines()[0].removeprefix("In use now: ")) \
        == paths.data_dir()
    dialog.reject()
