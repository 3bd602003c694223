"""Screenshots of the Training tab during a run, the Evaluate page and the Viewer with CAM.

Run: ``xvfb-run -a -s "-screen 0 1400x900x24" python docs/screenshots/take_screenshots.py``.

Uses a throw-away data folder: makes the demo dataset, trains efficientnet-lite0 (ImageNet
weights from the efficientnet-lite0 package) from the Training tab, grabs the live curves,
evaluates the run on its test split, then opens a test image in the Viewer with the run's
model, its CAM and the dataset's annotations of the image. Waits by running the event loop (never
QTest.qWait, which sleeps holding the GIL, nor a processEvents loop: PySide6 6.12 leaks a
reference to None per Python-level processEvents call).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["CXR_DESKTOP_DATA"] = tempfile.mkdtemp(prefix="cxr-shot-")
os.environ["CXR_DESKTOP_CACHE"] = tempfile.mkdtemp(prefix="cxr-shot-cache-")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication


def wait_ms(ms: int) -> None:
    """Run the event loop for ``ms``: unlike QTest.qWait, which sleeps holding the GIL
    (PySide6 6.12) and starves the worker threads, an event loop releases it."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()  # noqa: E402

from cxr_desktop.core.annotations.objectcxr import read_objectcxr_csv  # noqa: E402
from cxr_desktop.gui.main_window import MainWindow  # noqa: E402

HERE = Path(__file__).parent


def wait_until(condition, timeout_s: float = 1500.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the GUI did not get there in time")
        wait_ms(100)


def main() -> int:
    app = QApplication(sys.argv)
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    try:
        take(window)
    finally:
        window.close()  # stops a training still running, waits for every worker
    del app
    return 0


def take(window: MainWindow) -> None:
    window.open_demo()
    wait_until(lambda: window.dataset_tab.spec is not None and not window.runner.busy())
    spec = window.dataset_tab.spec
    training = window.training_tab
    window.tabs.setCurrentWidget(training)
    training.arch.setCurrentIndex(training.arch.findData("efficientnet_lite0"))
    training.size.setValue(96)
    training.epochs.setValue(6)  # batch size, LR and frozen epochs left at auto
    training.start_button.click()
    wait_until(lambda: len(training.plots.epoch_x) >= 3)
    wait_ms(300)
    window.grab().save(str(HERE / "training-tab.png"))
    wait_until(lambda: not training.engine.is_running())
    run_dir = training.history.records[0].run_dir
    evaluation = training.evaluation
    training.pages.setCurrentWidget(evaluation)
    evaluation.refresh_runs()
    evaluation.set_checked_runs([run_dir])
    evaluation.evaluate()
    wait_until(lambda: not evaluation.runner.busy())
    wait_ms(500)
    window.grab().save(str(HERE / "evaluation.png"))
    # The Viewer: a positive test image with its annotations, the prediction and the CAM.
    rows = read_objectcxr_csv(spec.root / "test.csv")
    name = next(n for n, shapes in rows.items() if len(shapes) == 2)
    viewer = window.viewer_tab
    window.open_with_model(str(spec.root / "test" / name), run_dir)
    wait_until(lambda: viewer.model_panel.cam_result is not None and not window.runner.busy())
    # The dataset's own boxes are shown for an image of the open dataset.
    assert len(viewer.annotations.document.shapes) == len(rows[name])
    viewer.canvas.fit()
    wait_ms(500)
    window.grab().save(str(HERE / "viewer-cam.png"))
    print("saved", *(p.name for p in sorted(HERE.glob("*.png"))))


if __name__ == "__main__":
    sys.exit(main())
