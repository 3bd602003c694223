"""Walking a dataset folder for image files without opening them (``walk_images``).

One directory walk (``os.scandir`` file types, no per-file ``stat``) lists the files under
the root; ``resolver`` then finds the files a label table names with dictionary look-ups.
"""

from __future__ import annotations

import os
from pathlib import Path

from cxr_desktop.core.data.spec import Problem
from cxr_desktop.core.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".dic"})
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}


def is_hidden(name: str) -> bool:
    """Names to skip when walking: dot files and macOS ``__MACOSX`` folders."""
    return name.startswith(".") or name == "__MACOSX" or name == "Thumbs.db"


def is_image_name(name: str) -> bool:
    """True for PNG, JPEG and DICOM names, DICOMs often having no suffix (or a UID one)."""
    if is_hidden(name):
        return False
    suffix = os.path.splitext(name)[1].lower()
    return suffix in IMAGE_SUFFIXES or suffix == "" or suffix[1:].isdigit()


def unwrap(folder: Path) -> Path:
    """The folder itself, or the one folder inside it when it holds nothing else (unzipping
    often adds such a wrapper); a split folder (``train/``) is never unwrapped."""
    visited = {os.path.realpath(folder)}
    while True:
        try:
            entries = [e for e in os.scandir(folder) if not is_hidden(e.name)]
        except OSError as exc:
            raise DatasetError(folder, f"cannot list the folder: {exc.strerror or exc}") \
                from None
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].name.lower() in SPLIT_NAMES:
            return folder
        inner = os.path.realpath(entries[0].path)
        if inner in visited:  # a link back up: a loop, not a wrapper
            return folder
        visited.add(inner)
        folder = Path(entries[0].path)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def walk_images(top: Path, prefix: str = "", boundary: Path | None = None,
                others: list[str] | None = None) -> tuple[list[str], list[Problem]]:
    """POSIX paths (``prefix`` + relative to ``top``) of the image files under ``top``, sorted,
    and the problems met: ``unreadable_folder`` for each folder that could not be listed,
    ``folder_link`` for each link to a folder that was not followed. The other files (not
    images by name: volumes, reports) are appended to ``others`` when it is given.

    Links to folders are followed, but no folder is read twice: a link back to a folder
    above it (a loop) or to one already read is reported and skipped. When ``boundary`` (the
    dataset root, ``top`` being one class folder under it) is given, a link to a folder
    elsewhere under ``boundary`` is skipped too, its images belonging to another class.
    Folders reached without a link are read first, so they keep their own paths.
    """
    found: list[str] = []
    problems: list[Problem] = []
    top_real = os.path.realpath(top)
    bound_real = os.path.realpath(boundary) if boundary is not None else None
    seen: dict[tuple[int, int], str] = {}
    try:
        info = os.stat(top)
        seen[(info.st_dev, info.st_ino)] = prefix.rstrip("/") or "."
    except OSError:
        pass  # scandir below reports it
    stack = [(str(top), prefix)]
    links: list[tuple[str, str, tuple[int, int]]] = []
    while stack or links:
        if not stack:  # links last, once every folder reached without one has been read
            path, child, key = links.pop()
            if key in seen:
                problems.append(Problem("folder_link", [child.rstrip("/")],
                                        f"the same folder as {seen[key]}, already read; "
                                        "not read again"))
            else:
                seen[key] = child.rstrip("/")
                stack.append((path, child))
            continue
        folder, rel = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            problems.append(Problem("unreadable_folder", [rel.rstrip("/") or "."],
                                    f"cannot list the folder ({exc.strerror or exc}), so its "
                                    "images are left out"))
            continue
        for entry in entries:
            if is_hidden(entry.name):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                if is_image_name(entry.name):
                    found.append(f"{rel}{entry.name}")
                elif others is not None:
                    others.append(f"{rel}{entry.name}")
                continue
            child = f"{rel}{entry.name}/"
            is_link = entry.is_symlink()
            try:
                info = entry.stat()
            except OSError as exc:
                problems.append(Problem("unreadable_folder", [child.rstrip("/")],
                                        f"cannot read the folder ({exc.strerror or exc}), "
                                        "so its images are left out"))
                continue
            key = (info.st_dev, info.st_ino)
            reason = None
            if is_link:
                target = os.path.realpath(entry.path)
                if _inside(os.path.realpath(folder), target) or _inside(top_real, target):
                    reason = "a link back to a folder above it (a loop); not followed"
                elif bound_real is not None and _inside(target, bound_real) \
                        and not _inside(target, top_real):
                    reason = "a link to another folder of the dataset; not followed"
            if reason is None and key in seen:
                reason = f"the same folder as {seen[key]}, already read; not read again"
            if reason is not None:
                problems.append(Problem("folder_link", [child.rstrip("/")], reason))
                continue
            if is_link:
                links.append((entry.path, child, key))
            else:
                seen[key] = child.rstrip("/")
                stack.append((entry.path, child))
    found.sort()
    problems.sort(key=lambda p: p.paths)
    return found, problems
