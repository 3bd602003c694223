"""QSettings in an INI file inside the app's data folder (isolated by CXR_DESKTOP_DATA)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from cxr_desktop.core.paths import settings_dir

MAX_RECENT = 10


def app_settings() -> QSettings:
    return QSettings(str(settings_dir() / "settings.ini"), QSettings.Format.IniFormat)


def recent_files(kind: str) -> list[str]:
    value = app_settings().value(f"recent/{kind}", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value or []]


def remember_recent(kind: str, path: str) -> list[str]:
    items = [path] + [p for p in recent_files(kind) if p != path]
    app_settings().setValue(f"recent/{kind}", items[:MAX_RECENT])
    return items[:MAX_RECENT]
