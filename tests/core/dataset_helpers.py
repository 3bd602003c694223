"""Small real image files for the dataset tests (PNG and JPEG written with PIL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_pixels(seed: int, size: tuple[int, int] = (96, 112)) -> np.ndarray:
    """A smooth random grayscale picture: distinct per seed, stable under re-encoding."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8))
    return np.asarray(coarse.resize((size[1], size[0]), Image.Resampling.BICUBIC))


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (96, 112),
                quality: int = 95, pixels: np.ndarray | None = None) -> Path:
    """Write a PNG or JPEG (by suffix) of ``smooth_pixels(seed)`` or of ``pixels``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(smooth_pixels(seed, size) if pixels is None else pixels)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, quality=quality)
    else:
        image.save(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
