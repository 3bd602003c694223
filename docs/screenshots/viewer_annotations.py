"""Screenshot of the Viewer with a few annotations.

Run: ``xvfb-run -a python docs/screenshots/viewer_annotations.py``.

Opens pydicom-data's RG1_UNCI.dcm in the main window, draws through the annotation
document API (image pixel coordinates), and saves ``window.grab()`` beside this script.
Uses a throw-away data folder, so the user's settings and annotations are not touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ["CXR_DESKTOP_DATA"] = tempfile.mkdtemp(prefix="cxr-shot-")

from pydicom.data import get_testdata_file  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from cxr_desktop.core.annotations import Shape  # noqa: E402
from cxr_desktop.gui.main_window import MainWindow  # noqa: E402

OUT = Path(__file__).with_name("viewer-annotations.png")


def main() -> int:
    app = QApplication(sys.argv)
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    window.open_image(get_testdata_file("RG1_UNCI.dcm"))
    while window.viewer_tab.radiograph is None or window.runner.busy():
        app.processEvents()
    viewer = window.viewer_tab
    panel = viewer.annotations
    panel.set_labels(["nodule", "effusion", "chest drain", "marker"])
    doc = panel.document
    doc.add(Shape("nodule", "rectangle", ((1180, 520), (1420, 760))))
    doc.add(Shape("effusion", "ellipse", ((260, 1250), (760, 1650))))
    doc.add(Shape("chest drain", "polygon",
                  ((980, 1150), (1300, 1080), (1500, 1400), (1200, 1600), (1000, 1450))))
    doc.add(Shape("chest drain", "freehand",
                  ((300, 500), (380, 620), (430, 800), (470, 1000), (520, 1150))))
    doc.add(Shape("marker", "arrow", ((1700, 330), (1480, 480))))
    doc.add(Shape("marker", "text", ((1150, 120),), "lead marker?"))
    panel.set_tool("select")
    doc.select(0)
    viewer.side_tabs.setCurrentWidget(panel)
    for _ in range(20):
        app.processEvents()
    window.grab().save(str(OUT))
    print(OUT)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
