"""Training throughput in 1 and 2 processes on the same data (``train --nproc``).

Run: ``python bench/distributed.py [--images 200 --size 64 --epochs 3 --arch
efficientnet_lite0 --batch-size 16 --repeats 2]``.

Writes one demo dataset (``make_demo_dataset``, seed 2027: no test uses it), builds its image
cache once, then trains it with the same settings (fixed LR and batch, no pretrained weights,
so nothing but the process count differs) alternately:

- **1 process**: ``cxr-desktop train ...`` (torch's threads: every core);
- **1 process, 1 thread**: the same with ``OMP_NUM_THREADS=1``: on a busy machine a process
  whose threads wait for each other at every operator can be several times slower than one
  thread, and this row tells that apart from what the second process adds;
- **2 processes**: ``cxr-desktop train ... --nproc 2`` (torch.distributed.run, gloo, the
  cores split between the ranks, each rank half of every batch).

Printed per run: the images/s of the training epochs after the first (the engine's
``images_per_s``: training images over the training time, all ranks together), the epoch
time, the wall time of the whole command (start-up, rendezvous, validation and checkpoints
included) and the best validation AUC; then per repeat the ratios of the mean images/s and
the wall time of 2 processes against each one-process row. The load average is printed with
every row: on a shared machine throughput swings with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA_SEED = 2027
REPO = Path(__file__).resolve().parents[1]


def _train(dataset: Path, out: Path, settings: list[str], nproc: int,
           env: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, "-m", "cxr_desktop", "train", str(dataset), *settings,
               "--out", str(out), "--json", *(["--nproc", str(nproc)] if nproc > 1 else [])]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    epochs, last = records[:-1], records[-1]
    timed = epochs[1:] or epochs  # the first epoch warms up (allocations, thread pools)
    return {
        "nproc": last["world_size"], "wall_s": wall,
        "images_per_s": statistics.mean(e["images_per_s"] for e in timed),
        "epoch_s": statistics.mean(e["epoch_s"] for e in timed),
        "best_val_auc": last["best_val_auc"],
    }


def _row(label: str, run: dict) -> str:
    load = os.getloadavg()[0]
    return (f"{label:<14} {run['nproc']:>5} {run['images_per_s']:>9.1f} {run['epoch_s']:>8.2f}"
            f" {run['wall_s']:>8.1f} {run['best_val_auc']:>7.3f} {load:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from cxr_desktop.core.data import open_dataset
    from cxr_desktop.core.data.demo import make_demo_dataset
    from cxr_desktop.core.train.data import prepare_data

    with tempfile.TemporaryDirectory(prefix="cxr-bench-dist-") as tmp:
        base = Path(tmp)
        env = {**os.environ, "CXR_DESKTOP_DATA": str(base / "data"),
               "CXR_DESKTOP_CACHE": str(base / "cache")}
        os.environ.update(env)
        dataset = base / "demo"
        make_demo_dataset(dataset, n_images=args.images, size=max(args.size * 2, 128),
                          seed=DATA_SEED)
        spec = open_dataset(dataset)
        prepare_data(spec, args.size)  # the cache both configurations read
        settings = ["--arch", args.arch, "--size", str(args.size), "--epochs",
                    str(args.epochs), "--batch-size", str(args.batch_size), "--lr", "1e-3",
                    "--freeze-epochs", "0", "--pretrained", "none"]
        print(f"{args.arch} at {args.size} px, {len(spec.split_indices('train'))} training "
              f"images, batch {args.batch_size}, {args.epochs} epochs; {os.cpu_count()} CPU "
              f"cores; torch threads per rank: cores / processes")
        print(f"{'run':<14} {'procs':>5} {'images/s':>9} {'epoch s':>8} {'wall s':>8} "
              f"{'val AUC':>7} {'load':>6}")
        configurations = {"1 process": (1, env),
                          "1 proc 1 thr": (1, {**env, "OMP_NUM_THREADS": "1"}),
                          "2 processes": (2, env)}
        ratios = []
        for repeat in range(args.repeats):
            runs = {}
            for label, (nproc, run_env) in configurations.items():
                out = base / f"run-{repeat}-{label.replace(' ', '-')}"
                runs[label] = _train(dataset, out, settings, nproc, run_env)
                print(_row(label, runs[label]), flush=True)
            ratios.append(runs)
        for repeat, runs in enumerate(ratios, 1):
            two = runs["2 processes"]
            for label in ("1 process", "1 proc 1 thr"):
                print(f"repeat {repeat}: 2 processes / {label}: images/s "
                      f"x{two['images_per_s'] / runs[label]['images_per_s']:.2f}, wall time "
                      f"x{two['wall_s'] / runs[label]['wall_s']:.2f}")


if __name__ == "__main__":
    main()
