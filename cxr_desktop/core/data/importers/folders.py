"""Folders per class, with or without ``train/``, ``val/`` (``valid/``, ``dev/``), ``test/``.

Everything below a class folder belongs to that class (subfolders per patient are fine).
A rule can take the class from the file name instead: Kaggle's pediatric pneumonia keeps
``person1_bacteria_1.jpeg`` and ``person3_virus_15.jpeg`` in ``PNEUMONIA/``, so
``class_from_name="bacteria,virus"`` gives the three classes NORMAL, bacteria and virus.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cxr_desktop.core.data.importers.paths import is_hidden, is_image_name, unwrap, walk_images
from cxr_desktop.core.data.importers.tables import single_label_classes, split_of_name
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem, Problem
from cxr_desktop.core.errors import DatasetError


def _subfolders(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not is_hidden(e.name))
    except OSError as exc:
        raise DatasetError(folder, f"cannot list the folder: {exc.strerror or exc}") from None


def _loose_images(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image_name(e.name))


def _name_rules(class_from_name: str | dict[str, str] | list[str] | None) -> dict[str, str]:
    """``{keyword (lower case): class}`` from ``"a,b"``, ``["a", "b"]`` or ``{"a": "A"}``."""
    if not class_from_name:
        return {}
    if isinstance(class_from_name, str):
        class_from_name = [k for k in class_from_name.split(",") if k.strip()]
    if isinstance(class_from_name, dict):
        return {k.strip().lower(): v.strip() for k, v in class_from_name.items()}
    return {k.strip().lower(): k.strip() for k in class_from_name}


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _without_linked_classes(
    root: Path, groups: list[tuple[str, str, str]]
) -> tuple[list[tuple[str, str, str]], list[Problem]]:
    """``groups`` less the class folders that are links to the dataset folder or above it
    (a loop), or to another class folder (or inside one): their images would take two
    classes. A ``folder_link`` problem for each left out."""
    root_real = os.path.realpath(root)
    real = {rel: os.path.realpath(root / rel) for _, _, rel in groups}
    kept: list[tuple[str, str, str]] = []
    problems: list[Problem] = []
    for group in groups:
        rel = group[2]
        if _inside(root_real, real[rel]):
            reason = "a link back to the dataset folder or above it (a loop)"
        else:
            other = next((o for _, _, o in groups if o != rel and _inside(real[rel], real[o])
                          and (real[rel] != real[o] or (root / rel).is_symlink())), None)
            reason = None if other is None else \
                f"a link to the class folder {other.rstrip('/')}, which has its own class"
        if reason is None:
            kept.append(group)
        else:
            problems.append(Problem("folder_link", [rel.rstrip("/")],
                                    f"{reason}; its images are left out"))
    return kept, problems


def import_folders(
    path: Path,
    *,
    class_from_name: str | dict[str, str] | list[str] | None = None,
    patient_regex: str | None = None,
    positive_class: str | None = None,
) -> DatasetSpec:
    """A dataset from class folders (see the module docstring); splits kept when given.

    ``patient_regex`` takes the patient from the file name (its first group, else the whole
    match), e.g. ``^(person\\d+)_`` for Kaggle pneumonia.
    """
    if not path.is_dir():
        raise DatasetError(path, "not a folder")
    root = unwrap(path.resolve())
    rules = _name_rules(class_from_name)
    try:
        pattern = re.compile(patient_regex) if patient_regex else None
    except re.error as exc:
        raise DatasetError(path, f"patient pattern {patient_regex!r} is not valid: {exc}") \
            from None
    problems: list[Problem] = []
    notes: list[str] = []
    groups: list[tuple[str, str, str]] = []  # (split, class folder, folder prefix)
    subs = _subfolders(root)
    split_dirs = [s for s in subs if split_of_name(s)]
    if split_dirs:
        for name in split_dirs:
            for cls in _subfolders(root / name):
                groups.append((split_of_name(name), cls, f"{name}/{cls}/"))
            loose = _loose_images(root / name)
            if loose:
                problems.append(Problem("unlabelled", [f"{name}/{f}" for f in loose],
                                        f"images directly in {name}/, outside a class folder"))
                notes.append(f"{name}/ holds {len(loose)} image(s) without a class, left out "
                             f"of the splits: predict on them with `cxr-desktop predict RUN "
                             f"{root / name}`")
        ignored = [s for s in subs if not split_of_name(s)]
        if ignored:
            problems.append(Problem("ignored", [s for s in ignored],
                                    "folders beside the split folders are not read"))
    else:
        groups = [("", cls, f"{cls}/") for cls in subs]
        loose = _loose_images(root)
        if loose:
            problems.append(Problem("unlabelled", loose,
                                    "images directly in the dataset folder, outside a class "
                                    "folder, are left out"))
    groups, linked = _without_linked_classes(root, groups)
    problems += linked
    items: list[ImageItem] = []
    for split, cls, rel in groups:
        files, unreadable = walk_images(root / rel, rel, boundary=root)
        problems += unreadable
        for file in files:
            name = file.rsplit("/", 1)[-1]
            label = next((c for k, c in rules.items() if k in name.lower()), cls)
            patient = None
            if pattern is not None:
                match = pattern.search(name)
                patient = (match.group(1) if match.groups() else match.group(0)) if match \
                    else None
            items.append(ImageItem(file, split, patient, label))
    if not items:
        if not subs and _loose_images(root):  # one folder of images: a single class
            raise DatasetError(path, f"only one class found: {root.name}; a dataset needs "
                                     "at least two (one folder of images per class)")
        raise DatasetError(path, "no images in class folders (expected CLASS/image files, "
                                 "optionally under train/ val/ test/)")
    task, classes, positive = single_label_classes({it.labels for it in items},
                                                   positive_class, path)
    return DatasetSpec(root=root, task=task, classes=classes, positive_class=positive,
                       items=items, problems=problems, notes=notes)
