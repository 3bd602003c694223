"""Why Qt would not open a window, said in one line before it aborts.

Qt loads its platform plugin when the application object is made; when the plugin's system
libraries are missing (``libxcb-cursor0`` on a fresh Ubuntu 22.04 or Debian desktop) it
prints a paragraph and aborts the process, which Python cannot catch. So before that, on
Linux under X11, the xcb plugin's libraries are looked up with ``ldd`` and the missing ones
named with the Debian/Ubuntu packages that hold them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def package_of(library: str) -> str:
    """The Debian/Ubuntu package of a shared library: ``libxcb-cursor.so.0`` ->
    ``libxcb-cursor0``, ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``."""
    match = re.match(r"^(lib[\w.+-]*?)\.so\.(\d+)", library)
    if not match:
        return library
    name, version = match[1].lower(), match[2]
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def missing_libraries(plugin: Path) -> list[str]:
    """The libraries ``ldd`` cannot find for ``plugin`` (none when ldd is not there)."""
    ldd = shutil.which("ldd")
    if ldd is None or not plugin.is_file():
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(out)))


def _xcb_plugin() -> Path | None:
    import PySide6

    base = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms"
    plugin = base / "libqxcb.so"
    return plugin if plugin.is_file() else None


def platform_problem(environ: Mapping[str, str] | None = None,
                     platform: str | None = None) -> str | None:
    """One line on why Qt could not open a window here, or None."""
    environ = os.environ if environ is None else environ
    if (platform or sys.platform) != "linux":
        return None
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None
    if not chosen and environ.get("WAYLAND_DISPLAY"):
        return None
    if not environ.get("DISPLAY"):
        return ("no display to open a window on (DISPLAY is not set): start the app in a "
                "desktop session, or use the command line (cxr-desktop --help)")
    plugin = _xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if not missing:
        return None
    packages = " ".join(sorted({package_of(lib) for lib in missing}))
    return (f"Qt cannot open a window: the system libraries {', '.join(missing)} are "
            f"missing; install them (Debian/Ubuntu: sudo apt install {packages}) and start "
            "again")
