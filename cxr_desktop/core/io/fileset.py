"""DICOM file-sets (a CD or USB export from PACS with a ``DICOMDIR``), read with pydicom's
``FileSet``, and the image files a list of command-line paths stands for.

A file-set lists its instances under PATIENT / STUDY / SERIES records. Image records become
the images; the others (SR documents, presentation states, RT objects, key objects...) are
listed with the reason they are skipped, as are records whose file is missing. Groups are
named by their order and their descriptions ("patient 1 / study 2 Carotids / series 1 MR"),
never by names or IDs: the file-set's patient records are identifiers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cxr_desktop.core.errors import FileError, first_line

DICOMDIR_NAME = "DICOMDIR"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: Record types whose instances are images a radiograph viewer can show.
IMAGE_RECORDS = frozenset({"IMAGE"})


@dataclass(frozen=True)
class FileSetEntry:
    """One instance of a file-set: its file, record type, group, and why it is skipped
    (None for an image to read)."""

    path: Path
    record_type: str
    group: str
    skipped: str | None = None


def is_dicomdir(path: str | os.PathLike[str]) -> bool:
    """True for a file named DICOMDIR or a DICOM file whose class is a Media Storage
    Directory."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.name.upper() == DICOMDIR_NAME:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and MEDIA_STORAGE_DIRECTORY.encode() in head


def dicomdir_in(folder: str | os.PathLike[str]) -> Path | None:
    """The DICOMDIR directly in ``folder`` (any case), if there is one."""
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    found = next((n for n in names if n.upper() == DICOMDIR_NAME), None)
    return Path(folder) / found if found else None


def _attribute(instance: object, keyword: str) -> str:
    """A text element of an instance's records (its own or its series', study's), or ''."""
    try:
        return str(getattr(instance, keyword) or "").strip()
    except AttributeError:
        return ""


_DESCRIPTIONS = {"patient": (), "study": ("StudyDescription",),
                 "series": ("Modality", "SeriesDescription")}


def read_dicomdir(path: str | os.PathLike[str]) -> list[FileSetEntry]:
    """Every instance a DICOMDIR lists, in its order; FileError when it cannot be read."""
    import pydicom
    from pydicom.fileset import FileSet

    path = Path(path)
    try:
        data = pydicom.dcmread(path)
        if "DirectoryRecordSequence" not in data:
            raise ValueError("it holds no directory records")
        fileset = FileSet(data)
        instances = list(fileset)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on a broken file
        raise FileError(path, f"not a readable DICOMDIR ({first_line(exc)})") from None
    numbers: dict[int, int] = {}  # a record's number among its parent's children
    children: dict[int, int] = {}  # how many children of a record were numbered so far
    entries = []
    for instance in instances:
        node = instance.node
        parts = []
        for ancestor, kind in ((node.parent.parent.parent, "patient"),
                               (node.parent.parent, "study"), (node.parent, "series")):
            if id(ancestor) not in numbers:
                parent = id(ancestor.parent)
                children[parent] = children.get(parent, 0) + 1
                numbers[id(ancestor)] = children[parent]
            words = [_attribute(instance, k) for k in _DESCRIPTIONS[kind]]
            parts.append(" ".join([f"{kind} {numbers[id(ancestor)]}", *filter(None, words)]))
        record_type = str(node.record_type)
        file = Path(instance.path)
        skipped = None
        if record_type not in IMAGE_RECORDS:
            skipped = f"a {record_type} record, not an image"
        elif not file.is_file():
            skipped = "the file it references is missing"
        entries.append(FileSetEntry(file, record_type, " / ".join(parts), skipped))
    return entries


@dataclass
class Inputs:
    """The image files a command's paths stand for, each once, in order; one message per
    file-set record skipped on purpose (not an image) and per folder that could not be
    listed (an error: its images are missing); the file-set group of each file that came
    from a DICOMDIR."""

    files: list[Path]
    skipped: list[str]
    unreadable: list[str]
    groups: dict[Path, str]


def expand_inputs(paths: list[str]) -> Inputs:
    """Files as named; a DICOMDIR, or a folder holding one, as the images it lists; any
    other folder as the image files below it."""
    from cxr_desktop.core.data.importers.paths import walk_images

    out = Inputs([], [], [], {})
    seen: set[str] = set()

    def add(path: Path, group: str | None = None) -> None:
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            out.files.append(path)
            if group:
                out.groups[path] = group

    for name in paths:
        path = Path(name)
        listing = path if is_dicomdir(path) else dicomdir_in(path) if path.is_dir() else None
        if listing is not None:
            for entry in read_dicomdir(listing):
                if entry.skipped:
                    out.skipped.append(f"{entry.path}: {entry.skipped}; skipped")
                else:
                    add(entry.path, entry.group)
        elif path.is_dir():
            files, problems = walk_images(path)
            for rel in files:
                add(path / rel)
            out.unreadable += [f"{path / p.paths[0]}: {p.detail}" for p in problems]
        else:
            add(path)
    return out
