"""Event-loop stalls while the Viewer opens a large DICOM with its CAM on, against CAM off.

    python bench/viewer_cam.py [--run RUN_DIR] [--rounds 5] [--profile]

Opens pydicom-data's RG1_UNCI.dcm (1955 x 1841) in a real ViewerTab (1400 x 900 window,
``QT_QPA_PLATFORM`` offscreen unless set) with a run's model loaded, ``--rounds`` times with
the CAM off (the baseline), then as often with it on (Grad-CAM, the last layer). A 5 ms
QTimer records the time between its ticks from the open until the prediction (and the
CAM) are on screen and 300 ms more: a gap well over 5 ms is the event loop stalled. Prints,
for each case, the worst gap and the 99th percentile in wall time, and the same of the GUI
thread's own CPU time within each gap: on a shared machine the wall time also counts the
time the GUI thread waited for a core (or for the GIL), its CPU time only what it did.
Without ``--run`` a tiny run is trained first (small_cnn, 64 px, one epoch on the demo data).
``--profile`` also prints the GUI thread's most expensive calls with the CAM on.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TICK_MS = 5
SETTLE_S = 0.3
FILE = "RG1_UNCI.dcm"


def tiny_run(base: Path) -> Path:
    from cxr_desktop.core.data import open_dataset
    from cxr_desktop.core.data.demo import make_demo_dataset
    from cxr_desktop.core.train import TrainConfig, fit

    make_demo_dataset(base / "demo", n_images=40, size=96, seed=5)
    config = TrainConfig(dataset=str(base / "demo"), arch="small_cnn", size=64, epochs=1,
                         batch_size=8, freeze_epochs=0, pretrained="none",
                         out=str(base / "run"), cache_dir=str(base / "cache"))
    return Path(fit(config, spec=open_dataset(base / "demo")).run_dir)


class StallMeter:
    """Runs the event loop until ``done()`` and records the gaps between 5 ms ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import QEventLoop, QTimer

        self.loop = QEventLoop()
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[tuple[float, float]] = []  # (wall ms, GUI thread CPU ms)
        self._last = self._last_cpu = 0.0
        self._done = None
        self._done_at: float | None = None

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append(((now - self._last) * 1000.0, (cpu - self._last_cpu) * 1000.0))
        self._last, self._last_cpu = now, cpu
        if self._done_at is None and self._done():
            self._done_at = now
        if self._done_at is not None and now - self._done_at >= SETTLE_S:
            self.loop.quit()

    def run(self, start, done) -> list[tuple[float, float]]:
        self.gaps, self._done, self._done_at = [], done, None
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()
        self.timer.start()
        start()
        self.loop.exec()
        self.timer.stop()
        return self.gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run folder (default: train a tiny one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = Path(tempfile.mkdtemp(prefix="viewer-cam-"))
    os.environ.setdefault("CXR_DESKTOP_DATA", str(scratch / "data"))
    os.environ.setdefault("CXR_DESKTOP_CACHE", str(scratch / "cache"))
    from pydicom.data import get_testdata_file
    from PySide6.QtWidgets import QApplication

    from cxr_desktop.gui.tabs.viewer_tab import ViewerTab
    from cxr_desktop.gui.workers import TaskRunner

    app = QApplication.instance() or QApplication(sys.argv)
    run = Path(args.run) if args.run else tiny_run(scratch)
    runner = TaskRunner()
    viewer = ViewerTab(runner)
    viewer.resize(1400, 900)
    viewer.show()
    panel = viewer.model_panel
    meter = StallMeter()
    meter.run(lambda: panel.load_model(run), lambda: panel.predictor is not None)
    panel.method.setCurrentIndex(panel.method.findData("gradcam"))
    path = get_testdata_file(FILE)

    def on_screen(cam: bool):
        def done() -> bool:
            shown = viewer.radiograph is not None and panel.prediction is not None
            return shown and (not cam or panel.cam_result is not None) and not runner.busy()
        return done

    def one_open(cam: bool) -> list[tuple[float, float]]:
        viewer.canvas.clear()
        panel.clear_prediction()
        panel.show_cam.setChecked(cam)
        meter.run(lambda: None, lambda: not runner.busy())
        return meter.run(lambda: viewer.open_image(path), on_screen(cam))

    one_open(True)  # warm-up: imports, grad-cam hooks, first paint
    print(f"{FILE} in a 1400 x 900 Viewer, {run.name}, {args.rounds} opens each; gaps "
          f"between {TICK_MS} ms ticks (ms); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"{'':<10} {'wall':>17} {'GUI thread CPU':>17}")
    print(f"{'case':<10} {'worst':>8} {'p99':>8} {'worst':>8} {'p99':>8} {'ticks':>7}")
    profiler = cProfile.Profile() if args.profile else None
    for cam in (False, True):
        gaps: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            if cam and profiler:
                profiler.enable()
            gaps += one_open(cam)
            if cam and profiler:
                profiler.disable()
        wall, cpu = np.array(gaps).T
        print(f"{'CAM on' if cam else 'CAM off':<10} {wall.max():>8.1f} "
              f"{np.percentile(wall, 99):>8.1f} {cpu.max():>8.1f} {np.percentile(cpu, 99):>8.1f}"
              f" {len(wall):>7}")
    runner.shutdown()
    viewer.close()
    app.processEvents()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
