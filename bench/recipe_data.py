"""Datasets for ``bench/recipe.py``: real radiographs as backgrounds, planted findings.

No test of the project uses these images. Every image is a different view of a real
computed radiograph from pydicom-data (``RG1_UNCI.dcm``, a CR chest PA; ``RG3_UNCI.dcm``, a
distal tibia), both MONOCHROME1, read through the app's own chain into display polarity: a
random crop of 55-95 % of the side, a rotation up to 8 degrees, a small shear, a flip, a
gamma and contrast change, a smooth shading ramp and sensor noise. Findings are drawn on top
at random places, faint ones included, so that a plain fine-tuning loop does not reach an
AUC of 1 in a few epochs:

- ``chest-fo`` (binary, Object-CXR-like): radio-opaque foreign objects on the chest (coins,
  rings, rectangles, wires, staple clusters), 1-3 per positive image, of varied contrast.
- ``limb-3class`` (multi-class): the tibia and, for a quarter of the images, the chest;
  ``normal``, ``fracture`` (a thin jagged lucent line) or ``lesion`` (a soft round lucent or
  sclerotic area).
- ``chest-nih`` (multi-label): label rows from NIH ChestX-ray14's real ``Data_Entry_2017``
  (``bench/data/nih_label_rows.csv``: 738 PA rows, their real findings and patient IDs) and,
  for each, the findings of interest planted: ``Infiltration`` (a patchy opacity),
  ``Effusion`` (a basal haze with a meniscus), ``Nodule`` (a small round opacity),
  ``Pneumothorax`` (an apical lucent band with a pleural line).

Binary and three-class sets are written as class folders under ``train/ val/ test/`` (the
commonest layout users bring); the multi-label set as PNGs with a saved dataset spec
(``spec.json``, what ``cxr-desktop inspect --save-spec`` writes). Every set also gets
``labels.csv`` (``path, split, target``) for the plain loop.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.ndimage import gaussian_filter

NIH_ROWS = Path(__file__).with_name("data") / "nih_label_rows.csv"
NIH_FINDINGS = ("Infiltration", "Effusion", "Nodule", "Pneumothorax")
DATASETS = ("chest-fo", "limb-3class", "chest-nih")
SOURCE_SIDE = 1000  # the radiographs are decoded once and kept at about this side


@dataclass
class Split:
    train: int
    val: int
    test: int

    @classmethod
    def from_train(cls, train: int) -> Split:
        return cls(train, max(train // 2, 24), max(train // 2, 24))

    def names(self) -> list[str]:
        return ["train"] * self.train + ["val"] * self.val + ["test"] * self.test


def _radiograph(name: str) -> np.ndarray:
    """A pydicom-data radiograph in display polarity, float32, side about SOURCE_SIDE."""
    from pydicom.data import get_testdata_file

    from cxr_desktop.core.io import load_image, to_display

    display = to_display(load_image(get_testdata_file(name)))
    image = Image.fromarray(display)
    scale = SOURCE_SIDE / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float32)


def background(rng: np.random.Generator, source: np.ndarray, side: int) -> np.ndarray:
    """A random view of ``source``: crop, rotation, shear, flip, gamma, shading, noise."""
    height, width = source.shape
    crop = rng.uniform(0.55, 0.95) * min(height, width)
    cy = rng.uniform(crop / 2, height - crop / 2)
    cx = rng.uniform(crop / 2, width - crop / 2)
    angle = math.radians(rng.uniform(-8, 8))
    shear = rng.uniform(-0.06, 0.06)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    scale = crop / side
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # Output (u, v) -> source (x, y), about the centres.
    a, b = cos * flip, -sin + shear * scale
    d, e = sin * flip, cos
    c = cx - a * side / 2 - b * side / 2
    f = cy - d * side / 2 - e * side / 2
    view = Image.fromarray(source).transform((side, side), Image.Transform.AFFINE,
                                             (a, b, c, d, e, f), Image.Resampling.BILINEAR)
    image = np.asarray(view, dtype=np.float32) / 255.0
    image = np.clip(image, 0, 1) ** rng.uniform(0.7, 1.4)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    ramp = rng.uniform(-0.08, 0.08) * (xx - 0.5) + rng.uniform(-0.08, 0.08) * (yy - 0.5)
    image = (image - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.06, 0.06) + ramp
    return image * 255.0 + rng.normal(0, rng.uniform(2, 7), image.shape).astype(np.float32)


def _mask(side: int, draw_fn, blur: float = 0.6) -> np.ndarray:
    """A soft [0, 1] mask drawn at 2x and reduced (antialiased edges)."""
    canvas = Image.new("L", (2 * side, 2 * side), 0)
    draw_fn(ImageDraw.Draw(canvas), 2.0)
    canvas = canvas.resize((side, side), Image.Resampling.BOX)
    if blur:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _gauss(side: int, cy: float, cx: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))


def _foreign_object(rng: np.random.Generator, side: int) -> np.ndarray:
    kind = rng.choice(["coin", "ring", "rect", "wire", "staples"])
    cy, cx = rng.uniform(0.12, 0.88, 2) * side

    def draw(canvas: ImageDraw.ImageDraw, k: float) -> None:
        if kind in ("coin", "ring"):
            r = rng.uniform(0.015, 0.035) * side * k
            ry = r * rng.uniform(0.7, 1.0)
            box = [cx * k - r, cy * k - ry, cx * k + r, cy * k + ry]
            if kind == "coin":
                canvas.ellipse(box, fill=255)
            else:
                canvas.ellipse(box, outline=255, width=max(2, int(rng.uniform(1, 2.5) * k)))
        elif kind == "rect":
            w, h = rng.uniform(0.015, 0.05, 2) * side * k
            t = rng.uniform(0, math.pi)
            corners = [(-w, -h), (w, -h), (w, h), (-w, h)]
            canvas.polygon([(cx * k + x * math.cos(t) - y * math.sin(t),
                             cy * k + x * math.sin(t) + y * math.cos(t)) for x, y in corners],
                           fill=255)
        elif kind == "wire":
            length = rng.uniform(0.12, 0.35) * side * k
            t0, bend = rng.uniform(0, 2 * math.pi), rng.uniform(-1.2, 1.2)
            points = [(cx * k + length * s * math.cos(t0 + bend * s),
                       cy * k + length * s * math.sin(t0 + bend * s))
                      for s in np.linspace(-0.5, 0.5, 12)]
            canvas.line(points, fill=255, width=max(2, int(rng.uniform(1, 2) * k)))
        else:
            for _ in range(rng.integers(3, 7)):
                x = (cx + rng.normal(0, 0.015 * side)) * k
                y = (cy + rng.normal(0, 0.015 * side)) * k
                length, t = rng.uniform(0.006, 0.012) * side * k, rng.uniform(0, math.pi)
                canvas.line([(x - length * math.cos(t), y - length * math.sin(t)),
                             (x + length * math.cos(t), y + length * math.sin(t))],
                            fill=255, width=max(2, int(k)))

    return _mask(side, draw)


def chest_fo(rng: np.random.Generator, source: np.ndarray, side: int,
             positive: bool) -> np.ndarray:
    image = background(rng, source, side)
    if positive:
        for _ in range(rng.integers(1, 4)):
            image += rng.uniform(30, 100) * _foreign_object(rng, side)
    return image


LIMB_CLASSES = ("normal", "fracture", "lesion")


def limb(rng: np.random.Generator, sources: list[np.ndarray], side: int,
         label: str) -> np.ndarray:
    image = background(rng, sources[0] if rng.random() < 0.75 else sources[1], side)
    cy, cx = rng.uniform(0.2, 0.8, 2) * side
    if label == "fracture":
        length, t0 = rng.uniform(0.15, 0.35) * side, rng.uniform(0, math.pi)
        steps = rng.integers(3, 6)

        def draw(canvas: ImageDraw.ImageDraw, k: float) -> None:
            points = []
            for s in np.linspace(-0.5, 0.5, steps + 1):
                jitter = rng.normal(0, 0.012 * side)
                points.append(((cx + length * s * math.cos(t0) - jitter * math.sin(t0)) * k,
                               (cy + length * s * math.sin(t0) + jitter * math.cos(t0)) * k))
            canvas.line(points, fill=255, width=int(rng.uniform(2, 3.5) * k))

        image -= rng.uniform(35, 80) * _mask(side, draw)
    elif label == "lesion":
        sign = 1.0 if rng.random() < 0.5 else -1.0
        image += sign * rng.uniform(30, 60) * _gauss(side, cy, cx,
                                                     rng.uniform(0.03, 0.07) * side)
    return image


def _smooth_noise(rng: np.random.Generator, side: int, cells: int) -> np.ndarray:
    coarse = Image.fromarray(rng.random((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)


def chest_nih(rng: np.random.Generator, source: np.ndarray, side: int,
              findings: set[str]) -> np.ndarray:
    image = background(rng, source, side)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    if "Infiltration" in findings:
        cy, cx = rng.uniform(0.3, 0.7, 2)
        region = _gauss(side, cy * side, cx * side, rng.uniform(0.1, 0.16) * side)
        patches = np.clip(_smooth_noise(rng, side, 12) * 2 - 0.8, 0, 1)
        image += rng.uniform(35, 65) * region * patches
    if "Effusion" in findings:
        left = rng.random() < 0.5
        lateral = (1 - xx) if left else xx  # 1 at the lateral edge of that half
        level = rng.uniform(0.65, 0.85) - 0.15 * lateral  # the meniscus rises laterally
        fade = 1 / (1 + np.exp(-(lateral - 0.55) / 0.05))  # fades towards the midline
        haze = (fade / (1 + np.exp(-(yy - level) / 0.02))).astype(np.float32)
        haze = gaussian_filter(haze, side * 0.01)
        image += rng.uniform(40, 75) * haze
    if "Nodule" in findings:
        for _ in range(rng.integers(1, 3)):
            cy, cx = rng.uniform(0.2, 0.8, 2) * side
            image += rng.uniform(40, 80) * _gauss(side, cy, cx, rng.uniform(0.012, 0.025) * side)
    if "Pneumothorax" in findings:
        left = rng.random() < 0.5
        lateral = (0.5 - xx) if left else (xx - 0.5)
        depth = rng.uniform(0.08, 0.16)
        band = (lateral > 0.5 - depth) & (yy < rng.uniform(0.45, 0.65))
        band_mask = gaussian_filter(band.astype(np.float32), side * 0.008)
        edge = band_mask * (1 - band_mask) * 4
        image += -rng.uniform(35, 60) * band_mask + rng.uniform(25, 45) * edge
    return image


def _save(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).save(path)


def _write_labels(root: Path, rows: list[tuple[str, str, str]]) -> None:
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", "target"])
        writer.writerows(rows)


def make_dataset(name: str, root: Path, train: int, side: int = 320, seed: int = 0) -> Path:
    """Write dataset ``name`` under ``root``; returns what ``cxr-desktop train`` is given
    (the folder, or the spec file). ``labels.csv`` has the plain loop's view of it:
    the binary target (0/1), the class index, or the multi-label targets joined by ``|``."""
    rng = np.random.default_rng(seed)
    split = Split.from_train(train)
    rows: list[tuple[str, str, str]] = []
    if name == "chest-fo":
        chest = _radiograph("RG1_UNCI.dcm")
        for index, part in enumerate(split.names()):
            positive = index % 2 == 1
            label = "object" if positive else "clear"
            relative = f"{part}/{label}/{index:05d}.png"
            _save(chest_fo(rng, chest, side, positive), root / relative)
            rows.append((relative, part, str(int(positive))))
        _write_labels(root, rows)
        return root
    if name == "limb-3class":
        sources = [_radiograph("RG3_UNCI.dcm"), _radiograph("RG1_UNCI.dcm")]
        for index, part in enumerate(split.names()):
            label = LIMB_CLASSES[index % 3]
            relative = f"{part}/{label}/{index:05d}.png"
            _save(limb(rng, sources, side, label), root / relative)
            rows.append((relative, part, str(LIMB_CLASSES.index(label))))
        _write_labels(root, rows)
        return root
    if name == "chest-nih":
        return _make_nih(root, split, side, rng, rows)
    raise SystemExit(f"unknown dataset {name!r}: one of {', '.join(DATASETS)}")


def _make_nih(root: Path, split: Split, side: int, rng: np.random.Generator,
              rows: list[tuple[str, str, str]]) -> Path:
    from cxr_desktop.core.data.spec import DatasetSpec, ImageItem

    chest = _radiograph("RG1_UNCI.dcm")
    with open(NIH_ROWS, newline="", encoding="utf-8") as handle:
        label_rows = list(csv.DictReader(handle))
    items = []
    for index, part in enumerate(split.names()):
        row = label_rows[index % len(label_rows)]
        findings = set(row["Finding Labels"].split("|")) & set(NIH_FINDINGS)
        relative = f"images/{index:05d}_{row['Image Index']}"
        _save(chest_nih(rng, chest, side, findings), root / relative)
        labels = {f: float(f in findings) for f in NIH_FINDINGS}
        items.append(ImageItem(relative, part, f"{row['Patient ID']}-{index}", labels))
        rows.append((relative, part, "|".join(str(int(v)) for v in labels.values())))
    _write_labels(root, rows)
    spec = DatasetSpec(root, "multilabel", list(NIH_FINDINGS), None, items)
    return spec.save(root / "spec.json")
