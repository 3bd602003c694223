"""Finding image files under a dataset root without opening them.

One directory walk (``os.scandir`` file types, no per-file ``stat``) builds an index of the
files under the root; label files are then resolved against it with dictionary look-ups,
which keeps 100 000 rows well under a second. A path may never leave the root.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from cxr_desktop.core.data.spec import Problem
from cxr_desktop.core.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".dic"})
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:/|^//")


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


def walk_images(top: Path, prefix: str = "",
                boundary: Path | None = None) -> tuple[list[str], list[Problem]]:
    """POSIX paths (``prefix`` + relative to ``top``) of the image files under ``top``, sorted,
    and the problems met: ``unreadable_folder`` for each folder that could not be listed,
    ``folder_link`` for each link to a folder that was not followed.

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


class FileIndex:
    """The image files under a root, walked once on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: set[str] | None = None
        self._by_name: dict[str, str | None] | None = None
        self.problems: list[Problem] = []

    @property
    def files(self) -> set[str]:
        """Walked on first use; the folders that could not be listed go to ``problems``."""
        if self._files is None:
            found, self.problems = walk_images(self.root)
            self._files = set(found)
        return self._files

    def by_name(self, name: str) -> str | None:
        """The one file called ``name`` anywhere under the root; None if none or several."""
        if self._by_name is None:
            table: dict[str, str | None] = {}
            for rel in self.files:
                base = rel.rsplit("/", 1)[-1]
                table[base] = None if base in table else rel
            self._by_name = table
        return self._by_name.get(name)


class PathResolver:
    """Turns a path written in a label file into a file under the root.

    Tried in order: the path as written (relative to the root, or absolute inside it), the
    path under each of ``prefixes`` (``train/`` for Object-CXR names), the path without its
    leading folders (``CheXpert-v1.0-small/train/...`` seen from inside that folder), and
    last the file name alone when exactly one file under the root has it (NIH's
    ``images_001/images/``).
    """

    def __init__(self, root: Path, index: FileIndex | None = None,
                 prefixes: Iterable[str] = ()) -> None:
        self.root = root
        self.index = index or FileIndex(root)
        self.prefixes = tuple(prefixes)
        self._root_posix = root.resolve().as_posix().rstrip("/") + "/"

    def resolve(self, raw: str) -> tuple[str, str | None]:
        """``(relative path, None)`` when found, else ``(path as best understood, kind)``.

        ``kind`` is ``"outside_root"`` for absolute paths outside the root and paths whose
        ``..`` leave it, ``"missing"`` when no such file is under the root.
        """
        text = raw.strip().replace("\\", "/")
        if not text:
            return text, "missing"
        if text.startswith("/") or _WINDOWS_ABSOLUTE.match(text):
            if not text.startswith(self._root_posix):
                return text, "outside_root"
            text = text[len(self._root_posix):]
        rel = posixpath.normpath(text)
        if rel == ".." or rel.startswith("../"):
            return text, "outside_root"
        files = self.index.files
        for prefix in self.prefixes:
            if prefix + rel in files:
                return prefix + rel, None
        if rel in files:
            return rel, None
        parts = PurePosixPath(rel).parts
        for start in range(1, len(parts) - 1):
            shorter = "/".join(parts[start:])
            if shorter in files:
                return shorter, None
        found = self.index.by_name(parts[-1])
        if found is not None:
            return found, None
        return rel, "missing"


def path_problem(kind: str, rel: str, where: str) -> Problem:
    """The import problem for a row whose image ``resolve`` could not find."""
    what = "not found under the dataset folder" if kind == "missing" else \
        "outside the dataset folder"
    return Problem(kind, [rel], f"{where}: {what}")
