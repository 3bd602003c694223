"""What scoring the maps of a whole split costs, against a plain prediction pass.

    python bench/localization.py [--images 1000] [--size 224] [--arch efficientnet_lite0]

Makes ``--images`` annotated radiographs (the real CR chest of pydicom-data, cropped and
re-exposed per image, half of them with a bright round finding and its box), trains a run
for one epoch on 64 of them (so the run folder is real), builds the image cache once, then
times on the same images, in one process, one after the other:

- **plain**: ``predict(..., use_saved=False)``: the probabilities, a forward pass per batch;
- **cam / gradcam, last layer**: ``localize``: maps from the same forward pass;
- **gradcam, an earlier layer**: ``localize`` through pytorch-grad-cam (a backward pass).

Localization scores every positive and every negative (the FROC needs both). Prints each
time, images/s and the ratio to the plain pass (target: at most 2 for the last layer).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.cache import build_cache
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem


def _chest(size: int) -> np.ndarray:
    from pydicom.data import get_testdata_file

    from cxr_desktop.core.io import load_image, to_display

    gray = to_display(load_image(get_testdata_file("RG1_UNCI.dcm")))
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR))


def make_dataset(root: Path, n_images: int, side: int = 320) -> DatasetSpec:
    """``n_images`` PNGs: crops of the real chest, half with a round finding in a box."""
    rng = np.random.default_rng(7)
    base = _chest(640)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    items = []
    (root / "images").mkdir(parents=True, exist_ok=True)
    for index in range(n_images):
        crop = int(rng.integers(360, 600))
        x0, y0 = rng.integers(0, 640 - crop, 2)
        pixels = np.asarray(Image.fromarray(base[y0:y0 + crop, x0:x0 + crop]).resize(
            (side, side)), dtype=np.float32)
        positive = index % 2 == 1
        shapes = []
        if positive:
            cy, cx = rng.uniform(0.25 * side, 0.75 * side, 2)
            radius = rng.uniform(8, 20)
            pixels += 90 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
            shapes = [Shape("finding", "rectangle", ((cx - 2 * radius, cy - 2 * radius),
                                                     (cx + 2 * radius, cy + 2 * radius)))]
        name = f"images/{index:05d}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name,
                                                                       compress_level=1)
        items.append(ImageItem(name, "test" if index >= 64 else ("train" if index < 48
                                                                 else "val"),
                               None, "finding" if positive else "clear", shapes))
    return DatasetSpec(root=root, task="binary", classes=["clear", "finding"],
                       positive_class="finding", items=items)


def timed(what: str, call, n: int, baseline: float | None = None):
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    ratio = f"  {seconds / baseline:.2f}x the plain pass" if baseline else ""
    print(f"{what:<34} {seconds:7.1f} s  {n / seconds:7.1f} images/s{ratio}", flush=True)
    return result, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--arch", default="efficientnet_lite0")
    args = parser.parse_args()
    from cxr_desktop.core.evaluate.localize import localize
    from cxr_desktop.core.evaluate.predictions import predict
    from cxr_desktop.core.runs.load import load_run
    from cxr_desktop.core.train import TrainConfig, fit

    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {args.arch} at "
          f"{args.size} px, {args.images} images")
    with tempfile.TemporaryDirectory(prefix="cxr-bench-loc-") as tmp:
        base = Path(tmp)
        os.environ.setdefault("CXR_DESKTOP_DATA", str(base / "data"))
        spec = make_dataset(base / "ds", args.images + 64)
        dataset = spec.save(base / "ds.json")
        config = TrainConfig(dataset=str(dataset), arch=args.arch, size=args.size, epochs=1,
                             out=str(base / "run"), cache_dir=str(base / "cache"))
        fit(config, spec=spec)
        test = [str(spec.abspath(it)) for it in spec.items if it.split == "test"]
        build_cache(test, args.size, root=base / "cache")
        run = base / "run"
        layers = list(load_run(run).model.cam_layers())
        n = len(test)
        common = {"cache_root": base / "cache", "n_boot": 0}
        _, plain = timed("plain prediction pass", lambda: predict(
            run, spec, "test", cache_root=base / "cache", use_saved=False), n)
        for method, layer in (("cam", layers[-1]), ("gradcam", layers[-1]),
                              ("gradcam", layers[-2])):
            result, _ = timed(f"{method}, layer {layer}", lambda m=method, la=layer: localize(
                run, spec, "test", method=m, layer=la, **common), n, plain)
            print(f"{'':<34} pointing game {result.pointing_game:.3f} on {result.n} "
                  f"positives, {result.negatives} negatives")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
