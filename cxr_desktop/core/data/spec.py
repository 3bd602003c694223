"""The dataset model: which images, which labels, which split; saved to and loaded from JSON.

A ``DatasetSpec`` never holds pixels. Labels are stored as the source gave them and turned
into training targets by :meth:`DatasetSpec.targets` under the spec's policies, so the same
spec can be trained with uncertain CheXpert labels masked or counted as positive:

- binary and multiclass: ``item.labels`` is the class name (a ``str``);
- multilabel: ``item.labels`` is ``{class: value}`` with ``1.0`` positive, ``0.0`` negative,
  ``-1.0`` uncertain, NaN unknown (a bad cell in the source, reported as a problem: always
  masked); a class that is absent is blank (not mentioned).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.atomic import atomic_write_text
from cxr_desktop.core.errors import DatasetError
from cxr_desktop.core.jsonfile import read_json

SPLITS = ("train", "val", "test")
TASKS = ("binary", "multiclass", "multilabel")
UNCERTAIN_POLICIES = ("mask", "positive", "negative")
BLANK_POLICIES = ("negative", "mask")
UNCERTAIN = -1.0
#: A multilabel value the source gave wrongly (``2``, ``yes``): masked under every policy.
MISSING = float("nan")
LABEL_VALUES = (1.0, 0.0, UNCERTAIN)
SPEC_FORMAT = "cxr-desktop-dataset"
SPEC_VERSION = 1

Labels = str | dict[str, float]


def split_order(split: str) -> tuple[int, str]:
    """Sort key putting train, val, test first, in that order."""
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


@dataclass
class Problem:
    """Something wrong with one or more files of a dataset; reported, never fatal."""

    kind: str
    paths: list[str]
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "paths": list(self.paths), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(str(data["kind"]), [str(p) for p in data["paths"]], str(data["detail"]))


@dataclass(slots=True)
class ImageItem:
    """One image of a dataset. ``path`` is POSIX and relative to the dataset root."""

    path: str
    split: str
    patient: str | None
    labels: Labels
    shapes: list[Shape] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        labels = self.labels if isinstance(self.labels, str) else \
            {k: None if v != v else v for k, v in self.labels.items()}  # NaN: null in JSON
        out: dict[str, Any] = {"path": self.path, "split": self.split, "labels": labels}
        if self.patient is not None:
            out["patient"] = self.patient
        if self.shapes:
            out["shapes"] = [_shape_to_dict(s) for s in self.shapes]
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageItem:
        labels = data["labels"]
        if isinstance(labels, dict):
            labels = {str(k): MISSING if v is None else float(v) for k, v in labels.items()}
        return cls(
            path=str(data["path"]),
            split=str(data["split"]),
            patient=None if data.get("patient") is None else str(data["patient"]),
            labels=labels,
            shapes=[_shape_from_dict(s) for s in data.get("shapes", [])],
            meta=dict(data.get("meta", {})),
        )


def _shape_to_dict(shape: Shape) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": shape.label,
        "shape_type": shape.shape_type,
        "points": [list(p) for p in shape.points],
    }
    if shape.text:
        out["text"] = shape.text
    return out


def _shape_from_dict(data: dict[str, Any]) -> Shape:
    return Shape(
        str(data["label"]),
        str(data["shape_type"]),
        tuple((float(x), float(y)) for x, y in data["points"]),
        str(data.get("text", "")),
    )


@dataclass
class DatasetSpec:
    """A dataset: images under ``root`` with labels, splits, patients and annotations.

    ``source`` records the format and the options it was imported with (``open_dataset`` of
    ``source["path"]`` with ``source["options"]`` imports the same dataset again);
    ``problems`` are what the import found wrong (rows skipped, paths outside the root);
    ``notes`` say what it assumed or did on its own (a preset's rules, rows merged, splits
    made), in words for the report.
    """

    root: Path
    task: str
    classes: list[str]
    positive_class: str | None
    items: list[ImageItem]
    source: dict[str, Any] = field(default_factory=dict)
    uncertain_policy: str = "mask"
    blank_policy: str = "negative"
    filters: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {self.task!r}")
        if self.uncertain_policy not in UNCERTAIN_POLICIES:
            raise ValueError(f"uncertain_policy must be one of {UNCERTAIN_POLICIES}")
        if self.blank_policy not in BLANK_POLICIES:
            raise ValueError(f"blank_policy must be one of {BLANK_POLICIES}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"class names repeat: {self.classes}")
        if self.task == "binary":
            if len(self.classes) != 2 or self.positive_class not in self.classes:
                raise ValueError("a binary task needs two classes, one of them positive_class")
        elif self.positive_class is not None:
            raise ValueError("positive_class is only for a binary task")

    # --- access -----------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.classes)

    def abspath(self, item: ImageItem) -> Path:
        return self.root / item.path

    def split_indices(self, split: str) -> np.ndarray:
        """Indices (int64) of the items in ``split``, in dataset order."""
        return np.fromiter(
            (i for i, item in enumerate(self.items) if item.split == split), dtype=np.int64
        )

    def targets(self) -> np.ndarray:
        """Training targets of every item, in dataset order (see the module docstring).

        binary: float32 (N,) 1 for the positive class; multiclass: int64 (N,) class index;
        multilabel: float32 (N, C) with NaN where the label is masked by the policies.
        """
        n = len(self.items)
        if self.task == "binary":
            positive = self.positive_class
            return np.fromiter((item.labels == positive for item in self.items),
                               dtype=np.float32, count=n)
        index = {name: i for i, name in enumerate(self.classes)}
        if self.task == "multiclass":
            return np.fromiter((index[item.labels] for item in self.items),
                               dtype=np.int64, count=n)
        blank = np.nan if self.blank_policy == "mask" else 0.0
        uncertain = {"mask": np.nan, "positive": 1.0, "negative": 0.0}[self.uncertain_policy]
        out = np.full((n, len(self.classes)), blank, dtype=np.float32)
        for row, item in enumerate(self.items):
            for name, value in item.labels.items():
                column = index.get(name)
                if column is not None:
                    out[row, column] = uncertain if value == UNCERTAIN else value
        return out

    def summary(self, unreadable: Collection[str] = ()) -> dict[str, Any]:
        """Images and class counts per split (multilabel: positives per class).

        ``unreadable`` (item paths the checks could not read) are left out of the counts and
        counted apart per split, so the counts are those of the images training can use.
        """
        targets = self.targets()
        splits = np.array([item.split for item in self.items], dtype=object)
        bad = np.array([item.path in unreadable for item in self.items], dtype=bool) \
            if unreadable else np.zeros(len(self.items), dtype=bool)
        out: dict[str, Any] = {
            "task": self.task,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "images": int((~bad).sum()),
            "splits": {},
        }
        if bad.any():
            out["unreadable"] = int(bad.sum())
        extra = sorted(set(splits) - set(SPLITS), key=split_order)
        for split in (*SPLITS, *extra):
            mask = (splits == split) & ~bad
            entry = {"images": int(mask.sum()), "per_class": self._class_counts(targets[mask])}
            if bad.any():
                entry["unreadable"] = int(((splits == split) & bad).sum())
            out["splits"][split] = entry
        return out

    def annotation_counts(self) -> dict[str, int]:
        """``{"images": images with at least one shape, "shapes": shapes in all}``."""
        return {"images": sum(bool(item.shapes) for item in self.items),
                "shapes": sum(len(item.shapes) for item in self.items)}

    def _class_counts(self, targets: np.ndarray) -> dict[str, int]:
        if self.task == "binary":
            positive = int((targets == 1).sum())
            negative = next(c for c in self.classes if c != self.positive_class)
            return {negative: int(len(targets) - positive), self.positive_class: positive}
        if self.task == "multiclass":
            counts = np.bincount(targets, minlength=len(self.classes))
            return {name: int(c) for name, c in zip(self.classes, counts, strict=True)}
        positives = (targets == 1).sum(axis=0) if len(targets) else np.zeros(len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, positives, strict=True)}

    # --- persistence ------------------------------------------------------------------
    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        root = self.root.resolve()
        out: dict[str, Any] = {
            "format": SPEC_FORMAT,
            "version": SPEC_VERSION,
            "root": str(root),
            "task": self.task,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "uncertain_policy": self.uncertain_policy,
            "blank_policy": self.blank_policy,
            "filters": list(self.filters),
            "source": self.source,
            "problems": [p.to_dict() for p in self.problems],
            "notes": list(self.notes),
            "items": [item.to_dict() for item in self.items],
        }
        if relative_to is not None:
            out["root_relative"] = Path(os.path.relpath(root, relative_to)).as_posix()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None) -> DatasetSpec:
        """Build from :meth:`to_dict`; ``base`` (the JSON's folder) finds a moved root."""
        if data.get("format") != SPEC_FORMAT:
            raise ValueError(f"not a {SPEC_FORMAT} file")
        if int(data.get("version", 0)) > SPEC_VERSION:
            raise ValueError(f"made by a newer cxr-desktop (version {data['version']})")
        root = Path(data["root"])
        if not root.is_dir() and base is not None and "root_relative" in data:
            moved = (base / data["root_relative"]).resolve()
            root = moved if moved.is_dir() else root
        spec = cls(
            root=root,
            task=data["task"],
            classes=[str(c) for c in data["classes"]],
            positive_class=data.get("positive_class"),
            items=[ImageItem.from_dict(d) for d in data["items"]],
            source=dict(data.get("source", {})),
            uncertain_policy=data.get("uncertain_policy", "mask"),
            blank_policy=data.get("blank_policy", "negative"),
            filters=[str(f) for f in data.get("filters", [])],
            problems=[Problem.from_dict(p) for p in data.get("problems", [])],
            notes=[str(n) for n in data.get("notes", [])],
        )
        spec.check_labels()
        return spec

    def check_labels(self) -> None:
        """ValueError naming the first item whose labels do not fit the task and classes:
        a class not in ``classes`` would otherwise train as class 0 (or as nothing)."""
        classes = set(self.classes)
        for number, item in enumerate(self.items, start=1):
            where = f"item {number} ({item.path})"
            if self.task != "multilabel":
                if not isinstance(item.labels, str):
                    raise ValueError(f"{where}: label {item.labels!r} is not a class name")
                if item.labels not in classes:
                    raise ValueError(f"{where}: label {item.labels!r} is not one of the "
                                     f"classes {self.classes}")
                continue
            if not isinstance(item.labels, dict):
                raise ValueError(f"{where}: labels {item.labels!r} are not {{class: value}}")
            for name, value in item.labels.items():
                if name not in classes:
                    raise ValueError(f"{where}: label {name!r} is not one of the classes "
                                     f"{self.classes}")
                if value not in LABEL_VALUES and value == value:
                    raise ValueError(f"{where}: {name} = {value!r} is not 1, 0, -1 or null")

    def save(self, path: str | Path) -> Path:
        """Write the spec as JSON atomically; the root is kept absolute and relative."""
        path = Path(path)
        data = self.to_dict(relative_to=path.parent.resolve())
        return atomic_write_text(path, json.dumps(data, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DatasetSpec:
        """Read a spec saved by :meth:`save`; raises DatasetError naming the file."""
        path = Path(path)
        data = read_json(path, DatasetError)
        try:
            return cls.from_dict(data, base=path.parent.resolve())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise DatasetError(path, f"not a valid dataset spec: {reason}") from None
