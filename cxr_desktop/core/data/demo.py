"""A synthetic chest-radiograph dataset laid out like Object-CXR, made in seconds.

Every image is a phantom drawn with numpy and PIL: soft tissue, dark lungs, a bright
mediastinum and heart, the spine, ribs and clavicles, a smooth random field, then exposure
(gain, offset, gamma) and noise. Position, size and exposure vary from image to image. Half
the images of each split carry one or two radio-opaque foreign objects drawn near white in a
lung field: a coin (disc, annotated as its ellipse), a wire (thin curve, annotated as a
polygon around it) or a device (rectangle with a lead, annotated as the rectangle of its
body; the thin lead is left out, as support-device leads are in Object-CXR).

Everything comes from ``seed``: the same seed writes byte-identical files (given the same
Pillow/libjpeg). A README.txt in the folder lists the planted problems.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cxr_desktop.core.annotations.objectcxr import format_objectcxr, write_objectcxr_csv
from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.atomic import atomic_write_bytes, atomic_write_text

SPLITS = ("train", "dev", "test")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
OBJECT_KINDS = ("coin", "wire", "device")
JPEG_QUALITY = 95
MIN_IMAGES, MIN_SIZE, MAX_SIZE = 10, 64, 2048
TWO_OBJECT_CHANCE = 0.2
_COARSE = 4  # smooth anatomy masks are drawn at 1/_COARSE of the image size


@dataclass(frozen=True)
class PlantedProblem:
    kind: str  # "duplicate" or "corrupt"
    path: str  # relative to the dataset root, e.g. "test/00123.jpg"
    detail: str


@dataclass(frozen=True)
class DemoSummary:
    root: Path
    counts: dict[str, int]  # rows of each split's CSV, planted files included
    positives: dict[str, int]  # rows with at least one object
    planted: tuple[PlantedProblem, ...] = field(default=())

    def line(self) -> str:
        splits = ", ".join(
            f"{s} {self.counts[s]} ({self.positives[s]} with objects)" for s in SPLITS
        )
        planted = "; ".join(f"{p.kind} {p.path}" for p in self.planted)
        return f"demo dataset in {self.root}: {splits}; planted: {planted}"


@dataclass
class _Entry:
    split: str
    data: bytes
    shapes: list[Shape]
    planted: PlantedProblem | None = None


class _Phantom:
    """Draws one image; ``rng`` decides every random choice, ``size`` the side in pixels."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.s = size
        self.rng = rng
        axis = np.arange(size, dtype=np.float32)
        self.xx, self.yy = axis[None, :], axis[:, None]
        self.cx = size * (0.5 + rng.normal(0, 0.02))
        self.scale = rng.uniform(0.9, 1.06)
        self.top = size * rng.uniform(0.0, 0.05)
        w, h = self.scale * size * rng.uniform(0.27, 0.31), size * rng.uniform(0.5, 0.58)
        apex = self.top + size * 0.12
        gap = size * rng.uniform(0.035, 0.055)
        # (x0, y0, x1, y1) of each lung; the right lung (image left) is a little wider.
        self.lungs = [
            (self.cx - gap - w * rng.uniform(1.0, 1.06), apex, self.cx - gap, apex + h),
            (self.cx + gap, apex, self.cx + gap + w * rng.uniform(0.94, 1.0), apex + h),
        ]

    def _mask(self, draw: Callable[[ImageDraw.ImageDraw], object], blur: float) -> np.ndarray:
        """A soft 0..1 mask from a PIL drawing callback on an 'L' canvas."""
        canvas = Image.new("L", (self.s, self.s), 0)
        draw(ImageDraw.Draw(canvas))
        if blur > 0:
            canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
        return np.asarray(canvas, dtype=np.float32) / 255.0

    def _smooth_field(self, cells: int, amplitude: float) -> np.ndarray:
        small = self.rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
        big = Image.fromarray(small).resize((self.s, self.s), Image.Resampling.BICUBIC)
        return (np.asarray(big, dtype=np.float32) / 255.0 - 0.5) * 2 * amplitude

    def _filled(self, blur: float, ellipses: Sequence[Sequence[float]],
                rectangles: Sequence[Sequence[float]] = ()) -> np.ndarray:
        """A soft mask of filled ellipses and rectangles, each given by its box.

        These masks are blurred a lot, so they are drawn at a quarter of the size and scaled
        up: the same look for a tenth of the time.
        """
        small = max(1, self.s // _COARSE)
        factor = small / self.s
        canvas = Image.new("L", (small, small), 0)
        draw = ImageDraw.Draw(canvas)
        for box in ellipses:
            draw.ellipse([v * factor for v in box], fill=255)
        for box in rectangles:
            draw.rectangle([v * factor for v in box], fill=255)
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur * factor))
        canvas = canvas.resize((self.s, self.s), Image.Resampling.BILINEAR)
        return np.asarray(canvas, dtype=np.float32) / 255.0

    def anatomy(self) -> np.ndarray:
        s, rng, cx = self.s, self.rng, self.cx
        half = s * 0.5 * self.scale
        body = self._filled(s / 30, [[cx - half, self.top, cx + half, s * 1.35]])
        lungs = self._filled(s / 40, [list(box) for box in self.lungs])
        heart_w, heart_h = s * rng.uniform(0.15, 0.19), s * rng.uniform(0.12, 0.15)
        heart_cx, heart_cy = cx + s * rng.uniform(0.03, 0.06), self.lungs[0][3] - heart_h * 0.9
        mediastinum = self._filled(
            s / 50,
            [[heart_cx - heart_w, heart_cy - heart_h, heart_cx + heart_w, heart_cy + heart_h]],
            [[cx - s * 0.05, self.top, cx + s * 0.05, heart_cy]],
        )
        spine_half = s * 0.035
        spine = np.clip(1 - np.abs(self.xx - cx) / spine_half, 0, 1) ** 0.5
        spine = spine * (0.8 + 0.2 * np.cos(2 * np.pi * self.yy / (s / rng.uniform(12, 15))))
        bones = self._mask(self._draw_bones, s / 200)
        bottom = self.lungs[0][3]
        breasts = self._filled(s / 20, [[x - s * 0.14, bottom - s * 0.12, x + s * 0.14,
                                         bottom + s * 0.1] for x in (cx - s * 0.25, cx + s * 0.25)])
        image = 12 + 95 * body
        image -= 50 * lungs * (1 - mediastinum)
        image += 28 * mediastinum + 26 * spine * body + 25 * bones * body
        image += rng.uniform(0, 12) * breasts + self._smooth_field(6, 7) * body
        return image

    def _draw_bones(self, draw: ImageDraw.ImageDraw) -> None:
        """Ribs (a little fainter) and clavicles on one canvas."""
        s, rng = self.s, self.rng
        width = max(2, round(s / 55))
        spacing = (self.lungs[0][3] - self.lungs[0][1]) / 9.5
        droop = rng.uniform(0.6, 1.0)
        for side in (-1, 1):
            for i in range(10):
                y0 = self.lungs[0][1] + i * spacing - s * 0.02
                xs = np.linspace(0, s * 0.33 * self.scale, 8)
                ys = y0 + droop * (xs / s) ** 1.7 * s * 1.3 - (xs / s) * s * 0.12
                pts = [(self.cx + side * (s * 0.03 + x), y) for x, y in zip(xs, ys, strict=True)]
                draw.line(pts, fill=205, width=width)
        y = self.lungs[0][1] + s * rng.uniform(-0.01, 0.02)
        for side in (-1, 1):
            draw.line([(self.cx + side * s * 0.05, y + s * 0.02),
                       (self.cx + side * s * 0.2, y - s * 0.01),
                       (self.cx + side * s * 0.34 * self.scale, y - s * 0.04)],
                      fill=255, width=max(2, round(s / 40)), joint="curve")

    def _spot(self, margin: float) -> tuple[float, float]:
        """A random point inside a lung field, at least ``margin`` px from its box edges."""
        x0, y0, x1, y1 = self.lungs[int(self.rng.integers(2))]
        lo_x, hi_x = x0 + margin, max(x0 + margin, x1 - margin)
        lo_y, hi_y = y0 + margin, max(y0 + margin, y1 - margin * 1.5)
        return float(self.rng.uniform(lo_x, hi_x)), float(self.rng.uniform(lo_y, hi_y))

    def _clip(self, value: float) -> int:
        return int(min(max(round(value), 0), self.s - 1))

    def foreign_object(self, kind: str) -> tuple[np.ndarray, Shape]:
        """A 0..1 mask of the object and its annotation in pixel coordinates."""
        s, rng = self.s, self.rng
        if kind == "coin":
            r = s * rng.uniform(0.025, 0.045)
            x, y = self._spot(r + 2)
            box = [self._clip(x - r), self._clip(y - r), self._clip(x + r), self._clip(y + r)]
            mask = self._mask(lambda d: d.ellipse(box, fill=255), 0.6)
            return mask, Shape("coin", "ellipse", ((box[0], box[1]), (box[2], box[3])))
        if kind == "device":
            w, h = s * rng.uniform(0.06, 0.1), s * rng.uniform(0.04, 0.07)
            x, y = self._spot(max(w, h) / 2 + 2)
            box = [self._clip(x - w / 2), self._clip(y - h / 2),
                   self._clip(x + w / 2), self._clip(y + h / 2)]
            side = 1 if rng.random() < 0.5 else -1
            lead_start = (box[2] if side > 0 else box[0], (box[1] + box[3]) / 2)
            lead = [lead_start, (lead_start[0] + side * s * 0.06, lead_start[1] - s * 0.05),
                    (lead_start[0] + side * s * 0.08, lead_start[1] - s * 0.15)]

            def draw_device(d: ImageDraw.ImageDraw) -> None:
                d.rectangle(box, fill=255)
                d.line(lead, fill=200, width=max(1, round(s / 150)), joint="curve")

            mask = self._mask(draw_device, 0.6)
            return mask, Shape("device", "rectangle", ((box[0], box[1]), (box[2], box[3])))
        return self._wire()

    def _wire(self) -> tuple[np.ndarray, Shape]:
        s, rng = self.s, self.rng
        length = s * rng.uniform(0.15, 0.28)
        width = max(2, round(s / 90))
        x, y = self._spot(length / 2 + width)
        angle = rng.uniform(0, math.pi)
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        bend = rng.uniform(-0.35, 0.35) * length
        p0, p2 = np.array([x - dx, y - dy]), np.array([x + dx, y + dy])
        p1 = (p0 + p2) / 2 + bend * np.array([-math.sin(angle), math.cos(angle)])
        t = np.linspace(0, 1, 25)[:, None]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        tangent = 2 * (1 - t) * (p1 - p0) + 2 * t * (p2 - p1)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        offset = width / 2 + 1
        ends = curve[::3]
        outline = np.concatenate([ends + offset * normal[::3], (ends - offset * normal[::3])[::-1]])
        points = tuple((self._clip(px), self._clip(py)) for px, py in outline)
        line = [(float(px), float(py)) for px, py in curve]
        mask = self._mask(lambda d: d.line(line, fill=255, width=width, joint="curve"), 0.5)
        return mask, Shape("wire", "polygon", points)

    def render(self, kinds: list[str]) -> tuple[np.ndarray, list[Shape]]:
        rng = self.rng
        image = self.anatomy()
        gain, offset = rng.uniform(0.85, 1.08), rng.uniform(-8, 8)
        image = np.clip(image * gain + offset, 0, 255)
        image = 255 * (image / 255) ** rng.uniform(0.85, 1.15)
        shapes = []
        for kind in kinds:
            mask, shape = self.foreign_object(kind)
            image = image * (1 - mask) + rng.uniform(215, 250) * mask
            shapes.append(shape)
        image += rng.uniform(2, 5) * rng.standard_normal(image.shape, dtype=np.float32)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8), shapes


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _split_sizes(n_images: int) -> dict[str, int]:
    n_train = round(n_images * SPLIT_FRACTIONS[0])
    n_dev = round(n_images * SPLIT_FRACTIONS[1])
    return {"train": n_train, "dev": n_dev, "test": n_images - n_train - n_dev}


def _readme(summary: DemoSummary, n_images: int, size: int, seed: int) -> str:
    planted = "\n".join(f"- {p.kind}: {p.path}: {p.detail}" for p in summary.planted)
    counts = "\n".join(
        f"- {s}/ and {s}.csv: {summary.counts[s]} images, {summary.positives[s]} with objects"
        for s in SPLITS
    )
    return f"""cxr-desktop synthetic demo dataset (not real patients)

Made by `cxr-desktop demo-data` with --images {n_images} --size {size} --seed {seed};
the same options make byte-identical files.

Layout (as Object-CXR): image folders train/ dev/ test/ of {size}x{size} 8-bit grayscale JPEGs
(quality {JPEG_QUALITY}) and train.csv dev.csv test.csv with columns image_name,annotation.
image_name is the file name inside the split's folder. An empty annotation means no foreign
object; otherwise objects are separated by ';' and the numbers of one object by spaces, the
first number the shape: 0 rectangle x1 y1 x2 y2, 1 ellipse in its box x1 y1 x2 y2,
2 polygon x1 y1 ... xn yn, in pixels from the upper-left corner.
{counts}

Each image is a drawn chest phantom (lungs, mediastinum, spine, ribs, clavicles, soft
tissue, exposure and noise that vary). Half the images of each split carry one or two
radio-opaque foreign objects in a lung field: coin (ellipse annotation), wire (polygon
around the wire) or device (rectangle around its body; its thin lead is not annotated).

Problems planted on purpose, for the data checks to find:
{planted}
"""


def _plan(n_images: int, rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """``(split, object kinds)`` for every image, half of each split with objects."""
    plan = []
    for split, count in _split_sizes(n_images).items():
        positives = count // 2
        kinds = [OBJECT_KINDS[i % len(OBJECT_KINDS)] for i in range(positives)]
        rng.shuffle(kinds)
        rows: list[list[str]] = [[kind] for kind in kinds] + [[] for _ in range(count - positives)]
        for row in rows[:positives]:
            if rng.random() < TWO_OBJECT_CHANCE:
                row.append(OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))])
        order = rng.permutation(count)
        plan.extend((split, rows[i]) for i in order)
    return plan


def make_demo_dataset(
    out_dir: str | Path, n_images: int = 200, size: int = 256, seed: int = 0
) -> DemoSummary:
    """Write the demo dataset into ``out_dir`` (created if needed; files of the same names
    are replaced, nothing else is touched) and return what was written.

    ``n_images`` good images are split about 60/20/20; two planted files come on top: a
    byte-exact copy of a train image in test/ (listed in test.csv with the same annotation)
    and a JPEG cut in half in train/ (listed in train.csv as a negative).
    """
    if n_images < MIN_IMAGES:
        raise ValueError(f"the demo needs at least {MIN_IMAGES} images, not {n_images}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"image size must be {MIN_SIZE} to {MAX_SIZE} pixels, not {size}")
    root = Path(out_dir)
    seeds = np.random.SeedSequence(seed)
    plan_rng, planted_rng = (np.random.default_rng(s) for s in seeds.spawn(2))
    image_seeds = seeds.spawn(n_images + 1)

    entries: dict[str, list[_Entry]] = {split: [] for split in SPLITS}
    for (split, kinds), image_seed in zip(_plan(n_images, plan_rng), image_seeds[:n_images],
                                          strict=True):
        pixels, shapes = _Phantom(size, np.random.default_rng(image_seed)).render(kinds)
        entries[split].append(_Entry(split, _jpeg(pixels), shapes))

    positive_train = [e for e in entries["train"] if e.shapes]
    original = positive_train[int(planted_rng.integers(len(positive_train)))]
    duplicate = _Entry("test", original.data, list(original.shapes))
    corrupt_pixels, _ = _Phantom(size, np.random.default_rng(image_seeds[-1])).render([])
    corrupt_bytes = _jpeg(corrupt_pixels)
    corrupt = _Entry("train", corrupt_bytes[: len(corrupt_bytes) // 2], [])
    for planted in (duplicate, corrupt):
        split_entries = entries[planted.split]
        split_entries.insert(int(planted_rng.integers(len(split_entries) + 1)), planted)

    number = 0
    names: dict[int, str] = {}
    for split in SPLITS:
        rows: dict[str, list[Shape]] = {}
        for entry in entries[split]:
            number += 1
            name = f"{number:05d}.jpg"
            names[id(entry)] = f"{split}/{name}"
            atomic_write_bytes(root / split / name, entry.data)
            rows[name] = entry.shapes
        write_objectcxr_csv(root / f"{split}.csv", rows)

    annotation = format_objectcxr(original.shapes)
    planted_problems = (
        PlantedProblem("duplicate", names[id(duplicate)],
                       f"byte-exact copy of {names[id(original)]} "
                       f"(same annotation \"{annotation}\")"),
        PlantedProblem("corrupt", names[id(corrupt)],
                       f"JPEG cut in half ({len(corrupt.data)} of {len(corrupt_bytes)} bytes); "
                       "listed as a negative"),
    )
    summary = DemoSummary(
        root=root,
        counts={split: len(entries[split]) for split in SPLITS},
        positives={split: sum(bool(e.shapes) for e in entries[split]) for split in SPLITS},
        planted=planted_problems,
    )
    atomic_write_text(root / "README.txt", _readme(summary, n_images, size, seed))
    return summary
