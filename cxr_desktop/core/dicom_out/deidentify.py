"""A de-identified copy of a DICOM file, folder or file-set (``cxr-desktop deidentify``).

Every DICOM instance is read with pydicom, de-identified by the Basic Profile
(:mod:`deid_dataset`) and written, pixel data byte for byte as it was (no decoding, the
transfer syntax kept), to a new or empty folder outside the source. Names in the copy say
nothing about the patient: ``ANON-0001/ST01/SE01/IM0001.dcm``, or with ``keep_folders``
the source's folders (a folder named by a UID or the patient renamed as in the files) and
each file named by its new SOP Instance UID. A DICOMDIR source gives a DICOMDIR copy,
written with pydicom's ``FileSet``.

Images whose Burned In Annotation is YES or not stated are listed: their pixels may show a
name, and no header edit removes it. Only when asked is a key written (a CSV of old to new
UIDs and of patients to pseudonyms and date shifts), outside both the source and the copy.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from cxr_desktop.core.atomic import atomic_write, atomic_write_text
from cxr_desktop.core.dicom_out.deid_dataset import DeidOptions, Pseudonymizer
from cxr_desktop.core.errors import FileError, first_line
from cxr_desktop.core.io.fileset import (
    DICOMDIR_NAME,
    MEDIA_STORAGE_DIRECTORY,
    dicomdir_in,
    is_dicomdir,
    read_dicomdir,
)

__all__ = ["DeidOptions", "DeidReport", "Skipped", "deidentify"]

_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class Skipped:
    """A source file not copied; ``failed`` when it looked like DICOM but could not be."""

    path: Path
    reason: str
    failed: bool = False


@dataclass
class DeidReport:
    """What a run wrote: files, the DICOMDIR and key when written, counts, the files
    skipped with their reasons and the copies whose pixels may show identifiers."""

    destination: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    dicomdir: Path | None = None
    key: Path | None = None
    patients: int = 0
    studies: int = 0
    series: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "destination": str(self.destination), "written": len(self.written),
            "patients": self.patients, "studies": self.studies, "series": self.series,
            "dicomdir": str(self.dicomdir) if self.dicomdir else None,
            "key": str(self.key) if self.key else None,
            "skipped": [{"path": str(s.path), "reason": s.reason, "failed": s.failed}
                        for s in self.skipped],
            "warnings": [{"path": str(p), "reason": r} for p, r in self.warnings],
        }


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_destination(dst: Path, src_root: Path, single_file: bool) -> None:
    if (dst == src_root) if single_file else _inside(dst, src_root):
        raise FileError(dst, f"is inside the source folder {src_root}; choose a folder "
                             "outside it")
    if dst.exists() and not dst.is_dir():
        raise FileError(dst, "exists and is not a folder")
    if dst.is_dir() and any(dst.iterdir()):
        raise FileError(dst, "is not empty; choose a new or empty folder")


def _check_key(key: Path, dst: Path, src_root: Path) -> None:
    if _inside(key, dst) or _inside(key, src_root):
        raise FileError(key, "the key links the copy back to the patients: keep it outside "
                             "both the source and the copy")
    if key.is_dir():
        raise FileError(key, "is a folder; the key is a CSV file")


def _burned_in(ds: Dataset) -> str | None:
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        return None
    value = str(ds.get("BurnedInAnnotation") or "").strip().upper()
    if value == "NO":
        return None
    stated = "YES" if value == "YES" else "not stated"
    return f"Burned In Annotation {stated}: the pixels may show names; look before sharing"


def _folder_files(root: Path, skipped: list[Skipped]) -> list[Path]:
    """The DICOM files below ``root`` (with or without a suffix), in a stable order; the
    rest go to ``skipped``."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            try:
                with open(path, "rb") as handle:
                    head = handle.read(132)
            except OSError as exc:
                skipped.append(Skipped(path, f"cannot be read ({first_line(exc)})", True))
                continue
            if head[128:132] == b"DICM" or path.suffix.lower() in _DICOM_SUFFIXES:
                files.append(path)
            else:
                skipped.append(Skipped(path, "not a DICOM file"))
    return files


def _read(path: Path) -> Dataset | Skipped:
    try:
        with warnings.catch_warnings():  # a broken file is one line in the report
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on a broken file
        return Skipped(path, f"not a readable DICOM file ({first_line(exc)})", True)
    if str(ds.get("SOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY or path.name == DICOMDIR_NAME:
        return Skipped(path, "a DICOMDIR inside the folder (give it as SRC to copy its "
                             "file-set)")
    if not ds.get("SOPInstanceUID") or not ds.get("SOPClassUID"):
        return Skipped(path, "not a readable DICOM file (no SOP Class or Instance UID)", True)
    return ds


class _Layout:
    """Where each de-identified instance goes, and the numbers of its study, series and
    instance (also the DICOMDIR's Type 1 keys when the files lack them)."""

    def __init__(self, dst: Path, src_root: Path, pseudonymizer: Pseudonymizer,
                 keep_folders: bool) -> None:
        self.dst, self.src_root, self.keep_folders = dst, src_root, keep_folders
        self.pseudonymizer = pseudonymizer
        self.studies: dict[str, int] = {}
        self.series: dict[str, int] = {}
        self.instances: dict[str, int] = {}
        self._counts: dict[str, int] = {}

    def _number(self, numbers: dict[str, int], key: str, parent: str) -> int:
        if key not in numbers:
            self._counts[parent] = self._counts.get(parent, 0) + 1
            numbers[key] = self._counts[parent]
        return numbers[key]

    def place(self, ds: Dataset, pseudonym: str) -> tuple[int, int, int]:
        study = str(ds.get("StudyInstanceUID") or f"{pseudonym}:no study")
        series = str(ds.get("SeriesInstanceUID") or f"{study}:no series")
        return (self._number(self.studies, study, pseudonym),
                self._number(self.series, series, study),
                self._number(self.instances, str(ds.SOPInstanceUID), series))

    def path(self, source: Path, ds: Dataset, pseudonym: str, originals: set[str]) -> Path:
        study, series, instance = self.place(ds, pseudonym)
        if not self.keep_folders:
            return self.dst / pseudonym / f"ST{study:02d}" / f"SE{series:02d}" / \
                f"IM{instance:04d}.dcm"
        parts = source.parent.relative_to(self.src_root).parts
        uids = self.pseudonymizer.uids
        renamed = [uids[p][0] if p in uids else pseudonym if p in originals else p
                   for p in parts]
        return self.dst.joinpath(*renamed, f"{ds.SOPInstanceUID}.dcm")


def _fill_fileset_keys(ds: Dataset, numbers: tuple[int, int, int]) -> None:
    """The Type 1 keys of a DICOMDIR's records that the profile emptied or the source
    lacked, as dummies (a zero-length value may be a dummy one, Table E.1-1a)."""
    study, series, instance = numbers
    for keyword, value in (("StudyDate", "19000101"), ("StudyTime", "000000"),
                           ("StudyID", str(study)), ("SeriesNumber", series),
                           ("InstanceNumber", instance)):
        if keyword not in ds or ds[keyword].VM == 0:
            setattr(ds, keyword, value)


def _write_fileset(fileset: object, dst: Path) -> dict[str, Path]:
    """Write the staged file-set in a hidden folder of ``dst``, then move each file into
    place with ``os.replace`` (the DICOMDIR last): no half-written file is ever seen.
    Returns where each instance went, by SOP Instance UID."""
    staging = Path(tempfile.mkdtemp(prefix=".deid-", dir=dst))
    try:
        fileset.write(staging)  # type: ignore[attr-defined]
        placed = {str(i.SOPInstanceUID): dst / i.FileID for i in fileset}  # type: ignore[attr-defined]
        for path in [*sorted(p for p in staging.rglob("*") if p.is_file()
                             and p.name != DICOMDIR_NAME), staging / DICOMDIR_NAME]:
            target = dst / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return placed


def _source_root(src: Path) -> tuple[Path, Path | None]:
    """The source's root folder, and its DICOMDIR (None for a folder or a single file)."""
    listing = src if is_dicomdir(src) else dicomdir_in(src) if src.is_dir() else None
    if listing is not None:
        return listing.parent.resolve(), listing
    return (src if src.is_dir() else src.parent).resolve(), None


def _sources(src: Path, listing: Path | None, report: DeidReport) -> list[Path]:
    """The files to copy, in a stable order; what is left out goes to the report."""
    if listing is not None:
        files = []
        for entry in read_dicomdir(listing):
            if entry.skipped:
                report.skipped.append(Skipped(entry.path, entry.skipped,
                                              "missing" in entry.skipped))
            else:
                files.append(entry.path)
        return files
    return _folder_files(src, report.skipped) if src.is_dir() else [src]


def _write_key(key: Path, pseudonymizer: Pseudonymizer, dates: str) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["kind", "original", "new"])
    for (keyword, original), name in pseudonymizer.patients.items():
        writer.writerow([keyword, original, name])
        if dates == "shift":
            writer.writerow(["date_shift_days", name, pseudonymizer.shifts[name]])
    for old, (new, keyword) in pseudonymizer.uids.items():
        writer.writerow([keyword or "UID", old, new])
    atomic_write_text(key, text.getvalue())


def deidentify(src: str | os.PathLike[str], dst: str | os.PathLike[str],
               options: DeidOptions | None = None,
               key: str | os.PathLike[str] | None = None) -> DeidReport:
    """Write a de-identified copy of ``src`` (a DICOM file, a folder, or a DICOMDIR or a
    folder holding one) into ``dst``, a new or empty folder outside the source.

    Files that cannot be copied are skipped and listed in the report; a problem with the
    source, the destination or the key raises FileError before anything is written.
    """
    options = options or DeidOptions()
    src_path, dst_path = Path(src), Path(dst).resolve()
    if not src_path.exists():
        raise FileError(src_path, "not found")
    src_root, listing = _source_root(src_path)
    _check_destination(dst_path, src_root, single_file=src_path.is_file() and listing is None)
    key_path = Path(key).resolve() if key is not None else None
    if key_path is not None:
        _check_key(key_path, dst_path, src_root)
    report = DeidReport(dst_path)
    files = _sources(src_root if src_path.is_dir() else src_path, listing, report)
    dst_path.mkdir(parents=True, exist_ok=True)

    pseudonymizer = Pseudonymizer(options)
    layout = _Layout(dst_path, src_root, pseudonymizer, options.keep_folders)
    fileset = None
    if listing is not None:
        from pydicom.fileset import FileSet

        fileset = FileSet()
    placed: dict[str, Path] = {}
    warnings: list[tuple[str, str]] = []
    for path in files:
        ds = _read(path)
        if isinstance(ds, Skipped):
            report.skipped.append(ds)
            continue
        originals = {str(ds.get(k) or "") for k in ("PatientID", "PatientName")} - {""}
        warning = _burned_in(ds)
        pseudonym = pseudonymizer.deidentify(ds)
        sop = str(ds.SOPInstanceUID)
        if sop in placed:
            report.skipped.append(Skipped(path, "a second copy of an instance already copied"))
            continue
        if fileset is not None:
            _fill_fileset_keys(ds, layout.place(ds, pseudonym))
            try:
                fileset.add(ds)
            except ValueError as exc:
                report.skipped.append(Skipped(path, f"cannot go in a DICOMDIR ({exc})", True))
                continue
            placed[sop] = path  # replaced by its place in the copy once the set is written
        else:
            placed[sop] = layout.path(path, ds, pseudonym, originals)
            atomic_write(placed[sop], lambda handle, ds=ds: pydicom.dcmwrite(
                handle, ds, enforce_file_format=True))
        if warning:
            warnings.append((sop, warning))
    if fileset is not None and placed:
        placed = _write_fileset(fileset, dst_path)
        report.dicomdir = dst_path / DICOMDIR_NAME
    report.written = list(placed.values())
    report.warnings = [(placed[sop], reason) for sop, reason in warnings]
    if key_path is not None and report.written:
        _write_key(key_path, pseudonymizer, options.dates)
        report.key = key_path
    report.patients = len(pseudonymizer.patients)
    report.studies, report.series = len(layout.studies), len(layout.series)
    return report
