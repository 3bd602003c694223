"""Training input pipeline: the preprocessed cache against pure compute and a plain loader.

Run: ``python bench/pipeline.py [--images 256 --size 224 --arch small_cnn --epochs 3]``.
It writes ``--images`` generated 1000 x 1000 px JPEG radiograph stand-ins (half with a bright
blob) in ImageFolder layout, then measures steady-state training images/s three ways on
the same model, batch, optimizer and precision:

- **compute**: forward, backward and step on one batch already on the device;
- **ours**: ``fit`` (cache built once, batches sliced from the memory map, augmented on the
  device); the rate of epochs 2.. (``images_per_s`` of the epoch events, training only);
- **plain**: ``torchvision.datasets.ImageFolder`` + PIL transforms (gray, resize, random
  affine, to tensor) in a ``DataLoader`` with ``--workers`` processes, batches 2.. of one
  epoch.

Printed as ratios: ours / compute (target >= 0.9) and ours / plain (target >= 2), the
ceiling compute / plain that bounds the second (where the plain loader already keeps up with
the model, as on a 2-core CPU, no pipeline can reach 2x), and the wall time of ``--epochs``
epochs, cache building included, against the plain loader's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.models import build_model
from cxr_desktop.core.train import TrainConfig, fit, pick_device
from cxr_desktop.core.train.loop import Precision, make_loss


def write_images(root: Path, count: int, side: int = 1000) -> DatasetSpec:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    base = 110 + 50 * np.exp(-((xx - side / 2) ** 2) / (2 * (side / 5) ** 2))
    items = []
    for index in range(count):
        positive = index % 2 == 1
        label = "blob" if positive else "clear"
        image = base + rng.normal(0, 10, (side, side)).astype(np.float32)
        if positive:
            cy, cx = rng.uniform(0.2 * side, 0.8 * side, 2)
            image += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (side / 25) ** 2))
        name = f"{label}/{index:05d}.jpg"
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / name, quality=92)
        split = "val" if index >= count * 7 // 8 else "train"
        items.append(ImageItem(name, split, f"p{index}", label))
    return DatasetSpec(root, "binary", ["clear", "blob"], "blob", items)


def compute_rate(args: argparse.Namespace, device: torch.device, steps: int = 12) -> float:
    precision = Precision(device, amp=True)
    model = build_model(args.arch, 1, pretrained="none").to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = make_loss("binary")
    images = precision.input(torch.randint(0, 255, (args.batch_size, args.size, args.size),
                                           dtype=torch.uint8, device=device))
    targets = (torch.arange(args.batch_size, device=device) % 2).float()

    def step() -> None:
        with precision.autocast():
            loss = loss_fn(model(images), targets)
        precision.backward(loss)
        precision.step(optimizer)
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * args.batch_size / (time.perf_counter() - start)


def ours_rate(args: argparse.Namespace, spec: DatasetSpec, out: Path) -> tuple[float, float]:
    rates: list[float] = []

    def on_event(event: dict) -> None:
        if event["type"] == "epoch" and event["epoch"] > 1:
            rates.append(event["images_per_s"])

    config = TrainConfig(arch=args.arch, size=args.size, epochs=args.epochs,
                         batch_size=args.batch_size, lr=1e-4, pretrained="none",
                         device=args.device, out=str(out), log_every_n_batches=10_000,
                         workers=args.workers)
    start = time.perf_counter()
    fit(config, on_event, spec=spec)
    return statistics.median(rates), time.perf_counter() - start


def plain_rate(args: argparse.Namespace, root: Path, device: torch.device) -> tuple[float, float]:
    transform = transforms.Compose([
        transforms.Grayscale(), transforms.Resize((args.size, args.size)),
        transforms.RandomAffine(7, translate=(0.05, 0.05), scale=(0.9, 1.1)),
        transforms.ToTensor(),
    ])
    loader = DataLoader(datasets.ImageFolder(str(root), transform=transform),
                        batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda", drop_last=True)
    precision = Precision(device, amp=True)
    model = build_model(args.arch, 1, pretrained="none").to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = make_loss("binary")
    wall = time.perf_counter()
    images_after_first, start = 0, 0.0
    for batch_index, (images, labels) in enumerate(loader):
        images, labels = images.to(device), labels.float().to(device)
        with precision.autocast():
            loss = loss_fn(model(images), labels)
        precision.backward(loss)
        precision.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        if batch_index == 0:
            _sync(device)
            start = time.perf_counter()
        else:
            images_after_first += len(images)
    _sync(device)
    epoch_s = time.perf_counter() - wall
    return images_after_first / (time.perf_counter() - start), epoch_s * args.epochs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CXR_DESKTOP_DATA"] = str(Path(tmp) / "data")
        os.environ["CXR_DESKTOP_CACHE"] = str(Path(tmp) / "cache")
        root = Path(tmp) / "images"
        spec = write_images(root, args.images)
        print(f"{args.images} images of 1000 px, {args.arch} at {args.size} px, batch "
              f"{args.batch_size}, {device}, {os.cpu_count()} CPU cores")
        compute = compute_rate(args, device)
        ours, ours_wall = ours_rate(args, spec, Path(tmp) / "run")
        plain, plain_wall = plain_rate(args, root, device)
    print(f"{'pipeline':<10}{'images/s':>10}")
    print(f"{'compute':<10}{compute:>10.1f}")
    print(f"{'ours':<10}{ours:>10.1f}   ours / compute = {ours / compute:.2f} (target >= 0.9)")
    print(f"{'plain':<10}{plain:>10.1f}   ours / plain   = {ours / plain:.2f} (target >= 2)")
    print(f"ceiling here: compute / plain = {compute / plain:.2f} (no input pipeline can beat "
          f"the plain one by more than this on this device and model)")
    print(f"{args.epochs} epochs, wall time: ours {ours_wall:.1f} s (cache build and "
          f"validation included), plain {plain_wall:.1f} s (training only, "
          f"one epoch x {args.epochs})")


if __name__ == "__main__":
    main()
