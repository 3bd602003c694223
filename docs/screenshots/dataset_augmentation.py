"""Screenshot of the Dataset tab's augmentation preview at the default settings, on a real
CR chest in the RSNA layout (``tests/core/public_layouts.py``: the real label rows).

Run: ``xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshots/dataset_augmentation.py``.

Opens the folder with the preset the mapping dialog offers (as ``public_datasets.py``
does), selects the first image with a box and shows the preview tab.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from public_datasets import open_with_preset, save, wait_ms, wait_until
from public_layouts import make_rsna
from PySide6.QtWidgets import QApplication

from cxr_desktop.gui.main_window import MainWindow
from cxr_desktop.gui.widgets.thumbnail_grid import PATH_ROLE

SHOT = "dataset-tab-augmentation.png"


def show_preview(window: MainWindow) -> None:
    """Select the first thumbnail whose image carries a box, then the preview tab."""
    tab = window.dataset_tab
    boxed = {Path(item.path).name for item in tab.spec.items if item.shapes}
    grid = tab.thumbnails.list
    wait_until(lambda: grid.count() > 0)
    row = next(r for r in range(grid.count())
               if Path(grid.item(r).data(PATH_ROLE)).name in boxed)
    grid.setCurrentRow(row)
    tab.side_tabs.setCurrentWidget(tab.augment)
    wait_until(lambda: tab.augment.outputs and "as the model is given it"
               in tab.augment.title.text())
    wait_ms(500)


def main() -> int:
    app = QApplication(sys.argv)
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    folder = Path(tempfile.mkdtemp(prefix="cxr-augment-")).resolve() / "rsna"
    folder.mkdir()
    try:
        make_rsna(folder)
        open_with_preset(window, folder, None)
        show_preview(window)
        save(window, SHOT)
        print("saved", SHOT)
    finally:
        window.close()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
