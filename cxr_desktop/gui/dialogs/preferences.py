"""Preferences: the data and cache folders, the default compute device, cache threads.

Stored in the app's QSettings (``settings.ini``, which stays in the standard data folder so
that it can point to a data folder moved elsewhere). ``apply_preferences`` runs once at
start, before anything reads a folder; a changed folder therefore takes effect at the next
start. ``CXR_DESKTOP_DATA`` and ``CXR_DESKTOP_CACHE`` still win over the saved folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core import paths
from cxr_desktop.gui.settings import app_settings

DEVICE_CHOICES = (("auto", "Automatic (the GPU when there is one)"), ("cpu", "CPU"),
                  ("cuda", "CUDA GPU"))
MAX_CACHE_THREADS = 64
_KEYS = {"data_dir": "paths/data", "cache_dir": "paths/cache", "device": "compute/device",
         "cache_threads": "compute/cache_threads"}
_ENV = {"data_dir": "CXR_DESKTOP_DATA", "cache_dir": "CXR_DESKTOP_CACHE"}


@dataclass(frozen=True)
class Preferences:
    """``""`` for a folder means the platform default; ``cache_threads`` 0 means automatic."""

    data_dir: str = ""
    cache_dir: str = ""
    device: str = "auto"
    cache_threads: int = 0


def load_preferences(settings: QSettings | None = None) -> Preferences:
    settings = settings or app_settings()
    default = Preferences()
    device = str(settings.value(_KEYS["device"], default.device))
    try:
        threads = int(settings.value(_KEYS["cache_threads"], default.cache_threads))
    except (TypeError, ValueError):
        threads = default.cache_threads
    return Preferences(
        data_dir=str(settings.value(_KEYS["data_dir"], "") or ""),
        cache_dir=str(settings.value(_KEYS["cache_dir"], "") or ""),
        device=device if device in dict(DEVICE_CHOICES) else default.device,
        cache_threads=min(max(threads, 0), MAX_CACHE_THREADS),
    )


def save_preferences(preferences: Preferences, settings: QSettings | None = None) -> None:
    settings = settings or app_settings()
    for field, key in _KEYS.items():
        settings.setValue(key, getattr(preferences, field))
    settings.sync()


def apply_preferences() -> Preferences:
    """Point the core's folders to the saved ones; call at start, before any folder is read."""
    preferences = load_preferences()
    paths.set_overrides(data=preferences.data_dir or None,
                        cache=preferences.cache_dir or None)
    return preferences


def _writable_folder_problem(folder: str) -> str | None:
    """Why ``folder`` cannot hold the app's files, or None when it can (it is created)."""
    path = Path(folder).expanduser()
    if not path.is_absolute():
        return f"{folder}: give a full path"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{folder}: cannot be created ({exc.strerror or exc})"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{folder}: not writable"
    return None


class _FolderField(QWidget):
    """A line edit with a Browse button; empty means the platform default."""

    def __init__(self, value: str, in_use: Path, env_var: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(value)
        self.edit.setPlaceholderText("platform default")
        self.edit.setClearButtonEnabled(True)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        note = f"In use now: {in_use}"
        if os.environ.get(env_var):
            note += f"\n{env_var} is set: it takes precedence over this choice."
        self.note = QLabel(note)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note)

    def value(self) -> str:
        return self.edit.text().strip()

    @Slot()
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", self.value())
        if folder:
            self.edit.setText(folder)


class PreferencesDialog(QDialog):
    """Edits the saved preferences; OK checks the folders, then saves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(560)
        current = load_preferences()
        self.data_field = _FolderField(current.data_dir, paths.data_dir(), _ENV["data_dir"],
                                       self)
        self.cache_field = _FolderField(current.cache_dir, paths.cache_dir(),
                                        _ENV["cache_dir"], self)
        self.device = QComboBox()
        for value, label in DEVICE_CHOICES:
            self.device.addItem(label, value)
        self.device.setCurrentIndex(self.device.findData(current.device))
        self.cache_threads = QSpinBox()
        self.cache_threads.setRange(0, MAX_CACHE_THREADS)
        self.cache_threads.setSpecialValueText("Automatic (one per core, at most 8)")
        self.cache_threads.setValue(current.cache_threads)
        form = QFormLayout()
        form.addRow("Data folder (datasets, runs, annotations, logs):", self.data_field)
        form.addRow("Cache folder (preprocessed images):", self.cache_field)
        form.addRow("Default device:", self.device)
        form.addRow("Threads building image caches:", self.cache_threads)
        restart = QLabel("A changed folder is used from the next start. Nothing is moved: "
                         "copy existing runs over yourself if you want them there.")
        restart.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(restart)
        layout.addWidget(buttons)

    def preferences(self) -> Preferences:
        """What the form says now."""
        return Preferences(data_dir=self.data_field.value(), cache_dir=self.cache_field.value(),
                           device=str(self.device.currentData()),
                           cache_threads=self.cache_threads.value())

    def accept(self) -> None:
        chosen = self.preferences()
        for folder in (chosen.data_dir, chosen.cache_dir):
            problem = _writable_folder_problem(folder) if folder else None
            if problem:
                QMessageBox.warning(self, "Preferences", problem)
                return
        save_preferences(chosen)
        super().accept()
