"""``cxr-desktop deidentify SRC DST``: a de-identified copy of a DICOM file, folder or
file-set (PS3.15 Basic Application Level Confidentiality Profile)."""

from __future__ import annotations

import argparse
import json
import sys

from cxr_desktop.core.dicom_out.deid_dataset import DATE_CHOICES, DeidOptions
from cxr_desktop.core.dicom_out.deidentify import DeidReport, deidentify


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deidentify", help="write a de-identified copy of DICOM files (Basic Profile)",
        description="Copy every DICOM instance of SRC (a file, a folder, or a DICOMDIR or a "
        "folder holding one) into DST (a new or empty folder outside SRC) with names, IDs, "
        "accession numbers, institution, physicians and private tags removed or replaced "
        "(DICOM PS3.15 Basic Profile), UIDs replaced consistently across the set and the "
        "pixel data untouched. Images whose pixels may show names (Burned In Annotation YES "
        "or not stated) are listed. Exit status 1 when a DICOM file could not be copied or "
        "nothing was.")
    parser.add_argument("src", metavar="SRC")
    parser.add_argument("dst", metavar="DST")
    parser.add_argument("--dates", choices=DATE_CHOICES, default="shift",
                        help="shift: one random offset per patient, intervals kept "
                        "(default); remove: as the Basic Profile; keep: unchanged")
    parser.add_argument("--keep-descriptions", action="store_true",
                        help="keep study and series descriptions and comments, with the "
                        "file's own identifiers cut out (Clean Descriptors Option)")
    parser.add_argument("--keep-folders", action="store_true",
                        help="keep SRC's folders (class folders) instead of a patient / "
                        "study / series tree; a folder named by a UID or the patient is "
                        "renamed as in the files")
    parser.add_argument("--key", metavar="FILE",
                        help="also write a CSV key of old to new UIDs and patients to "
                        "pseudonyms (it re-identifies the copy: keep it apart)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _summary(report: DeidReport) -> str:
    line = (f"{_count(len(report.written), 'file', 'files')} written to {report.destination} "
            f"({_count(report.patients, 'patient', 'patients')}, "
            f"{_count(report.studies, 'study', 'studies')}, "
            f"{_count(report.series, 'series', 'series')})")
    if report.dicomdir:
        line += " with a DICOMDIR"
    if report.key:
        line += f"; key in {report.key}"
    return line


def run(args: argparse.Namespace) -> int:
    options = DeidOptions(dates=args.dates, keep_descriptions=args.keep_descriptions,
                          keep_folders=args.keep_folders)
    report = deidentify(args.src, args.dst, options, key=args.key)
    failed = sum(skip.failed for skip in report.skipped)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        for skip in report.skipped:
            print(f"skipped: {skip.path}: {skip.reason}", file=sys.stderr)
        for path, reason in report.warnings:
            print(f"warning: {path}: {reason}", file=sys.stderr)
        print(_summary(report))
        if report.warnings:
            print(f"{_count(len(report.warnings), 'image', 'images')} may show names burned "
                  "into the pixels: look before sharing the copy")
    if not report.written:
        print(f"cxr-desktop: {args.src}: no DICOM file could be de-identified", file=sys.stderr)
        return 1
    return 1 if failed else 0
