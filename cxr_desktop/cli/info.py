"""``cxr-desktop info FILE... [--json]``: what each image is, or why it cannot be read."""

from __future__ import annotations

import argparse
import json
import sys

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io import load_image
from cxr_desktop.core.io.fileset import expand_inputs

KEYS = ("path", "format", "rows", "columns", "photometric", "bits_stored", "modality",
        "body_part", "view_position", "window", "frames", "error")
_TABLE = (("format", 6), ("rows", 5), ("columns", 7), ("photometric", 13), ("bits_stored", 4),
          ("modality", 8), ("body_part", 10), ("view_position", 4), ("frames", 6))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="describe radiograph files (DICOM, PNG, JPEG)",
                                   description="Describe radiograph files: files, folders, or "
                                   "a DICOMDIR (or a folder holding one), whose image records "
                                   "are described and other records listed as skipped. Exit "
                                   "status 1 when any file could not be read; the others are "
                                   "still reported.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per file")
    parser.add_argument("--show-phi", action="store_true",
                        help="include patient and study identifiers (hidden by default)")
    parser.set_defaults(func=run)


def describe_file(path: str, show_phi: bool = False) -> dict[str, object]:
    """The info record of one file; ``error`` holds the reason when it did not load."""
    try:
        record = load_image(path).describe(show_phi=show_phi)
        record["error"] = None
    except ImageLoadError as exc:
        record = {key: None for key in KEYS}
        record.update(path=path, error=exc.reason)
    record["path"] = path
    return record


def _table_row(record: dict[str, object]) -> str:
    if record["error"]:
        return f"{record['path']}: ERROR {record['error']}"
    cells = [str(record[key] if record[key] is not None else "-").ljust(width)
             for key, width in _TABLE]
    center, width = record["window"]  # type: ignore[misc]
    line = f"{record['path']}\n  " + " ".join(cells) + f" window {center:g}/{width:g}"
    if record.get("group"):
        line += f"\n  {record['group']}"
    for note in record.get("notes") or []:  # type: ignore[union-attr]
        line += f"\n  note: {note}"
    if record.get("phi"):
        line += "\n  " + ", ".join(f"{k}={v}" for k, v in record["phi"].items())  # type: ignore[union-attr]
    return line


def run(args: argparse.Namespace) -> int:
    inputs = expand_inputs(args.files)
    failed = len(inputs.unreadable)
    if not args.json:
        print("  " + " ".join(name.upper()[:width].ljust(width) for name, width in _TABLE))
    for message in inputs.skipped:
        path, _, reason = message.partition(": ")
        if args.json:
            print(json.dumps({"path": path, "skipped": reason}), flush=True)
        else:
            print(f"{path}: SKIPPED {reason}", flush=True)
    for message in inputs.unreadable:
        print(f"cxr-desktop: {message}", file=sys.stderr)
    for path in inputs.files:
        record = describe_file(str(path), args.show_phi)
        if path in inputs.groups:
            record["group"] = inputs.groups[path]
        failed += record["error"] is not None
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            print(_table_row(record), flush=True)
    if failed and not args.json:
        print(f"{failed} of {len(inputs.files)} files could not be read", file=sys.stderr)
    return 1 if failed else 0
