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
    while True:
        try:
            entries = [e for e in os.scandir(folder) if not is_hidden(e.name)]
        except OSError as exc:
            raise DatasetError(folder, f"cannot list the folder: {exc.strerror or exc}") \
                from None
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].name.lower() in SPLIT_NAMES:
            return folder
        folder = Path(entries[0].path)


def walk_images(top: Path, prefix: str = "") -> tuple[list[str], list[Problem]]:
    """POSIX paths (``prefix`` + relative to ``top``) of the image files under ``top``, sorted,
    and an ``unreadable_folder`` problem for each folder that could not be listed."""
    found: list[str] = []
    problems: list[Problem] = []
    stack = [(str(top), prefix)]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append(Problem("unreadable_folder", [rel.rstrip("/") or "."],
                                    f"cannot list the folder ({exc.strerror or exc}), so its "
                                    "images are left out"))
            continue
        for entry in entries:
            if is_hidden(entry.name):
                continue
            if entry.is_dir():
                stack.append((entry.path, f"{rel}{entry.name}/"))
            elif is_image_name(entry.name):
                found.append(f"{rel}{entry.name}")
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
