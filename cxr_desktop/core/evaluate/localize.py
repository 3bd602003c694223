"""``localize``: where a run's maps point on the annotated images of a split, measured.

Every annotated positive (an image positive for a class that carries shapes of that class)
is scored: the map's peak, the pointing-game hit, the energy inside the shapes. The FROC
curve adds the negatives of each class, whose points can only be false positives. The
images go through the preprocessed cache at the run's input size, as predictions do, and
the maps are computed a batch at a time (``batch_cam``). On the dataset the run was trained
on, the run's own splits are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.cache import build_cache
from cxr_desktop.core.data.importers.geometry import image_size
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.evaluate.localization import (
    POINTING_TOLERANCE,
    FrocCurve,
    ImageScore,
    bootstrap_share_ci,
    bounds_hit,
    energy_in,
    froc,
    local_maxima,
    peak,
    shapes_mask,
    to_image,
)
from cxr_desktop.core.evaluate.predictions import (
    class_order,
    same_dataset,
    split_rows,
    trained_spec,
    with_run_splits,
)
from cxr_desktop.core.infer.batch_cam import batch_maps, check_method, from_forward
from cxr_desktop.core.runs.folder import jsonable
from cxr_desktop.core.runs.load import load_run
from cxr_desktop.core.train.engine import pick_device

#: Negatives per class scored for the FROC when every map needs a backward pass.
MAX_NEGATIVES = 500
#: Maps of misses kept for the report's overlays and the Evaluate page's gallery.
MAX_MISS_MAPS = 200
#: A model this good on AUC whose maps hit less often than ``SHORTCUT_POINTING`` is warned of.
SHORTCUT_AUC, SHORTCUT_POINTING = 0.8, 0.5

Progress = Callable[[int, int], None]


@dataclass
class Localization:
    """The scores of one run's maps on one split (``images``: the annotated positives)."""

    run_dir: str
    split: str
    method: str
    layer: str
    images: list[ImageScore]
    froc: FrocCurve
    negatives: int
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    pointing_game_ci: tuple[float, float] = (float("nan"), float("nan"))
    notes: list[str] = field(default_factory=list)
    #: (image, label) -> the map at the model's input size (float16), for the first misses.
    miss_maps: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.images)

    @property
    def pointing_game(self) -> float:
        return float(np.mean([s.hit for s in self.images])) if self.images else float("nan")

    @property
    def energy_in_boxes(self) -> float:
        return float(np.mean([s.energy_in_boxes for s in self.images])) if self.images \
            else float("nan")

    def misses(self) -> list[ImageScore]:
        return [s for s in self.images if not s.hit]

    def shortcut_warning(self, auc: float | None) -> str | None:
        """A sentence when the model classifies well but its maps mostly miss."""
        if auc is None or not np.isfinite(auc) or not self.images:
            return None
        if auc >= SHORTCUT_AUC and self.pointing_game < SHORTCUT_POINTING:
            return (f"AUC {auc:.3f} but the {self.method} peak falls on the annotation in only "
                    f"{sum(s.hit for s in self.images)} of {self.n} images: the model may use "
                    "shortcuts: look at these images")
        return None

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "run_dir": self.run_dir, "split": self.split, "method": self.method,
            "layer": self.layer, "n": self.n, "pointing_game": self.pointing_game,
            "pointing_game_ci": list(self.pointing_game_ci),
            "energy_in_boxes": self.energy_in_boxes, "negatives": self.negatives,
            "froc": self.froc.to_dict(), "per_class": self.per_class, "notes": self.notes})


def class_shapes(item: ImageItem, name: str, task: str) -> list[Shape]:
    """The shapes of ``item`` that show class ``name``: those labelled with it, or for a
    binary task every shape when none is labelled with a class name (the user's drawings)."""
    named = [s for s in item.shapes if s.label == name]
    return named or (list(item.shapes) if task == "binary" else [])


def _pairs(spec: DatasetSpec, rows: np.ndarray, outputs: list[str], columns: list[int],
           limit: int | None, seed: int
           ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], bool]:
    """(annotated positives, negatives) as (item row, output) pairs, and whether the
    negatives were cut to ``limit`` per class."""
    targets = spec.targets()
    positives: list[tuple[int, int]] = []
    negatives: list[tuple[int, int]] = []
    capped = False
    rng = np.random.default_rng(seed)
    for output, (name, column) in enumerate(zip(outputs, columns, strict=True)):
        if spec.task == "binary":
            truth = targets[rows]
        elif spec.task == "multiclass":
            truth = (targets[rows] == column).astype(np.float32)
        else:
            truth = targets[rows, column]
        pos = [int(r) for r, t in zip(rows, truth, strict=True)
               if t == 1 and class_shapes(spec.items[int(r)], name, spec.task)]
        neg = [int(r) for r, t in zip(rows, truth, strict=True) if t == 0]
        if limit is not None and len(neg) > limit:
            neg = sorted(rng.choice(neg, size=limit, replace=False).tolist())
            capped = True
        positives += [(r, output) for r in pos]
        negatives += [(r, output) for r in neg]
    return positives, negatives, capped


def localize(run_dir: str | Path, spec: DatasetSpec, split: str = "test", *,
             method: str = "gradcam", layer: str | None = None, device: str = "auto",
             batch_size: int = 32, cache_root: str | Path | None = None, workers: int = 0,
             n_boot: int = 1000, seed: int = 0, progress: Progress | None = None
             ) -> Localization:
    """Score the maps of the run in ``run_dir`` on the annotated images of ``split``.

    CxrError when the split has no annotated positive, the method or layer does not fit the
    model, or the run's classes differ from the dataset's.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileError(run_dir, "run folder not found")
    run = load_run(run_dir, device="cpu")
    model, meta = run.model, run.metadata
    layer = layer or model.default_cam_layer
    check_method(model, method, layer)
    order = class_order(run, spec, run_dir)
    trained = trained_spec(Path(run.checkpoint_path).parent)
    if trained is not None and same_dataset(trained, spec):
        spec, _ = with_run_splits(spec, trained)
    rows = split_rows(spec, split)
    outputs = [str(meta["positive_class"])] if spec.task == "binary" else \
        [str(c) for c in meta["classes"]]
    columns = [0] if spec.task == "binary" else (order or list(range(len(outputs))))
    forward = from_forward(model, method, layer)
    positives, negatives, capped = _pairs(spec, rows, outputs, columns,
                                          None if forward else MAX_NEGATIVES, seed)
    if not positives:
        where = spec.source.get("path") or spec.root
        raise CxrError(f"{where}: no image of split {split!r} is a positive with an "
                       "annotation of its class, so there is nothing to localize")
    pairs = positives + negatives
    needed = sorted({r for r, _ in pairs})
    paths = [str(spec.abspath(spec.items[r])) for r in needed]
    size = int(meta["input_size"])
    cache = build_cache(paths, size, root=cache_root, workers=workers)
    where = {r: i for i, r in enumerate(needed) if cache.valid[i]}
    skipped = [p for p in pairs if p[0] not in where]
    pairs = [p for p in pairs if p[0] in where]
    torch_device = pick_device(device)
    model.to(torch_device)
    scores: list[ImageScore] = []
    miss_maps: dict[tuple[str, str], np.ndarray] = {}
    froc_images: list[tuple[list[tuple[float, float, float]], list[Shape]]] = []
    n_pos = len(set(positives) & set(pairs))
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        result = batch_maps(model, cache.images[[where[r] for r, _ in chunk]],
                            [o for _, o in chunk], method=method, layer=layer,
                            task=spec.task, device=torch_device)
        for i, (row, output) in enumerate(chunk):
            prob = float(result.probs[i] if result.probs.ndim == 1 else result.probs[i, output])
            item = spec.items[row]
            score, entry = _score(item, spec, outputs[output], result.maps[i], prob, size,
                                  start + i < n_pos)
            if score is not None:
                scores.append(score)
                if not score.hit and len(miss_maps) < MAX_MISS_MAPS:
                    miss_maps[(score.image, score.label)] = result.maps[i].astype(np.float16)
            froc_images.append(entry)
        if progress:
            progress(min(start + batch_size, len(pairs)), len(pairs))
    notes = [f"{len(skipped)} image(s) could not be read and were left out"] if skipped else []
    if capped:
        notes.append(f"FROC on at most {MAX_NEGATIVES} negatives per class ({method} needs a "
                     "backward pass per image)")
    hits = np.array([s.hit for s in scores], dtype=bool)
    return Localization(str(run_dir), split, method, layer, scores, froc(froc_images),
                        len(pairs) - n_pos, _per_class(scores, n_boot, seed),
                        bootstrap_share_ci(hits, n_boot, seed), notes, miss_maps)


def _score(item: ImageItem, spec: DatasetSpec, name: str, cam: np.ndarray, prob: float,
           size: int, positive: bool
           ) -> tuple[ImageScore | None, tuple[list[tuple[float, float, float]], list[Shape]]]:
    """One map scored: the image score (positives) and its FROC points and shapes."""
    path = str(spec.abspath(item))
    dims = image_size(Path(path))
    if dims is None:
        columns = rows = size
    else:
        columns, rows = dims
    scale = (size / columns, size / rows)
    points = [(*to_image((x, y), scale), prob * value) for x, y, value in local_maxima(cam)]
    if not positive:
        return None, (points, [])
    shapes = class_shapes(item, name, spec.task)
    top = peak(cam)
    peak_xy = to_image(top, scale) if top is not None else None
    tolerance = POINTING_TOLERANCE / min(scale)  # input pixels -> image pixels
    hit = peak_xy is not None and bounds_hit(peak_xy[0], peak_xy[1], shapes, tolerance)
    energy = energy_in(cam, shapes_mask(shapes, cam.shape, scale))
    score = ImageScore(path, name, prob, None if peak_xy is None else round(peak_xy[0], 1),
                       None if peak_xy is None else round(peak_xy[1], 1), hit, energy)
    return score, (points, shapes)


def _per_class(scores: list[ImageScore], n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({s.label for s in scores}):
        mine = [s for s in scores if s.label == name]
        hits = np.array([s.hit for s in mine], dtype=bool)
        out[name] = {"n": len(mine), "pointing_game": float(hits.mean()),
                     "pointing_game_ci": list(bootstrap_share_ci(hits, n_boot, seed)),
                     "energy_in_boxes": float(np.mean([s.energy_in_boxes for s in mine]))}
    return out
