"""Where the app keeps data, runs, caches and its bundled resources."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "cxr-desktop"
APP_AUTHOR = "cxr-desktop"


#: Folders chosen in the app's preferences (``set_overrides``); the environment wins.
_chosen: dict[str, Path] = {}


def _override(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else None


def set_overrides(data: str | Path | None = None, cache: str | Path | None = None) -> None:
    """Use these folders for data and caches unless ``CXR_DESKTOP_DATA``/``_CACHE`` are set.

    The GUI calls this at start, before anything reads a folder, with the folders saved in
    its preferences; a change therefore takes effect at the next start. None (or "") means
    the platform default.
    """
    _chosen.clear()
    _chosen.update({key: Path(value).expanduser()
                    for key, value in (("data", data), ("cache", cache)) if value})


def settings_dir() -> Path:
    """Where ``settings.ini`` lives: the data folder as it is before any preference, so the
    settings can point to a data folder moved elsewhere (``CXR_DESKTOP_DATA`` overrides)."""
    return _override("CXR_DESKTOP_DATA") or Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def data_dir() -> Path:
    """Datasets, run folders and the run registry (``CXR_DESKTOP_DATA`` overrides)."""
    return (_override("CXR_DESKTOP_DATA") or _chosen.get("data")
            or Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)))


def runs_dir() -> Path:
    return data_dir() / "runs"


def demo_dir() -> Path:
    return data_dir() / "demo"


def cache_dir() -> Path:
    """Preprocessed image caches (``CXR_DESKTOP_CACHE`` overrides)."""
    return (_override("CXR_DESKTOP_CACHE") or _chosen.get("cache")
            or Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)))


def log_dir() -> Path:
    return data_dir() / "logs"


def resources_dir() -> Path:
    """``resources/`` beside the package, or inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"
