"""Shared test setup: offscreen Qt, no network, isolated app folders."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
warnings.filterwarnings("ignore", message=".*End of file reached before delimiter.*")


@pytest.fixture(autouse=True)
def _isolated_app_dirs(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs, caches and settings of a test never touch the user's real folders."""
    base = tmp_path_factory.mktemp("appdirs")
    monkeypatch.setenv("CXR_DESKTOP_DATA", str(base / "data"))
    monkeypatch.setenv("CXR_DESKTOP_CACHE", str(base / "cache"))


@pytest.fixture(scope="session")
def testdata() -> Callable[[str], Path]:
    """``testdata("RG1_UNCI.dcm")``: the path of a real file from pydicom-data."""
    from pydicom.data import get_testdata_file

    def find(name: str) -> Path:
        path = get_testdata_file(name)
        assert path, f"{name} not found: is pydicom-data installed?"
        return Path(path)

    return find
