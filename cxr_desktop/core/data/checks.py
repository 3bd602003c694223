"""What is wrong with a dataset: reported as ``Problem`` values, never raised.

Kinds: ``unreadable`` (with the loader's reason), ``missing``, ``outside_root``,
``duplicate`` (same file content) and ``near_duplicate`` (same picture re-encoded, see
``imagescan``), both saying when they cross splits, ``patient_overlap``, ``imbalance``,
``scope`` (a DICOM body part or modality unlike the rest of its class) and
``annotation_outside``; plus whatever the import reported (rows skipped). Size, aspect
ratio, bit depth and tag statistics go in ``CheckReport.stats``.
"""

from __future__ import annotations

import posixpath
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cxr_desktop.core.data.imagescan import (
    ImageRecord,
    near_duplicate_pairs,
    scan_images,
    thumbnails_correlate,
)
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem, Problem, split_order

#: A split whose largest class is this many times its smallest is reported as imbalanced.
IMBALANCE_RATIO = 3.0
#: The same for the positives of a multilabel task, where some imbalance is the norm.
MULTILABEL_IMBALANCE_RATIO = 10.0
_CHEST = ("CHEST", "THORAX", "LUNG", "TORAX", "BRUST", "THORAC")
_RADIOGRAPHY = frozenset({"CR", "DX", "DR", "RG", "PX"})


@dataclass
class CheckReport:
    """The problems found, statistics of the images read, and whether it was stopped early."""

    problems: list[Problem]
    stats: dict[str, Any] = field(default_factory=dict)
    checked: int = 0
    total: int = 0
    stopped: bool = False


def unreadable_paths(problems: Iterable[Problem]) -> set[str]:
    """Item paths the checks could not read (missing or unreadable): the images training
    leaves out."""
    return {path for p in problems if p.kind in ("unreadable", "missing") for path in p.paths}


def run_checks(spec: DatasetSpec, progress: Callable[[int, int], None] | None = None,
               should_stop: Callable[[], bool] | None = None,
               workers: int | None = None) -> list[Problem]:
    """The problems of ``spec`` (see :func:`check_dataset`)."""
    return check_dataset(spec, progress, should_stop, workers).problems


def check_dataset(spec: DatasetSpec, progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  workers: int | None = None) -> CheckReport:
    """Read every image of ``spec`` in parallel and report what is wrong.

    ``progress(done, total)`` is called at most ~20 times a second; ``should_stop()`` is
    polled between images and ends the reading early, the report then covering the images
    read so far (``stopped`` is True).
    """
    problems = list(spec.problems)
    inside: list[tuple[int, Any]] = []
    for index, item in enumerate(spec.items):
        if _escapes(item.path):
            problems.append(Problem("outside_root", [item.path], "the path leaves the dataset "
                                                                 "folder; not read"))
        else:
            inside.append((index, spec.abspath(item)))
    records, stopped = scan_images(inside, progress=progress, should_stop=should_stop,
                                   workers=workers)
    records.sort(key=lambda r: r.index)
    items = spec.items
    for record in records:
        if record.error:
            problems.append(Problem(record.error, [items[record.index].path], record.reason))
    good = [r for r in records if r.error is None]
    problems += _duplicates(items, records)
    problems += _near_duplicates(items, good)
    problems += patient_overlap(items)
    problems += _scope(spec, good)
    problems += _annotations_outside(items, good)
    problems += imbalance(spec)
    stats = image_stats(good)
    stats.update(images=len(items), checked=len(records),
                 missing=sum(r.error == "missing" for r in records),
                 unreadable=sum(r.error == "unreadable" for r in records))
    return CheckReport(problems, stats, len(records), len(inside), stopped)


def _escapes(path: str) -> bool:
    norm = posixpath.normpath(path.replace("\\", "/"))
    return norm.startswith(("/", "../")) or norm == ".." or (len(norm) > 1 and norm[1] == ":")


def _splits_text(items: list[ImageItem], indices: Iterable[int]) -> str:
    splits = sorted({items[i].split for i in indices}, key=split_order)
    return f"across splits {', '.join(splits)}" if len(splits) > 1 else f"in {splits[0]}"


def _duplicates(items: list[ImageItem], records: list[ImageRecord]) -> list[Problem]:
    by_digest: dict[str, list[int]] = defaultdict(list)
    for record in records:
        if record.digest:
            by_digest[record.digest].append(record.index)
    return [Problem("duplicate", [items[i].path for i in group],
                    f"{len(group)} identical files {_splits_text(items, group)}")
            for group in by_digest.values() if len(group) > 1]


def _near_duplicates(items: list[ImageItem], good: list[ImageRecord]) -> list[Problem]:
    if len(good) < 2:
        return []
    parent = list(range(len(good)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in near_duplicate_pairs([r.dhash for r in good]):
        if good[a].digest != good[b].digest and thumbnails_correlate(good[a].thumb,
                                                                     good[b].thumb):
            parent[find(a)] = find(b)
    clusters: dict[int, list[int]] = defaultdict(list)
    for position in range(len(good)):
        clusters[find(position)].append(good[position].index)
    out = []
    for group in clusters.values():
        if len(group) > 1:
            out.append(Problem("near_duplicate", [items[i].path for i in group],
                               f"{len(group)} images look the same (re-encoded or "
                               f"retouched copies?) {_splits_text(items, group)}"))
    return out


def patient_overlap(items: list[ImageItem]) -> list[Problem]:
    """One problem per patient with images in more than one split."""
    by_patient: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        if item.patient is not None:
            by_patient[item.patient].append(index)
    out = []
    for patient, group in by_patient.items():
        splits = sorted({items[i].split for i in group}, key=split_order)
        if len(splits) > 1:
            out.append(Problem("patient_overlap", [items[i].path for i in group],
                               f"patient {patient} has images in {' and '.join(splits)}"))
    return out


def _tag_group(value: str | None, kind: str) -> str | None:
    if not value or not value.strip():
        return None
    value = value.strip().upper()
    if kind == "body_part":
        return "CHEST" if any(word in value for word in _CHEST) else value
    return "radiography" if value in _RADIOGRAPHY else value


def _scope(spec: DatasetSpec, good: list[ImageRecord]) -> list[Problem]:
    """DICOMs whose body part or modality differs from most of their class (ties: chest)."""
    out = []
    for kind in ("body_part", "modality"):
        by_class: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for record in good:
            value = getattr(record, kind)
            group = _tag_group(value, kind)
            if group is not None:
                item = spec.items[record.index]
                key = item.labels if isinstance(item.labels, str) else ""
                by_class[key].append((record.index, group, value))
        words = "body part" if kind == "body_part" else "modality"
        for members in by_class.values():
            counts = Counter(group for _, group, _ in members)
            usual = max(counts, key=lambda g: (counts[g], g in ("CHEST", "radiography")))
            out += [Problem("scope", [spec.items[index].path],
                            f"{words} {value} where the rest is {usual}")
                    for index, group, value in members if group != usual]
    return out


def _annotations_outside(items: list[ImageItem], good: list[ImageRecord]) -> list[Problem]:
    out = []
    for record in good:
        item = items[record.index]
        lines = item.meta.get("shape_lines") or [None] * len(item.shapes)
        for shape, line in zip(item.shapes, lines, strict=False):
            if not shape.inside(record.columns, record.rows):
                x0, y0, x1, y1 = (round(v) for v in shape.bounds())
                where = f"{line}: " if line else ""
                out.append(Problem("annotation_outside", [item.path],
                                   f"{where}{shape.shape_type} {shape.label!r} spans ({x0}, "
                                   f"{y0})-({x1}, {y1}), outside the {record.columns} x "
                                   f"{record.rows} image"))
    return out


def imbalance(spec: DatasetSpec) -> list[Problem]:
    """Classes absent from a split, and splits whose class counts differ by a large ratio."""
    out = []
    multilabel = spec.task == "multilabel"
    limit = MULTILABEL_IMBALANCE_RATIO if multilabel else IMBALANCE_RATIO
    what = "positive images" if multilabel else "images"
    for split, entry in spec.summary()["splits"].items():
        counts = entry["per_class"]
        if not entry["images"]:
            continue
        absent = [name for name, n in counts.items() if n == 0]
        if absent:
            out.append(Problem("imbalance", [], f"{split}: no {what} of {', '.join(absent)}"))
        present = {name: n for name, n in counts.items() if n}
        if len(present) > 1:
            ratio = max(present.values()) / min(present.values())
            if ratio >= limit:
                text = ", ".join(f"{name} {n}" for name, n in present.items())
                out.append(Problem("imbalance", [], f"{split}: {text} ({what}; the largest "
                                                    f"class has {ratio:.1f}x the smallest)"))
    return out


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    return {"min": float(array.min()), "median": float(np.median(array)),
            "max": float(array.max())}


def image_stats(good: list[ImageRecord]) -> dict[str, Any]:
    """Size, aspect ratio (width / height), bit depth, format and DICOM tag counts."""
    def count(values: Iterable[Any]) -> dict[str, int]:
        return dict(Counter(str(v) for v in values if v is not None).most_common())

    return {
        "width": _spread([r.columns for r in good]),
        "height": _spread([r.rows for r in good]),
        "aspect_ratio": {k: round(v, 3) for k, v in
                         _spread([r.columns / r.rows for r in good if r.rows]).items()},
        "bits_stored": count(r.bits_stored for r in good),
        "formats": count(r.source_format for r in good),
        "modality": count(r.modality for r in good),
        "body_part": count(r.body_part for r in good),
    }
