"""Out of scope without DICOM tags: every detector against every kind of image we can make.

Run: ``python bench/scope.py [--run RUN_DIR] [--images 320 --epochs 3 --size 160
--arch efficientnet_lite0 --per-kind 60 --rate 0.05]``.

Without ``--run`` it writes ``chest-fo`` of ``bench/recipe_data.py`` (chest images made from
the real CR chest of pydicom-data, foreign objects planted) and trains a chest model on it
with the app's defaults (``core.train.fit``). Then, on that one model:

- **in distribution**: the dataset's test chests (never seen by training or by the fits);
- **out of scope**, each kind ``--per-kind`` images, all PNG-like arrays through the app's
  own chain (``model_input``), so no DICOM tag helps:
  ``tibia`` (pydicom-data's RG3 distal tibia, random crops, rotations, flips, shading and
  noise: the same augmentation the chests got, so only the anatomy differs), ``ct`` and
  ``mr`` (slices of pydicom's CT and MR test files, likewise augmented), ``natural``
  (skimage.data photographs in gray), and four made of the test chests themselves:
  ``rotated`` (90 degrees), ``upside-down``, ``inverted`` (negative), ``crop`` (a zoomed-in
  patch of 25-45 % of the side).

Every detector of ``core.infer.ood`` is fitted on the validation images' pooled features,
logits and stage statistics, as training fits the default one, with the threshold at
``--rate`` false alarms of the cross-fitted validation scores. Printed per detector and kind:
AUROC (test chests against the kind), the detection rate at the threshold, and the false
alarms on test chests; the fit time per detector; the load average. A last row scores the
run's own ``scope.npz``, the one training fitted from its validation pass (under its
precision: bf16 autocast on CPUs that have it). ``--resplits N`` adds the
false alarms over N random splits of the validation and test chests pooled (one split is
one draw of a heavy-tailed score).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_data import background, make_dataset  # noqa: E402

from cxr_desktop.core.data.spec import DatasetSpec  # noqa: E402
from cxr_desktop.core.infer.ood import DETECTORS, OodInputs, deep_half  # noqa: E402
from cxr_desktop.core.infer.scope import (  # noqa: E402
    SCOPE_NAME,
    ScopeModel,
    fit_scope_inputs,
    inputs_of,
)
from cxr_desktop.core.io import load_image, model_input, to_display  # noqa: E402
from cxr_desktop.core.runs import RunFolder, load_run  # noqa: E402

CT_FILES = ("CT_small.dcm",)
MR_FILES = ("MR_small.dcm", "MR2_UNCI.dcm", "emri_small.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm")
NATURAL = ("camera", "astronaut", "coffee", "chelsea", "moon", "page", "text", "brick",
           "grass", "gravel", "rocket", "coins", "cell", "clock", "horse")
KINDS = ("tibia", "ct", "mr", "natural", "rotated", "upside-down", "inverted", "crop")
#: Variants reported beside the defaults (name, method, options); ``names: "all"`` is every
#: stage of the backbone (the default ``layers`` takes the deeper half).
VARIANTS = (("layers, every stage", "layers", {"names": "all"}),
            ("knn k=1", "knn", {"k": 1}), ("knn k=10", "knn", {"k": 10}))
#: The issue's "done when": other body parts without tags (here the tibia views).
DONE_DETECTION, DONE_FALSE_ALARMS = 0.90, 0.05


def load_average() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _display(name: str) -> np.ndarray:
    """A pydicom test file as a float32 display image (the middle frame of a stack)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        raise SystemExit(f"{name} not found: is pydicom-data installed?")
    image = to_display(load_image(path)).astype(np.float32)
    return image if image.ndim == 2 else image[image.shape[0] // 2]


def _naturals() -> list[np.ndarray]:
    from skimage import data
    from skimage.color import rgb2gray

    out = []
    for name in NATURAL:
        try:
            image = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a data file skimage may not ship
            continue
        if image.ndim == 3:
            image = rgb2gray(image[..., :3]) * 255.0
        out.append(np.asarray(image, dtype=np.float32))
    return out


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return np.asarray(pil.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)


def _augmented(rng: np.random.Generator, sources: list[np.ndarray], count: int,
               side: int) -> Iterator[np.ndarray]:
    for index in range(count):
        source = sources[index % len(sources)]
        if min(source.shape) < side:
            source = _resize(source, max(side, 2 * min(source.shape)))
        yield background(rng, source, side)


def _from_chests(rng: np.random.Generator, chests: list[np.ndarray], kind: str,
                 count: int) -> Iterator[np.ndarray]:
    for index in range(count):
        chest = chests[index % len(chests)]
        if kind == "rotated":
            yield np.rot90(chest, 1 if rng.random() < 0.5 else 3)
        elif kind == "upside-down":
            yield chest[::-1]
        elif kind == "inverted":
            yield 255.0 - chest
        else:
            side = chest.shape[0]
            crop = int(side * rng.uniform(0.25, 0.45))
            y, x = rng.integers(0, side - crop, 2)
            yield _resize(chest[y:y + crop, x:x + crop], side)


def kind_images(kind: str, chests: list[np.ndarray], count: int, side: int,
                seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "tibia":
        images = _augmented(rng, [_display("RG3_UNCI.dcm")], count, side)
    elif kind == "ct":
        images = _augmented(rng, [_display(n) for n in CT_FILES], count, side)
    elif kind == "mr":
        images = _augmented(rng, [_display(n) for n in MR_FILES], count, side)
    elif kind == "natural":
        images = _augmented(rng, _naturals(), count, side)
    else:
        images = _from_chests(rng, chests, kind, count)
    return [np.clip(np.ascontiguousarray(image), 0, 255).astype(np.uint8) for image in images]


def model_inputs(images: list[np.ndarray], size: int, folder: Path) -> np.ndarray:
    """(N, S, S) uint8 model inputs of tagless 8-bit PNGs through the app's chain (written
    and loaded as a user's PNG would be, then prepared as the Predictor prepares them)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, pixels in enumerate(images):
        path = folder / f"{index:04d}.png"
        Image.fromarray(pixels).save(path)
        out.append(model_input(load_image(path), size))
    return np.stack(out)


def _batches(images: np.ndarray, batch: int = 32) -> Iterator[np.ndarray]:
    for start in range(0, len(images), batch):
        yield images[start:start + batch]


def _train(args: argparse.Namespace, work: Path) -> Path:
    from cxr_desktop.core.runs import RunRegistry
    from cxr_desktop.core.train import TrainConfig, fit

    root = make_dataset("chest-fo", work / "chest-fo", args.images, side=args.side,
                        seed=args.seed)
    config = TrainConfig(dataset=str(root), arch=args.arch, size=args.size,
                         epochs=args.epochs, out=str(work / "run"),
                         cache_dir=str(work / "cache"), seed=args.seed)
    started = time.perf_counter()
    result = fit(config, on_event=lambda e: None, registry=RunRegistry(work / "runs.sqlite"))
    print(f"trained {args.arch} {args.epochs} epochs at {args.size} px on {args.images} "
          f"chests in {time.perf_counter() - started:.0f} s: best val AUC "
          f"{result.best_val_auc:.3f} (epoch {result.best_epoch})", flush=True)
    return Path(result.run_dir)


def _split_pixels(spec: DatasetSpec, split: str, size: int) -> tuple[np.ndarray, list]:
    items = [item for item in spec.items if item.split == split]
    chests = [np.asarray(to_display(load_image(spec.abspath(item))), dtype=np.float32)
              for item in items]
    return np.stack([model_input(load_image(spec.abspath(item)), size) for item in items]), \
        chests


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="scope-bench-"))
    run_dir = Path(args.run) if args.run else _train(args, work)
    loaded = load_run(run_dir, device="cpu")
    model, size = loaded.model.eval(), int(loaded.metadata["input_size"])
    spec = DatasetSpec.load(RunFolder(run_dir).path / "dataset.json")
    val_pixels, _ = _split_pixels(spec, "val", size)
    test_pixels, test_chests = _split_pixels(spec, "test", size)
    val = inputs_of(model, _batches(val_pixels), layers="all")
    test = inputs_of(model, _batches(test_pixels), layers="all")
    kinds: dict[str, OodInputs] = {}
    for offset, kind in enumerate(KINDS):
        images = kind_images(kind, test_chests, args.per_kind, test_chests[0].shape[0],
                             args.seed + 100 + offset)
        kinds[kind] = inputs_of(model, _batches(model_inputs(images, size, work / kind)),
                                layers="all")
    print(f"{len(val)} validation, {len(test)} test chests, {args.per_kind} images per kind; "
          f"false-alarm rate {args.rate:.0%}; load average {load_average()}")
    softmax = loaded.metadata.get("task") == "multiclass"
    defaults = {"energy": {"softmax": softmax}, "layers": {"names": "deep half"}}
    detectors = [(name, name, defaults.get(name, {})) for name in DETECTORS] + list(VARIANTS)
    rows = []
    for label, method, options in detectors:
        options = _resolved(options, list(val.layers))
        started = time.perf_counter()
        scope = fit_scope_inputs(val, method, args.rate, **options)
        rows.append(_row(label, scope, test, kinds, time.perf_counter() - started))
    saved = RunFolder(run_dir).path / SCOPE_NAME
    if saved.is_file():  # what training fitted, from its own validation pass
        rows.append(_row(f"the run's {SCOPE_NAME}", ScopeModel.load(saved), test, kinds))
    print_table(rows, args.markdown)
    if args.resplits:
        resplit(val, test, kinds, detectors, args)
    default = rows[0]  # DETECTORS lists the default first
    detected, alarms = default["tibia"][1], default["false_alarms"]
    verdict = "met" if detected >= DONE_DETECTION and alarms <= DONE_FALSE_ALARMS else "NOT met"
    print(f"done when (default {default['detector']}): tibia views flagged {detected:.0%} "
          f"(>= {DONE_DETECTION:.0%}), test chests flagged {alarms:.1%} "
          f"(<= {DONE_FALSE_ALARMS:.0%}): {verdict}")
    print(f"load average at the end {load_average()}")


def _resolved(options: dict, stages: list[str]) -> dict:
    """``names``: "all" stages or the "deep half" (what training records) as a list."""
    names = {"all": stages, "deep half": deep_half(stages)}.get(options.get("names"))
    return options if names is None else dict(options, names=names)


def _row(label: str, scope: ScopeModel, test: OodInputs, kinds: dict[str, OodInputs],
         fit_s: float | None = None) -> dict:
    inside = scope.score(test)
    row = {"detector": label, "fit_s": fit_s,
           "false_alarms": float(np.mean(inside > scope.threshold))}
    for kind, inputs in kinds.items():
        outside = scope.score(inputs)
        truth = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
        row[kind] = (roc_auc_score(truth, np.r_[inside, outside]),
                     float(np.mean(outside > scope.threshold)))
    return row


def _pool(first: OodInputs, second: OodInputs) -> OodInputs:
    return OodInputs(np.r_[first.pooled, second.pooled], np.r_[first.logits, second.logits],
                     {name: np.r_[first.layers[name], second.layers[name]]
                      for name in first.layers})


def resplit(val: OodInputs, test: OodInputs, kinds: dict[str, OodInputs],
            detectors: list, args: argparse.Namespace) -> None:
    """The false alarms of one validation/test split are one draw: pool the two, split
    them at random ``--resplits`` times, fit on one half, count on the other."""
    pool, half = _pool(val, test), len(val)
    print(f"\n{args.resplits} random splits of the {len(pool)} held-out chests into "
          f"{half} to fit and {len(pool) - half} to count false alarms:")
    for label, method, options in detectors:
        options = _resolved(options, list(val.layers))
        rng = np.random.default_rng(args.seed)
        alarms, caught = [], []
        for _ in range(args.resplits):
            order = rng.permutation(len(pool))
            scope = fit_scope_inputs(pool.take(order[:half]), method, args.rate, **options)
            alarms.append(np.mean(scope.score(pool.take(order[half:])) > scope.threshold))
            caught.append(min(np.mean(scope.score(kinds[k]) > scope.threshold)
                              for k in ("tibia", "rotated", "upside-down", "crop")))
        alarms = np.array(alarms)
        print(f"  {label:20s} false alarms mean {alarms.mean():.1%}, above {args.rate:.0%} in "
              f"{np.mean(alarms > args.rate):.0%} of splits (max {alarms.max():.1%}); "
              f"lowest detection of tibia/rotated/upside-down/crop {min(caught):.0%}")


def print_table(rows: list[dict], markdown: bool) -> None:
    head = ["detector", "test FA", *KINDS, "fit s"]
    lines = [head]
    for row in rows:
        cells = [row["detector"], f"{row['false_alarms']:.1%}"]
        cells += [f"{row[k][0]:.3f} / {row[k][1]:.0%}" for k in KINDS]
        lines.append([*cells, "-" if row["fit_s"] is None else f"{row['fit_s']:.2f}"])
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    print("cells: AUROC (test chests against the kind) / detected at the threshold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="an existing run of a chest model (its dataset.json "
                        "must have val and test images); default: train one")
    parser.add_argument("--images", type=int, default=320,
                        help="training chests (validation and test half as many each)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--side", type=int, default=320, help="side of the written PNGs")
    parser.add_argument("--arch", default="efficientnet_lite0")
    parser.add_argument("--per-kind", type=int, default=60)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=max(1, math.floor(
        torch.get_num_threads())))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--resplits", type=int, default=0,
                        help="also refit on this many random splits of val + test chests")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
