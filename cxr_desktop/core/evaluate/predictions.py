"""Predictions of a trained run on a split of a dataset, computed once and kept on disk.

Images go through the preprocessed cache (``build_cache``), so each is decoded once at the
run's input size, whatever the number of runs or evaluations. The probabilities are saved in
``<run>/predictions/<key>.npz`` where the key hashes the checkpoint file (its content key),
the images (their content keys), the labels, the split and the intensity chain: a retrained
run, an edited image or a relabelled dataset gives a new key and new predictions.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cxr_desktop.core.atomic import atomic_write_bytes
from cxr_desktop.core.data.cache import build_cache, default_workers, file_key
from cxr_desktop.core.data.spec import SPLITS, DatasetSpec
from cxr_desktop.core.errors import CxrError, DatasetError, FileError
from cxr_desktop.core.evaluate.options import ALL_SPLITS
from cxr_desktop.core.io import INTENSITY_CHAIN
from cxr_desktop.core.runs.load import LoadedRun, load_run
from cxr_desktop.core.train.augment import to_float
from cxr_desktop.core.train.engine import DATASET_SNAPSHOT, pick_device
from cxr_desktop.core.train.loop import probabilities

PREDICTIONS_DIR = "predictions"
PREDICTIONS_FORMAT = 1

Progress = Callable[[int, int], None]


@dataclass
class Predictions:
    """Probabilities of one model (or ensemble) on a list of images.

    ``probs``: binary (N,) probability of ``positive_class``; multiclass (N, C) softmax;
    multilabel (N, C) sigmoids. ``targets`` follow ``DatasetSpec.targets()`` with columns
    in ``classes`` order (the run's). ``excluded`` names unreadable images, left out.
    """

    paths: list[str]
    targets: np.ndarray
    probs: np.ndarray
    classes: list[str]
    task: str
    positive_class: str | None
    threshold: float = 0.5
    source: str = ""
    split: str = ""
    val_auc: float | None = None
    excluded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def output_names(self) -> list[str]:
        """One name per output column (the positive class for a binary task)."""
        return [str(self.positive_class)] if self.task == "binary" else list(self.classes)

    def columns(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, 0/1 target with NaN masked, score) per output, one-vs-rest for multiclass."""
        if self.task == "binary":
            return [(self.output_names[0], self.targets.astype(np.float64), self.probs)]
        if self.task == "multiclass":
            return [(name, (self.targets == c).astype(np.float64), self.probs[:, c])
                    for c, name in enumerate(self.classes)]
        return [(name, self.targets[:, c].astype(np.float64), self.probs[:, c])
                for c, name in enumerate(self.classes)]

    def subset(self, rows: np.ndarray) -> Predictions:
        rows = np.asarray(rows, dtype=np.int64)
        return Predictions([self.paths[int(r)] for r in rows], self.targets[rows],
                           self.probs[rows], list(self.classes), self.task,
                           self.positive_class, self.threshold, self.source, self.split,
                           self.val_auc, list(self.excluded), list(self.notes),
                           list(self.warnings))


def split_rows(spec: DatasetSpec, split: str) -> np.ndarray:
    """Item indices of ``split`` (``all``: every item); DatasetError when it is empty."""
    rows = np.arange(len(spec.items)) if split == ALL_SPLITS else spec.split_indices(split)
    if rows.size == 0:
        where = spec.source.get("path") or spec.root
        known = sorted({item.split for item in spec.items}) or list(SPLITS)
        raise DatasetError(where, f"no images in split {split!r} (splits: {', '.join(known)})")
    return rows


def class_order(run: LoadedRun, spec: DatasetSpec, run_dir: Path) -> list[int] | None:
    """Dataset column of each run class (None: the same order); CxrError when they differ."""
    meta = run.metadata
    classes = [str(c) for c in meta.get("classes", [])]
    where = spec.source.get("path") or spec.root
    if meta.get("task") != spec.task:
        raise CxrError(f"{run_dir}: the run is a {meta.get('task')} model but {where} is a "
                       f"{spec.task} dataset")
    if sorted(classes) != sorted(spec.classes) or (
            spec.task == "binary" and meta.get("positive_class") != spec.positive_class):
        raise CxrError(f"{run_dir}: the run's classes {classes} do not match the classes "
                       f"{list(spec.classes)} of {where}")
    order = [spec.classes.index(c) for c in classes]
    return None if order == list(range(len(order))) else order


def _targets(spec: DatasetSpec, rows: np.ndarray, order: list[int] | None) -> np.ndarray:
    targets = spec.targets()[rows]
    if order is None or spec.task == "binary":
        return targets
    if spec.task == "multilabel":
        return targets[:, order]
    remap = np.argsort(order)  # dataset class index -> run class index
    return remap[targets]


def _image_keys(paths: list[str], workers: int) -> list[str | None]:
    def one(path: str) -> str | None:
        try:
            return file_key(path)
        except OSError:
            return None

    with ThreadPoolExecutor(workers or default_workers()) as pool:
        return list(pool.map(one, paths))


def _cache_key(run: LoadedRun, paths: list[str], targets: np.ndarray, split: str,
               workers: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    header = [PREDICTIONS_FORMAT, file_key(run.checkpoint_path), split, INTENSITY_CHAIN,
              run.metadata.get("input_size"), _image_keys(paths, workers), paths]
    digest.update(json.dumps(header).encode())
    digest.update(np.ascontiguousarray(targets).tobytes())
    return digest.hexdigest()


def _save(path: Path, probs: np.ndarray, rows: np.ndarray, excluded: list[str]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, probs=probs, rows=rows, excluded=np.array(excluded, dtype=str))
    atomic_write_bytes(path, buffer.getvalue())


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["probs"], data["rows"], [str(x) for x in data["excluded"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # unreadable or torn: compute again


def _best_val_auc(run: LoadedRun) -> float | None:
    value = run.metadata.get("val_auc")
    if isinstance(value, int | float) and np.isfinite(value):
        return float(value)
    history = [r.get("val_auc") for r in run.history]
    finite = [float(v) for v in history if isinstance(v, int | float) and np.isfinite(v)]
    return max(finite) if finite else None


def _infer(run: LoadedRun, images: np.ndarray, rows: np.ndarray, device: torch.device,
           batch_size: int, progress: Progress | None) -> np.ndarray:
    model = run.model.to(device).eval()
    task = str(run.metadata["task"])
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            batch = torch.from_numpy(np.ascontiguousarray(images[chunk])).to(device)
            out.append(probabilities(task, model(to_float(batch))).cpu().numpy())
            if progress:
                progress(min(start + batch_size, len(rows)), len(rows))
    empty = (0,) if task == "binary" else (0, int(run.metadata["num_outputs"]))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(empty, np.float32)


def trained_spec(folder: Path) -> DatasetSpec | None:
    """The run's ``dataset.json`` snapshot (None when it has none)."""
    snapshot = folder / DATASET_SNAPSHOT
    return DatasetSpec.load(snapshot) if snapshot.is_file() else None


def _key(path: str | Path) -> str:
    return os.path.normcase(os.path.normpath(os.path.abspath(path)))


def same_dataset(trained: DatasetSpec, spec: DatasetSpec) -> bool:
    """True when ``spec`` is the dataset ``trained`` (a run's snapshot) was made from: the
    same source (folder, table or spec file), or, without one, the same image root."""
    source, other = trained.source.get("path"), spec.source.get("path")
    if source and other:
        return _key(source) == _key(other)
    return _key(trained.root) == _key(spec.root)


def with_run_splits(spec: DatasetSpec, trained: DatasetSpec) -> tuple[DatasetSpec, int]:
    """``spec`` with each image the run knows in the split the run gave it (images new
    since, in their own); and how many images changed split."""
    splits = {_key(trained.abspath(item)): item.split for item in trained.items}
    items, moved = [], 0
    for item in spec.items:
        split = splits.get(_key(spec.abspath(item)), item.split)
        moved += split != item.split
        items.append(item if split == item.split else replace(item, split=split))
    return (replace(spec, items=items) if moved else spec), moved


def _seen_in_training(trained: DatasetSpec | None, paths: list[str]) -> int:
    """How many of ``paths`` are training or validation images of the run whose snapshot
    is ``trained`` (0 when the run has none)."""
    if trained is None:
        return 0
    used = {_key(trained.abspath(item)) for item in trained.items
            if item.split in ("train", "val")}
    return sum(_key(path) in used for path in paths)


def predict(
    run_dir: str | Path,
    spec: DatasetSpec,
    split: str = "test",
    *,
    which: str = "best",
    device: str = "auto",
    batch_size: int = 64,
    cache_root: str | Path | None = None,
    workers: int = 0,
    use_saved: bool = True,
    progress: Progress | None = None,
) -> Predictions:
    """Probabilities of the run in ``run_dir`` on ``split`` of ``spec`` (``all``: every
    image), read from the run folder when computed before.

    When ``spec`` is the dataset the run was trained on, its splits are the run's own (from
    the run's ``dataset.json``), whatever split options opened it: a test split is then
    never one of the training images. On another dataset, images the run trained on give
    a warning.

    CxrError when the run's task or classes differ from the dataset's; images that cannot
    be read are left out and listed in ``excluded``. ``progress(done, total)`` reports the
    image cache and then the inference.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileError(run_dir, "run folder not found")
    run = load_run(run_dir, which=which, device="cpu")
    meta = run.metadata
    order = class_order(run, spec, run_dir)
    trained = trained_spec(Path(run.checkpoint_path).parent)
    notes: list[str] = []
    where = spec.source.get("path") or spec.root
    own = trained is not None and same_dataset(trained, spec)
    if own:
        spec, moved = with_run_splits(spec, trained)
        if moved and split != ALL_SPLITS:
            notes.append(f"{run_dir}: {where} is the dataset the run was trained on, so its "
                         f"own splits are used ({moved} image(s) are in another split than "
                         "the split options given would put them)")
    rows = split_rows(spec, split)
    paths = [str(spec.abspath(spec.items[int(r)])) for r in rows]
    targets = _targets(spec, rows, order)
    key = _cache_key(run, paths, targets, split, workers)
    saved_path = Path(run.checkpoint_path).parent / PREDICTIONS_DIR / f"{key}.npz"
    saved = _load(saved_path) if use_saved else None
    if saved is not None:
        probs, kept, excluded = saved
    else:
        size = int(meta["input_size"])
        cache = build_cache(paths, size, root=cache_root, workers=workers, progress=progress)
        kept = np.flatnonzero(cache.valid)
        excluded = [cache.failed[r] for r in sorted(cache.failed)]
        probs = _infer(run, cache.images, kept, pick_device(device), batch_size, progress)
        _save(saved_path, probs, kept, excluded)
    if not run.chain_matches:
        notes.append(f"{run_dir}: images are now preprocessed differently ({INTENSITY_CHAIN}) "
                     f"from how the model was trained ({meta.get('intensity_chain')})")
    warnings = []
    seen = _seen_in_training(trained, [paths[int(r)] for r in kept])
    if seen:
        why = ("the split asked for holds them" if own else
               f"{where} is not the dataset the run was trained on, so the run's own splits "
               "cannot be used")
        warnings.append(f"{run_dir}: {seen} of the {len(kept)} images evaluated were used to "
                        f"train or validate this run ({why}): these numbers overstate how "
                        "well it does on new images")
    return Predictions(
        paths=[paths[int(r)] for r in kept], targets=targets[kept], probs=probs,
        classes=[str(c) for c in meta["classes"]], task=str(meta["task"]),
        positive_class=meta.get("positive_class"), threshold=float(meta.get("threshold", 0.5)),
        source=str(run_dir), split=split, val_auc=_best_val_auc(run), excluded=excluded,
        notes=notes, warnings=warnings,
    )

