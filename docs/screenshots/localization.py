"""Screenshots of issue #13's GUI: the Evaluate page's localization panel with the misses
gallery, and the Viewer with a miss's CAM and where its peak falls against the annotation.

Run: ``xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshots/localization.py``
(``--size 1024x700`` writes ``*-1024.png`` beside them, to check the smaller layout;
``--run RUN`` with ``CXR_DESKTOP_DATA`` set to the data folder the run was trained with
reuses it).

Uses a throw-away data folder: makes the demo dataset, trains small_cnn at 128 px for four
epochs, evaluates the run on its test split (the localization panel fills in by itself),
then clicks the first miss, which opens it in the Viewer with the run's model, its CAM and
the annotations of the run's dataset (not opened in the Dataset tab). Waits by running the
event loop, as ``take_screenshots.py`` does.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CXR_DESKTOP_DATA", tempfile.mkdtemp(prefix="cxr-shot-"))
os.environ.setdefault("CXR_DESKTOP_CACHE", tempfile.mkdtemp(prefix="cxr-shot-cache-"))

from PIL import Image  # noqa: E402
from PySide6.QtCore import QBuffer, QEventLoop, QIODevice, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from cxr_desktop.core.data import open_dataset  # noqa: E402
from cxr_desktop.core.data.demo import make_demo_dataset  # noqa: E402
from cxr_desktop.core.train import TrainConfig, fit  # noqa: E402
from cxr_desktop.gui.main_window import MainWindow  # noqa: E402

HERE = Path(__file__).parent
COLOURS = 160  # the turbo overlay and the grays: a PNG under 300 KB


def wait_ms(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(condition, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the GUI did not get there in time")
        wait_ms(100)


def save(widget: QWidget, path: Path) -> None:
    """``widget`` as a PNG of ``COLOURS`` colours."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    widget.grab().save(buffer, "PNG")
    image = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    palette = image.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(path, optimize=True)


def train(base: Path) -> Path:
    make_demo_dataset(base / "demo")
    config = TrainConfig(dataset=str(base / "demo"), arch="small_cnn", size=128, epochs=4,
                         pretrained="none", out=str(base / "run"))
    return Path(fit(config, spec=open_dataset(base / "demo")).run_dir)


def take(window: MainWindow, run: Path, suffix: str) -> None:
    wait_until(lambda: window.device is not None)  # as the tests do: the probe first
    training = window.training_tab
    evaluation = training.evaluation
    window.tabs.setCurrentWidget(training)
    training.pages.setCurrentWidget(evaluation)
    evaluation.refresh_runs()
    evaluation.set_checked_runs([str(run)])
    evaluation.evaluate()
    panel = evaluation.localization
    wait_until(lambda: panel.outcome is not None and not evaluation.runner.busy())
    evaluation.images.setCurrentIndex(1)
    wait_ms(500)
    save(window, HERE / f"evaluate-localization{suffix}.png")
    viewer = window.viewer_tab
    viewer.model_panel.cam_result = None
    panel.gallery.itemClicked.emit(panel.gallery.item(0))
    wait_until(lambda: viewer.model_panel.cam_result is not None and not window.runner.busy())
    wait_ms(500)
    save(window, HERE / f"viewer-cam-peak{suffix}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1400x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--run", help="a run trained on the demo data (default: train one)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    run = Path(args.run) if args.run else train(Path(tempfile.mkdtemp(prefix="cxr-loc-")))
    app = QApplication(sys.argv)
    window = MainWindow()
    window.resize(width, height)
    window.show()
    try:
        take(window, run, "" if args.size == "1400x900" else f"-{width}")
    finally:
        window.close()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
