"""Patients from the DICOM headers, for tables that do not name them (SIIM).

Follow-up films of one patient must never straddle splits; when the label table has no
patient column, the DICOM files still say whose they are. Only the images whose split is
still to be drawn are read (the header alone, in threads). The PatientID itself is never
stored: a short hash of it groups the images just as well and keeps the identifier out of
the spec, the run folders and the reports.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cxr_desktop.core.data.spec import DatasetSpec

_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")


def _looks_dicom(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(_DICOM_SUFFIXES) or "." not in name


def _patient_of(path: Path) -> str | None:
    import pydicom

    try:
        data = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
        value = str(data.get("PatientID", "") or "").strip()
    except Exception:  # noqa: BLE001 - an unreadable file has no patient; the checks say why
        return None
    if not value:
        return None
    return "dicom:" + hashlib.blake2b(value.encode(), digest_size=6).hexdigest()


def patients_from_dicom(spec: DatasetSpec) -> int:
    """Give the unsplit DICOM items of ``spec`` without a patient the hash of their header's
    PatientID, in place; returns how many got one."""
    todo = [item for item in spec.items
            if item.patient is None and not item.split and _looks_dicom(item.path)]
    if not todo:
        return 0
    workers = min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(_patient_of, (spec.abspath(item) for item in todo)))
    for item, patient in zip(todo, found, strict=True):
        item.patient = patient
    return sum(p is not None for p in found)
