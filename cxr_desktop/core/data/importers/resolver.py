"""Finding the file a label table means: a path, a bare file name, or an id without extension.

One walk of the root (``FileIndex``) builds look-up tables of the image files by relative
path, by name and by stem (the name without an image suffix), both case-insensitive, so a
100 000-row table resolves with dictionary look-ups. A reference that fits several files is
reported as ambiguous, never picked at random; one that names a file that is not a 2-D
image (a CT volume, a report) is reported as such, not as missing. DICOM files can also be
found by their SOPInstanceUID when their names say something else (read on demand).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cxr_desktop.core.data.importers.paths import IMAGE_SUFFIXES, walk_images
from cxr_desktop.core.data.spec import Problem

_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:/|^//")
_UID = re.compile(r"^\d+(\.\d+)+$")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
#: What a file that is not a radiograph is, by the end of its name.
NOT_RADIOGRAPH = (
    ((".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".img", ".hdr", ".npy", ".npz"),
     "a volume (CT or MR), not a 2-D radiograph"),
    ((".txt", ".pdf", ".doc", ".docx", ".xml", ".json", ".csv", ".md", ".html"),
     "a report or text file, not an image"),
    ((".mp4", ".avi", ".mov", ".gif", ".webm"), "a video, not a radiograph"),
    ((".tif", ".tiff", ".bmp"), "an image format this app does not read (use PNG, JPEG or "
                                "DICOM)"),
)


def image_stem(name: str) -> str:
    """``name`` without an image suffix (``a.dcm`` -> ``a``); a UID-like name stays whole."""
    base, suffix = os.path.splitext(name)
    return base if suffix.lower() in IMAGE_SUFFIXES else name


def what_file(name: str) -> str:
    """Why a file that is not an image cannot be used, from its name."""
    lower = name.lower()
    for suffixes, reason in NOT_RADIOGRAPH:
        if lower.endswith(suffixes):
            return reason
    return "not an image file (PNG, JPEG or DICOM)"


def _unique_table(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for key, rel in keys:
        table.setdefault(key, []).append(rel)
    return table


class FileIndex:
    """The files under a root, walked once on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: set[str] | None = None
        self._others: list[str] = []
        self._by_name: dict[str, list[str]] | None = None
        self._by_stem: dict[str, list[str]] | None = None
        self._other_by_key: dict[str, list[str]] | None = None
        self._by_uid: dict[str, str] | None = None
        self.problems: list[Problem] = []

    @property
    def files(self) -> set[str]:
        """Image files; walked on first use (unlistable folders go to ``problems``)."""
        if self._files is None:
            found, self.problems = walk_images(self.root, others=self._others)
            self._files = set(found)
        return self._files

    def by_name(self, name: str) -> list[str]:
        """The image files called ``name`` anywhere under the root, whatever the case."""
        if self._by_name is None:
            self._by_name = _unique_table((rel.rsplit("/", 1)[-1].lower(), rel)
                                          for rel in self.files)
        return self._by_name.get(name.lower(), [])

    def by_stem(self, stem: str) -> list[str]:
        """The image files whose name without suffix is ``stem``, whatever the case."""
        if self._by_stem is None:
            self._by_stem = _unique_table((image_stem(rel.rsplit("/", 1)[-1]).lower(), rel)
                                          for rel in self.files if "." in rel.rsplit("/", 1)[-1])
        return self._by_stem.get(stem.lower(), [])

    def other(self, rel: str) -> list[str]:
        """Files that are not images, at ``rel`` or called like its last part."""
        _ = self.files
        if self._other_by_key is None:
            keys: list[tuple[str, str]] = []
            for path in self._others:
                name = path.rsplit("/", 1)[-1].lower()
                keys += [(path.lower(), path), (name, path), (name.split(".", 1)[0], path)]
            self._other_by_key = _unique_table(keys)
        name = rel.rsplit("/", 1)[-1].lower()
        return self._other_by_key.get(rel.lower()) or self._other_by_key.get(name) or []

    def by_uid(self, uid: str, taken: set[str]) -> str | None:
        """The DICOM file whose SOPInstanceUID is ``uid``, read from the headers of the
        DICOM-like files no row has claimed yet (``taken``), once."""
        if self._by_uid is None:
            candidates = [rel for rel in self.files if rel not in taken
                          and (rel.lower().endswith(_DICOM_SUFFIXES)
                               or "." not in rel.rsplit("/", 1)[-1])]
            self._by_uid = {}
            with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
                for rel, found in zip(candidates, pool.map(self._uid_of, candidates),
                                      strict=True):
                    if found:
                        self._by_uid.setdefault(found, rel)
        return self._by_uid.get(uid)

    def _uid_of(self, rel: str) -> str | None:
        import pydicom

        try:
            data = pydicom.dcmread(self.root / rel, stop_before_pixels=True,
                                   specific_tags=["SOPInstanceUID"])
            return str(data.get("SOPInstanceUID", "")).strip() or None
        except Exception:  # noqa: BLE001 - any unreadable file simply has no UID here
            return None


class PathResolver:
    """Turns a reference written in a label file into a file under the root.

    Tried in order: the path as written (relative to the root, or absolute inside it), the
    path under each of ``prefixes`` (``train/`` for Object-CXR names), the path without its
    leading folders (``CheXpert-v1.0-small/train/...`` seen from inside that folder), the
    file name anywhere under the root, and last the name as a stem (an id without its
    extension), both whatever the case. Several files for one name or stem make the
    reference ambiguous. ``problem(kind, rel, where)`` words what went wrong.
    """

    def __init__(self, root: Path, index: FileIndex | None = None,
                 prefixes: Iterable[str] = ()) -> None:
        self.root = root
        self.index = index or FileIndex(root)
        self.prefixes = tuple(prefixes)
        self._root_posix = root.resolve().as_posix().rstrip("/") + "/"
        self._candidates: dict[str, list[str]] = {}
        self._resolved: dict[str, tuple[str, str | None]] = {}

    def resolve(self, raw: str) -> tuple[str, str | None]:
        """``(relative path, None)`` when found, else ``(path as best understood, kind)``.

        ``kind``: ``outside_root`` (an absolute path outside the root, or ``..`` leaving
        it), ``ambiguous`` (several files fit), ``not_radiograph`` (the file is there but
        not an image), ``missing``. Answers are remembered (tables repeat their images).
        """
        found = self._resolved.get(raw)
        if found is None:
            found = self._resolved[raw] = self._resolve(raw)
        return found

    def _resolve(self, raw: str) -> tuple[str, str | None]:
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
        parts = rel.split("/")
        for start in range(1, len(parts) - 1):
            shorter = "/".join(parts[start:])
            if shorter in files:
                return shorter, None
        for found in (self.index.by_name(parts[-1]), self.index.by_stem(parts[-1])):
            narrowed = self._narrow(found, parts)
            if len(narrowed) == 1:
                return narrowed[0], None
            if narrowed:
                self._candidates[rel] = sorted(narrowed)
                return rel, "ambiguous"
        others = self.index.other(rel)
        if others:
            self._candidates[rel] = sorted(others)
            return rel, "not_radiograph"
        return rel, "missing"

    @staticmethod
    def _narrow(found: list[str], parts: list[str]) -> list[str]:
        """Of several files, those under the folders the reference names (if any does)."""
        if len(found) < 2 or len(parts) < 2:
            return found
        folder = "/".join(parts[:-1]).lower()
        inside = [f for f in found if f.lower().rsplit("/", 1)[0].endswith(folder)]
        return inside or found

    def resolve_uid(self, raw: str, taken: set[str]) -> str | None:
        """The DICOM whose SOPInstanceUID is ``raw`` (or its stem), when ``raw`` is a UID."""
        uid = image_stem(raw.strip().replace("\\", "/").rsplit("/", 1)[-1])
        return self.index.by_uid(uid, taken) if _UID.match(uid) else None

    def problem(self, kind: str, rel: str, where: str) -> Problem:
        """The import problem for a row whose image ``resolve`` could not find."""
        found = self._candidates.get(rel, [])
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4
                                        else "")
        if kind == "ambiguous":
            return Problem("ambiguous", found, f"{where}: {rel!r} fits {len(found)} files "
                                               f"({shown}); left out, name the file by its "
                                               "path")
        if kind == "not_radiograph":
            return Problem("not_radiograph", found,
                           f"{where}: {found[0]} is {what_file(found[0])}; left out")
        what = "not found under the dataset folder" if kind == "missing" else \
            "outside the dataset folder"
        return Problem(kind, [rel], f"{where}: {what}")
