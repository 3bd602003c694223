"""The default training recipe against a plain PyTorch loop, on data no test has seen.

Run: ``python bench/recipe.py [--datasets chest-fo,limb-3class,chest-nih --epochs 2,3,6
--size 160 --images 400 --seeds 0]``; ``--datasets chest-fo --epochs 2 --images 160`` is a
quick version (a few minutes). ``--seeds 0,1,2,3,4`` trains every cell with five training
seeds on the same data and ends with the mean of each side and their difference: one seed
moves a side's AUC by a few hundredths on 200 validation images, more than the
differences between recipes.

Datasets: ``bench/recipe_data.py`` writes them from real radiographs of pydicom-data with
planted findings (a binary foreign-object task on the chest, a three-class task on the
tibia, a multi-label task whose label rows are real NIH ChestX-ray14 rows); ``--images`` is
the training count, validation and test half of it each; ``--data-seed`` picks the
images.

For every dataset, budget in ``--epochs`` and seed in ``--seeds`` two trainings run with
that training seed (both sides are deterministic for a seed), each in its own
process so both pay start-up and imports, in alternating order (the load of a shared
machine drifts):

- **plain**: this file with ``--plain``: the seeds' loop as issue #12 describes it. timm
  ``efficientnet_lite0`` with the efficientnet-lite0 package's ImageNet weights mapped in
  order, ``--size`` px, AdamW (LR 1e-3, weight decay 0.01) and ``OneCycleLR`` over all
  layers from the first step (torch's default warm-up share), batch 16, light rotation
  (5 degrees) and brightness jitter (0.1), a PIL ``Dataset`` + ``DataLoader`` reading the
  PNGs every epoch, the validation AUC after each epoch, the last weights tested. Its time
  is the process's wall time less the test pass.
- **ours**: ``cxr-desktop train DATASET --arch efficientnet_lite0 --size S --epochs E
  --seed SEED --json --out RUN`` with every other setting at its default (``--ours-args``
  adds options, for experiments), an empty cache folder (``CXR_DESKTOP_CACHE``) and
  ``CXR_DESKTOP_DATA`` in a temporary folder: cache building, the LR probe, validation,
  checkpoints and the scope model are all in its wall time. Test AUC: ``cxr-desktop
  evaluate RUN DATASET --split test --json`` on the best checkpoint it kept (not timed).

AUC is the mean one-vs-rest AUC over classes (multi-class) or findings (multi-label), as
both sides compute it. Printed per run: validation AUC after each epoch, the final one (ours:
the checkpoint it keeps, the best by validation AUC; plain: the last epoch), test AUC, wall
seconds and ours / plain, CPU seconds (user + system of the training process, every thread,
imports included; plain's without its test pass) and ours / plain, and the load average (1
min) when the run ended. On a shared machine wall time follows the load; CPU time much less
(but threads that spin waiting for a busy core count too). With several seeds the summary
gives, per cell, each side's mean AUCs, ours - plain with its standard error over the seeds,
and the ratio of the summed wall times.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_data import DATASETS, make_dataset  # noqa: E402
from train_vs_plain import _lite0_imagenet, load_average  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --- the plain loop (runs in a child process: ``--plain``) ---------------------------------
def _rows(root: Path, split: str) -> list[tuple[Path, list[float]]]:
    with open(root / "labels.csv", newline="", encoding="utf-8") as handle:
        return [(root / row["path"], [float(v) for v in row["target"].split("|")])
                for row in csv.DictReader(handle) if row["split"] == split]


def plain_main(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image
    from sklearn.metrics import roc_auc_score
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    started = time.perf_counter()
    root = Path(args.dataset)
    train_rows, val_rows = _rows(root, "train"), _rows(root, "val")
    width = len(train_rows[0][1])
    classes = int(max(r[1][0] for r in train_rows)) + 1 if args.task == "multiclass" else 0
    outputs = classes or width

    class Images(Dataset):
        def __init__(self, rows, transform) -> None:
            self.rows, self.transform = rows, transform

        def __len__(self) -> int:
            return len(self.rows)

        def __getitem__(self, index: int):
            path, target = self.rows[index]
            with Image.open(path) as image:
                return self.transform(image), torch.tensor(target)

    base = [transforms.Grayscale(3), transforms.Resize((args.size, args.size))]
    tail = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train_tf = transforms.Compose([*base, transforms.RandomRotation(5),
                                   transforms.ColorJitter(brightness=0.1), *tail])
    eval_tf = transforms.Compose([*base, *tail])
    torch.manual_seed(args.seed)
    model = _lite0_imagenet(args.seed)
    model.reset_classifier(outputs)
    loader = DataLoader(Images(train_rows, train_tf), batch_size=16, shuffle=True,
                        num_workers=args.workers, persistent_workers=args.workers > 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-3, total_steps=args.epochs * len(loader))

    def loss_fn(logits, target):
        if args.task == "multiclass":
            return torch.nn.functional.cross_entropy(logits, target[:, 0].long())
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)

    def auc(rows) -> float:
        model.eval()
        scores = []
        with torch.no_grad():
            for images, _ in DataLoader(Images(rows, eval_tf), batch_size=64):
                logits = model(images)
                scores.append(logits.softmax(1) if args.task == "multiclass"
                              else logits.sigmoid())
        probs = torch.cat(scores).numpy()
        target = np.array([r[1] for r in rows])
        if args.task == "multiclass":
            labels = target[:, 0].astype(int)
            return float(np.mean([roc_auc_score(labels == c, probs[:, c])
                                  for c in range(outputs)]))
        return float(np.mean([roc_auc_score(target[:, c], probs[:, c])
                              for c in range(outputs)]))

    val_aucs, epochs_s = [], []
    for _ in range(args.epochs):
        epoch_start = time.perf_counter()
        model.train()
        for images, target in loader:
            loss = loss_fn(model(images), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        val_aucs.append(auc(val_rows))
        epochs_s.append(time.perf_counter() - epoch_start)
    train_s = time.perf_counter() - started
    train_cpu_s = time.process_time()  # every thread of this process, imports included
    test_start = time.perf_counter()
    test_auc = auc(_rows(root, "test"))
    print(json.dumps({"train_s": train_s, "train_cpu_s": train_cpu_s, "epochs_s": epochs_s,
                      "val_aucs": val_aucs,
                      "test_auc": test_auc, "test_s": time.perf_counter() - test_start}))


# --- the driver ----------------------------------------------------------------------------
TASKS = {"chest-fo": "binary", "limb-3class": "multiclass", "chest-nih": "multilabel"}


def _run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli() -> list[str]:
    found = shutil.which("cxr-desktop")
    return [found] if found else [sys.executable, "-m", "cxr_desktop"]


def run_plain(args: argparse.Namespace, dataset: Path, name: str, epochs: int,
              seed: int) -> dict:
    root = dataset if dataset.is_dir() else dataset.parent
    wall, out = _run([sys.executable, __file__, "--plain", "--dataset", str(root),
                      "--task", TASKS[name], "--size", str(args.size), "--epochs",
                      str(epochs), "--workers", str(args.plain_workers), "--seed",
                      str(seed)], dict(os.environ))
    result = json.loads(out.splitlines()[-1])
    return {"val_aucs": result["val_aucs"], "final_val": result["val_aucs"][-1],
            "test_auc": result["test_auc"], "wall_s": wall - result["test_s"],
            "cpu_s": result["train_cpu_s"], "load": os.getloadavg()[0], "notes": ""}


def run_ours(args: argparse.Namespace, dataset: Path, work: Path, epochs: int,
             seed: int) -> dict:
    env = dict(os.environ, CXR_DESKTOP_CACHE=str(work / "cache"),
               CXR_DESKTOP_DATA=str(work / "appdata"))
    run_dir = work / "run"
    command = [*_cli(), "train", str(dataset), "--arch", "efficientnet_lite0", "--size",
               str(args.size), "--epochs", str(epochs), "--seed", str(seed), "--json",
               "--out", str(run_dir), *args.ours_args.split()]
    start, cpu_start = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    load = os.getloadavg()[0]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    records = [line for line in lines if "epoch_s" in line]
    _, evaluated = _run([*_cli(), "evaluate", str(run_dir), str(dataset), "--split", "test",
                         "--json", "--bootstrap", "0"], env)
    shutil.rmtree(work, ignore_errors=True)  # the run and its cache, done with
    notes = [line for line in done.stderr.splitlines()
             if line.startswith(("schedule", "LR probe"))]
    return {"val_aucs": [r["val_auc"] for r in records], "final_val": lines[-1]["best_val_auc"],
            "test_auc": json.loads(evaluated)["auc"], "wall_s": wall, "cpu_s": cpu, "load": load,
            "notes": " / ".join(notes)}


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def _table_rows(name: str, epochs: int, seed: int, results: dict[str, dict]) -> list[str]:
    """Print and return the table rows of one cell's runs."""
    rows = []
    for side in ("plain", "ours"):
        if side not in results:
            continue
        r = results[side]
        ours = side == "ours" and "plain" in results
        ratio = f"{r['wall_s'] / results['plain']['wall_s']:.2f}" if ours else ""
        cpu_ratio = f"{r['cpu_s'] / results['plain']['cpu_s']:.2f}" if ours else ""
        row = (f"{name:<12}{epochs:>2}{seed:>5} {side:<6}{_fmt(r['val_aucs']):<36}"
               f"{r['final_val']:>10.3f}{r['test_auc']:>7.3f}{r['wall_s']:>8.1f}"
               f"{ratio:>11}{r['cpu_s']:>7.0f}{cpu_ratio:>11}{r['load']:>6.2f}")
        rows.append(row)
        print(row + (f"   {r['notes']}" if r["notes"] else ""), flush=True)
    return rows


def summary(cells: dict[tuple[str, int], dict[str, dict[int, dict]]]) -> list[str]:
    """Per cell over the seeds both sides ran: mean validation and test AUC of each side,
    ours - plain with its standard error, and ours' summed wall time over plain's."""
    lines = [f"{'dataset':<12}{'E':>2}{'seeds':>6}{'val plain':>10}{'ours':>7}{'ours-plain':>17}"
             f"{'test plain':>11}{'ours':>7}{'ours-plain':>17}{'wall ours/plain':>16}"]
    for (name, epochs), sides in cells.items():
        seeds = sorted(set(sides.get("plain", {})) & set(sides.get("ours", {})))
        if not seeds:
            continue
        row = f"{name:<12}{epochs:>2}{len(seeds):>6}"
        for key, width in (("final_val", 10), ("test_auc", 11)):
            plain = np.array([sides["plain"][s][key] for s in seeds])
            ours = np.array([sides["ours"][s][key] for s in seeds])
            diff = ours - plain
            error = diff.std(ddof=1) / np.sqrt(len(seeds))
            row += (f"{plain.mean():>{width}.3f}{ours.mean():>7.3f}"
                    f"{f'{diff.mean():+.3f} ± {error:.3f}':>17}")
        walls = {side: sum(sides[side][s]["wall_s"] for s in seeds) for side in sides}
        lines.append(row + f"{walls['ours'] / walls['plain']:>16.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--epochs", default="2,3,6", help="budgets, comma separated")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--images", type=int, default=400, help="training images")
    parser.add_argument("--side", type=int, default=320, help="side of the PNGs written")
    parser.add_argument("--seeds", default="0", help="training seeds, comma separated")
    parser.add_argument("--data-seed", type=int, default=0, help="which images are drawn")
    parser.add_argument("--plain-workers", type=int, default=0)
    parser.add_argument("--ours-args", default="", help="extra options for ours")
    parser.add_argument("--only", choices=("ours", "plain"), help="run one side only")
    parser.add_argument("--data-dir", help="keep the datasets here (reused when present)")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        args.epochs = int(args.epochs)
        plain_main(args)
        return
    names = args.datasets.split(",")
    budgets = [int(e) for e in args.epochs.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"efficientnet_lite0 (ImageNet), {args.size} px, budgets {budgets} epochs, "
          f"training seeds {seeds}, "
          f"{args.images} training images per dataset ({args.side} px PNGs), "
          f"{os.cpu_count()} CPU cores, load average {load_average()}", flush=True)
    if args.ours_args:
        print(f"ours with: {args.ours_args}")
    header = (f"{'dataset':<12}{'E':>2}{'seed':>5} {'run':<6}{'val AUC per epoch':<36}"
              f"{'final val':>10}{'test':>7}{'wall s':>8}{'ours/plain':>11}{'CPU s':>7}"
              f"{'ours/plain':>11}{'load':>6}")
    table = [header]
    print(header, flush=True)
    with tempfile.TemporaryDirectory(prefix="recipe.") as tmp:
        data_root = Path(args.data_dir) if args.data_dir else Path(tmp)
        datasets = {}
        for name in names:
            target = data_root / f"{name}-{args.images}-{args.side}-{args.data_seed}"
            marker = target / "spec.json" if name == "chest-nih" else target
            datasets[name] = marker if (target / "labels.csv").exists() else make_dataset(
                name, target, args.images, args.side, args.data_seed)
        cells: dict[tuple[str, int], dict[str, dict[int, dict]]] = defaultdict(
            lambda: defaultdict(dict))
        turn = 0
        for seed in seeds:
            for name, dataset in datasets.items():
                for epochs in budgets:
                    order = ["plain", "ours"] if turn % 2 == 0 else ["ours", "plain"]
                    turn += 1
                    results = {}
                    for side in order:
                        if args.only and side != args.only:
                            continue
                        results[side] = (
                            run_plain(args, dataset, name, epochs, seed) if side == "plain"
                            else run_ours(args, dataset, Path(tmp) / f"{name}-{epochs}-{seed}",
                                          epochs, seed))
                        cells[(name, epochs)][side][seed] = results[side]
                    table.extend(_table_rows(name, epochs, seed, results))
    print("\n" + "\n".join(table))
    if len(seeds) > 1:
        print("\nmeans over the training seeds\n" + "\n".join(summary(cells)))
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
