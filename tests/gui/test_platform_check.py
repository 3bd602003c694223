"""A desktop without Qt's system libraries gets one line naming the packages to install."""

from __future__ import annotations

import subprocess

import pytest

from cxr_desktop.gui import platform_check
from cxr_desktop.gui.platform_check import package_of, platform_problem

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /opt/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
"""


@pytest.mark.parametrize(("library", "package"), [
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"), ("libEGL.so.1", "libegl1"),
    ("libdbus-1.so.3", "libdbus-1-3"), ("libxcb-render-util.so.0", "libxcb-render-util0")])
def test_packages_of_libraries(library, package):
    assert package_of(library) == package


def test_missing_xcb_libraries_are_named_with_their_packages(monkeypatch, tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    monkeypatch.setattr(platform_check, "_xcb_plugin", lambda: plugin)
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: "/usr/bin/ldd")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, LDD_OUTPUT, ""))
    problem = platform_problem({"DISPLAY": ":0"}, "linux")
    assert problem == ("Qt cannot open a window: the system libraries libxcb-cursor.so.0, "
                       "libxkbcommon-x11.so.0 are missing; install them (Debian/Ubuntu: sudo "
                       "apt install libxcb-cursor0 libxkbcommon-x11-0) and start again")
    # another platform asked for, Wayland, Windows: Qt's own choice, not checked
    assert platform_problem({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert platform_problem({}, "win32") is None
    assert "DISPLAY is not set" in platform_problem({}, "linux")

