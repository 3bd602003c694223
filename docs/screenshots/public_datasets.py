"""Screenshots of public datasets opened as published: the mapping dialog on the SIIM
preset, and the Dataset tab on RSNA (boxes) and SIIM (run-length masks as polygons); the
augmentation preview at its defaults on an RSNA chest with boxes; and the mapping dialog on
a CSV of no known layout, mapped by hand.

Run: ``xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshots/public_datasets.py``.

The folders are made in a throw-away place by ``tests/core/public_layouts.py`` (the real
label rows, images made from a real CR chest). Waits by running the event loop, as
``take_screenshots.py`` does.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["CXR_DESKTOP_DATA"] = tempfile.mkdtemp(prefix="cxr-shot-")
os.environ["CXR_DESKTOP_CACHE"] = tempfile.mkdtemp(prefix="cxr-shot-cache-")

HERE = Path(__file__).parent
COLOURS = 128  # grays enough for the radiographs, a PNG under 300 KB
sys.path.insert(0, str(HERE.parents[1] / "tests" / "core"))

from PIL import Image  # noqa: E402
from public_layouts import chest_pixels, make_rsna, make_siim  # noqa: E402
from PySide6.QtCore import QBuffer, QEventLoop, QIODevice, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from cxr_desktop.gui.main_window import MainWindow  # noqa: E402
from cxr_desktop.gui.widgets.thumbnail_grid import PATH_ROLE  # noqa: E402


def wait_ms(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the GUI did not get there in time")
        wait_ms(100)


def save(widget: QWidget, name: str) -> None:
    """``widget`` as a PNG of ``COLOURS`` colours."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    widget.grab().save(buffer, "PNG")
    image = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    palette = image.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(HERE / name, optimize=True)


def open_with_preset(window: MainWindow, folder: Path, dialog_png: str | None) -> None:
    """Open ``folder``, accept the preset the mapping dialog offers, wait for the checks
    and the thumbnails."""
    tab = window.dataset_tab
    tab.open_dataset(folder)
    wait_until(lambda: tab.mapping_dialog is not None
               and tab.mapping_dialog.path.parent == folder)
    dialog = tab.mapping_dialog
    wait_until(lambda: not dialog.busy() and dialog.spec is not None)
    if dialog_png:
        wait_ms(300)
        save(dialog, dialog_png)
    dialog.accept()
    wait_until(lambda: tab.report is not None and tab.spec is not None
               and tab.spec.root == folder and not window.runner.busy()
               and not tab.thumbnails.loading)
    wait_ms(500)


def show_augmentation(window: MainWindow) -> None:
    """Select the first thumbnail whose image carries a box, then the preview tab."""
    tab = window.dataset_tab
    boxed = {Path(item.path).name for item in tab.spec.items if item.shapes}
    grid = tab.thumbnails.list
    row = next(r for r in range(grid.count())
               if Path(grid.item(r).data(PATH_ROLE)).name in boxed)
    grid.setCurrentRow(row)
    tab.side_tabs.setCurrentWidget(tab.augment)
    wait_until(lambda: tab.augment.outputs and "as the model is given it"
               in tab.augment.title.text())
    wait_ms(500)


def map_by_hand(window: MainWindow, folder: Path) -> None:
    """A table of no known layout: its columns ticked in the dialog, previewed, shown."""
    (folder / "imgs").mkdir(parents=True)
    lines = ["file,view,pid,finding_count,age"]
    for i in range(30):
        Image.fromarray(chest_pixels(600 + i, 256)).save(folder / "imgs" / f"im{i:02d}.png")
        lines.append(f"imgs/im{i:02d}.png,{'AP' if i % 3 == 0 else 'PA'},p{i // 2},{i % 4},"
                     f"{30 + i}")
    (folder / "table.csv").write_text("\n".join(lines) + "\n")
    tab = window.dataset_tab
    tab.open_dataset(folder / "table.csv")
    wait_until(lambda: tab.mapping_dialog is not None
               and tab.mapping_dialog.path.parent == folder)
    form = tab.mapping_dialog.form
    form.set_labels(["finding_count"])
    form.binarize_check.setChecked(True)
    form.patient_combo.setCurrentText("pid")
    form.filters_edit.setPlainText("view == PA")
    wait_until(lambda: not tab.mapping_dialog.busy() and tab.mapping_dialog.spec is not None)
    wait_ms(300)
    save(tab.mapping_dialog, "dataset-csv-mapping.png")
    tab.mapping_dialog.reject()


def main() -> int:
    app = QApplication(sys.argv)
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    root = Path(tempfile.mkdtemp(prefix="cxr-public-")).resolve()
    try:
        for name, make, dialog_png, shot in (
                ("siim", make_siim, "mapping-preset.png", "dataset-siim-masks.png"),
                ("rsna", make_rsna, None, "dataset-rsna-boxes.png")):
            folder = root / name
            folder.mkdir()
            make(folder)
            open_with_preset(window, folder, dialog_png)
            save(window, shot)
            print("saved", shot, "and", dialog_png or "no dialog")
        show_augmentation(window)
        save(window, "dataset-tab-augmentation.png")
        print("saved dataset-tab-augmentation.png")
        map_by_hand(window, root / "generic")
        print("saved dataset-csv-mapping.png")
    finally:
        window.close()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
