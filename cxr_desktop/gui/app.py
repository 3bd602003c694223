"""Start the desktop app."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from cxr_desktop import __version__
from cxr_desktop.core.paths import resources_dir
from cxr_desktop.gui.crash import install_crash_handler
from cxr_desktop.gui.dialogs.preferences import apply_preferences


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("cxr-desktop")
    app.setOrganizationName("cxr-desktop")
    app.setApplicationVersion(__version__)
    icon = resources_dir() / "icons" / "cxr-desktop.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def run_gui(demo: bool = False, open_paths: Sequence[str] = ()) -> int:
    import pyqtgraph as pg

    from cxr_desktop.gui.platform_check import platform_problem

    problem = platform_problem()
    if problem:  # said before Qt aborts the process with a paragraph
        print(f"cxr-desktop: {problem}", file=sys.stderr)
        return 1
    apply_preferences()  # the saved folders, before anything reads one
    app = create_app()
    install_crash_handler(app)
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    from cxr_desktop.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    if demo:
        window.open_demo()
    for path in open_paths:
        window.open_image(path)
    return app.exec()
