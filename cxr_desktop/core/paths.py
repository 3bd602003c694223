"""Where the app keeps data, runs, caches and its bundled resources."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "cxr-desktop"
APP_AUTHOR = "cxr-desktop"


def _override(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Datasets, run folders and the run registry (``CXR_DESKTOP_DATA`` overrides)."""
    return _override("CXR_DESKTOP_DATA") or Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def runs_dir() -> Path:
    return data_dir() / "runs"


def demo_dir() -> Path:
    return data_dir() / "demo"


def cache_dir() -> Path:
    """Preprocessed image caches (``CXR_DESKTOP_CACHE`` overrides)."""
    return _override("CXR_DESKTOP_CACHE") or Path(
        platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)
    )


def log_dir() -> Path:
    return data_dir() / "logs"


def resources_dir() -> Path:
    """``resources/`` beside the package, or inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"
