"""A training run from the Training tab against the same run from the CLI: event-loop stalls
of the GUI, and the wall time of each.

    python bench/gui.py [--images 160 --size 160 --epochs 2 --arch efficientnet_lite0
                         --rounds 1 --profile]

The dataset is ``bench/recipe_data.py``'s foreign-object chest set (real CR chest of
pydicom-data, ``--images`` training images, validation and test half of it each). Each
round trains it twice with the same settings (``--arch``, ``--size``, ``--epochs``, the rest
at its defaults, the LR probe included), each on an empty cache folder, in alternating
order (a shared machine's load drifts):

- **CLI**: ``cxr-desktop train DATASET --arch A --size S --epochs E --out RUN`` in a fresh
  process.
- **GUI**: a fresh process of this script that builds the app's ``MainWindow`` (1400 x 900,
  ``QT_QPA_PLATFORM`` offscreen unless set) and lets it finish its start-up work (the
  device probe, then timm imported in the background), gives the Training tab the dataset,
  sets the form as a user would, lets the window paint it (0.5 s) and clicks Start. A 5 ms
  QTimer on the GUI thread records the gaps between its ticks from the click to the run's
  end: a gap well over 5 ms is the event loop stalled. Printed: the worst gap, the 99th
  percentile, the number over 50 ms, the GUI thread's own CPU time in the worst gap (on a
  shared machine a gap also counts time the thread waited for a core or for the GIL) and
  when it began (seconds after the click); and the worst gap from the window's show to the
  end of its start-up work, before any run.

Both times are the process's wall time, imports and start-up included; ``run s`` is the
GUI's time from the click to the end of the run alone.

``--profile`` prints the GUI thread's most expensive calls during the GUI run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_data import make_dataset  # noqa: E402
from viewer_cam import StallMeter  # noqa: E402

STALL_MS = 50.0


def _cli() -> list[str]:
    found = shutil.which("cxr-desktop")
    return [found] if found else [sys.executable, "-m", "cxr_desktop"]


def cli_run(args: argparse.Namespace, dataset: Path, work: Path) -> dict:
    env = dict(os.environ, CXR_DESKTOP_CACHE=str(work / "cache"),
               CXR_DESKTOP_DATA=str(work / "appdata"))
    command = [*_cli(), "train", str(dataset), "--arch", args.arch, "--size", str(args.size),
               "--epochs", str(args.epochs), "--out", str(work / "run")]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"CLI run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"wall_s": wall}


def gui_run(args: argparse.Namespace, dataset: Path, work: Path) -> dict:
    command = [sys.executable, __file__, "--gui-child", str(dataset), "--work", str(work),
               "--arch", args.arch, "--size", str(args.size), "--epochs", str(args.epochs)]
    if args.profile:
        command.append("--profile")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"GUI run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = done.stdout.splitlines()
    if args.profile:
        print("\n".join(lines[:-1]))
    return {**json.loads(lines[-1]), "wall_s": wall}


def gui_child(args: argparse.Namespace) -> None:
    """One run from the Training tab in this process; prints its stalls as JSON."""
    work = Path(args.work)
    os.environ["CXR_DESKTOP_CACHE"] = str(work / "cache")
    os.environ["CXR_DESKTOP_DATA"] = str(work / "appdata")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from cxr_desktop.core.data import open_dataset
    from cxr_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    profiler = cProfile.Profile() if args.profile else None
    window = MainWindow()
    window.resize(1400, 900)
    meter = StallMeter()
    start_up = meter.run(window.show, lambda: window.device is not None
                         and not window.runner.busy())
    tab = window.training_tab
    window.tabs.setCurrentWidget(tab)
    tab.set_dataset(open_dataset(args.gui_child))
    tab.arch.setCurrentIndex(tab.arch.findData(args.arch))
    tab.size.setValue(args.size)
    tab.epochs.setValue(args.epochs)
    settle = QEventLoop()  # the tab painted as the user sees it before clicking Start
    QTimer.singleShot(500, settle.quit)
    settle.exec()
    finished: list[float] = []
    tab.engine.done.connect(lambda _result: finished.append(time.perf_counter()))
    tab.engine.failed.connect(lambda message: sys.exit(f"GUI run failed: {message}"))
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    gaps = meter.run(tab.start_button.click, lambda: bool(finished))
    if profiler:
        profiler.disable()
    window.close()
    app.processEvents()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    wall, cpu = np.array(gaps).T
    worst = int(np.argmax(wall))
    print(json.dumps({"run_s": finished[0] - started, "worst_ms": float(wall[worst]),
                      "p99_ms": float(np.percentile(wall, 99)),
                      "over": int((wall > STALL_MS).sum()),
                      "worst_cpu_ms": float(cpu[worst]), "ticks": len(wall),
                      "worst_at_s": float(wall[:worst].sum() / 1000),
                      "start_up_ms": max(gap for gap, _ in start_up)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160, help="training images")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true",
                        help="print the GUI thread's most expensive calls of the GUI run")
    parser.add_argument("--gui-child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.gui_child:
        gui_child(args)
        return
    scratch = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    dataset = make_dataset("chest-fo", scratch / "data", args.images, side=320)
    print(f"{args.arch} at {args.size} px, {args.epochs} epochs, {args.images} training "
          f"images; {os.cpu_count()} cores")
    print(f"{'round':<6} {'run':<4} {'wall s':>8} {'run s':>7} {'worst ms':>9} {'p99 ms':>7} "
          f"{'>50 ms':>7} {'worst CPU ms':>13} {'worst at s':>11} {'load':>5} "
          f"{'start-up worst ms':>18}")
    ratios = []
    for index in range(args.rounds):
        order = ("cli", "gui") if index % 2 == 0 else ("gui", "cli")
        results = {}
        for side in order:
            work = scratch / f"{side}-{index}"
            results[side] = (cli_run(args, dataset, work) if side == "cli"
                             else gui_run(args, dataset, work))
            result, load = results[side], os.getloadavg()[0]
            if side == "cli":
                print(f"{index:<6} CLI  {result['wall_s']:>8.1f} {'':>7} {'':>9} {'':>7} "
                      f"{'':>7} {'':>13} {'':>11} {load:>5.1f}")
            else:
                print(f"{index:<6} GUI  {result['wall_s']:>8.1f} {result['run_s']:>7.1f} "
                      f"{result['worst_ms']:>9.1f} "
                      f"{result['p99_ms']:>7.1f} {result['over']:>7} "
                      f"{result['worst_cpu_ms']:>13.1f} {result['worst_at_s']:>11.2f} "
                      f"{load:>5.1f} "
                      f"{result['start_up_ms']:>18.1f}")
        ratios.append(results["gui"]["wall_s"] / results["cli"]["wall_s"])
    print(f"GUI / CLI wall time: {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
