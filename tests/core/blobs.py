"""A tiny learnable dataset for training tests: positives carry a bright blob."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cxr_desktop.core.data.spec import DatasetSpec, ImageItem


def blob_image(rng: np.random.Generator, positive: bool, size: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = 90 + 30 * np.sin(xx / 9 + rng.uniform(0, 6)) + rng.normal(0, 12, (size, size))
    if positive:
        cy, cx = rng.uniform(0.25 * size, 0.75 * size, 2)
        image += 150 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 10) ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_blob_dataset(root: Path, n_train: int = 32, n_val: int = 16, n_test: int = 0,
                      seed: int = 0, task: str = "binary") -> DatasetSpec:
    """PNG files under ``root`` and a spec: half the images of each split are positive."""
    rng = np.random.default_rng(seed)
    items = []
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        for index in range(count):
            positive = index % 2 == 1
            name = f"{split}/{index:03d}.png"
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(blob_image(rng, positive)).save(root / name)
            if task == "binary":
                labels: object = "blob" if positive else "clear"
            else:
                labels = {"blob": 1.0 if positive else 0.0, "other": float(index % 3 == 0)}
            items.append(ImageItem(path=name, split=split, patient=f"p{split}{index}",
                                   labels=labels))
    if task == "binary":
        return DatasetSpec(root=root, task="binary", classes=["clear", "blob"],
                           positive_class="blob", items=items)
    return DatasetSpec(root=root, task="multilabel", classes=["blob", "other"],
                       positive_class=None, items=items)
