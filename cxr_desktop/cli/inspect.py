"""``cxr-desktop inspect DATASET``: what a dataset holds and what is wrong with it.

Exit status 0 whenever the dataset could be read, problems or not; 1 with a one-line
message naming the file when it could not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from cxr_desktop.cli._dataset_options import add_dataset_arguments, dataset_options
from cxr_desktop.core.data.spec import DatasetSpec, Problem
from cxr_desktop.core.errors import FileError

SHOWN_PER_KIND = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="summarise a dataset and report its problems",
        description="Read a dataset (a folder, a CSV or a saved spec), show its classes per "
        "split and check its images. Exit status 0 whenever the dataset could be read.")
    parser.add_argument("dataset", metavar="DATASET", help="folder, CSV file or spec .json")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--save-spec", metavar="FILE", help="save the dataset spec as JSON")
    parser.add_argument("--export-labelme", metavar="DIR",
                        help="write the dataset's boxes and masks as labelme JSON files "
                             "(one per annotated image) into DIR")
    parser.add_argument("--no-checks", action="store_true", help="do not read the images")
    parser.add_argument("--workers", type=int, help="threads reading images")
    add_dataset_arguments(parser, seed_flags=("--seed", "--split-seed"))
    parser.set_defaults(func=run)


def _progress(done: int, total: int) -> None:
    print(f"\rchecking images {done}/{total}", end="" if done < total else "\n",
          file=sys.stderr, flush=True)


def report_dict(spec: DatasetSpec, problems: list[Problem], stats: dict[str, Any],
                checked: bool) -> dict[str, Any]:
    """The report; once checked, split counts are of the images that could be read (as
    training uses them), with the unreadable ones counted apart."""
    from cxr_desktop.core.data.checks import unreadable_paths

    summary = spec.summary(unreadable_paths(problems))
    mapping = spec.source.get("mapping") or {}
    return {
        "dataset": spec.source.get("path", str(spec.root)),
        "format": spec.source.get("format", "spec"),
        "preset": mapping.get("preset"),
        "root": str(spec.root),
        "task": spec.task,
        "classes": spec.classes,
        "positive_class": spec.positive_class,
        "images": summary["images"],
        "unreadable": summary.get("unreadable", 0),
        "splits": summary["splits"],
        "annotations": spec.annotation_counts(),
        "notes": list(spec.notes),
        "checked": checked,
        "problem_counts": dict(Counter(p.kind for p in problems)),
        "problems": [p.to_dict() for p in problems],
        "stats": stats,
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"Dataset {report['dataset']}")
    bad = f" (+{report['unreadable']} unreadable)" if report["unreadable"] else ""
    print(f"  format {report['format']}, task {report['task']}, {report['images']} images{bad}"
          f", classes: {', '.join(report['classes'])}"
          + (f" (positive: {report['positive_class']})" if report["positive_class"] else ""))
    for split, entry in report["splits"].items():
        counts = ", ".join(f"{name} {n}" for name, n in entry["per_class"].items())
        bad = f" (+{entry['unreadable']} unreadable)" if entry.get("unreadable") else ""
        print(f"  {split:<6}{entry['images']:>8} images  {counts}{bad}")
    shapes = report["annotations"]
    if shapes["shapes"]:
        print(f"  annotations: {shapes['shapes']} shapes on {shapes['images']} images")
    for note in report["notes"]:
        print(f"  note: {note}")
    stats = report["stats"]
    if stats.get("width"):
        w, h, a = stats["width"], stats["height"], stats["aspect_ratio"]
        print(f"  size: width {w['min']:g}-{w['max']:g} (median {w['median']:g}), height "
              f"{h['min']:g}-{h['max']:g} (median {h['median']:g}), aspect ratio "
              f"{a['min']:g}-{a['max']:g}")
        for key in ("bits_stored", "formats", "modality", "body_part"):
            if stats.get(key):
                text = ", ".join(f"{k} {n}" for k, n in stats[key].items())
                print(f"  {key.replace('_', ' ')}: {text}")
    if not report["checked"]:
        print("  images not checked (--no-checks)")
    problems = report["problems"]
    print(f"Problems: {len(problems) or 'none'}")
    for kind, count in report["problem_counts"].items():
        print(f"  {kind} ({count})")
        for problem in [p for p in problems if p["kind"] == kind][:SHOWN_PER_KIND]:
            paths = ", ".join(problem["paths"][:4]) + (" ..." if len(problem["paths"]) > 4
                                                        else "")
            print(f"    {problem['detail']}" + (f": {paths}" if paths else ""))
        if count > SHOWN_PER_KIND:
            print(f"    ... and {count - SHOWN_PER_KIND} more (--json lists all)")


def run(args: argparse.Namespace) -> int:
    from cxr_desktop.core.data import check_dataset, open_dataset
    from cxr_desktop.core.io.fileset import dicomdir_in, is_dicomdir

    path = Path(args.dataset)
    listing = path if is_dicomdir(path) else dicomdir_in(path) if path.is_dir() else None
    if listing is not None:
        return _fileset_report(listing, args.json)
    spec = open_dataset(path, **dataset_options(args))
    if args.save_spec:
        try:
            spec.save(args.save_spec)
        except OSError as exc:
            raise FileError(args.save_spec, f"cannot save: {exc.strerror or exc}") from None
    if args.export_labelme:
        from cxr_desktop.core.annotations.dataset_export import export_labelme

        written, failed = export_labelme(spec, args.export_labelme)
        for reason in failed:
            print(f"cxr-desktop: {reason}", file=sys.stderr)
        print(f"{len(written)} labelme files written to {args.export_labelme}",
              file=sys.stderr)
    if args.no_checks:
        problems, stats = list(spec.problems), {}
    else:
        progress = _progress if not args.json and sys.stderr.isatty() else None
        result = check_dataset(spec, progress=progress, workers=args.workers)
        problems, stats = result.problems, result.stats
    report = report_dict(spec, problems, stats, checked=not args.no_checks)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
        if args.save_spec:
            print(f"Spec saved to {args.save_spec}")
    return 0


def _fileset_report(listing: Path, as_json: bool) -> int:
    """A DICOMDIR holds images but no labels: what it holds, and how to use it."""
    from cxr_desktop.core.io.fileset import read_dicomdir

    entries = read_dicomdir(listing)
    images = [e for e in entries if not e.skipped]
    groups = Counter(e.group for e in images)
    series = {g.rsplit(" / ", 1)[0] for g in groups}
    report = {
        "dataset": str(listing), "format": "dicomdir", "images": len(images),
        "patients": len({g.split(" / ")[0] for g in groups}),
        "studies": len(series), "series": len(groups), "groups": dict(groups),
        "skipped": [{"path": str(e.path), "reason": e.skipped} for e in entries
                    if e.skipped],
        "notes": ["a DICOM file-set holds images but no labels: predict on it "
                  f"(`cxr-desktop predict RUN {listing}`), or list it in a label CSV to "
                  "train on it"]}
    if as_json:
        print(json.dumps(report))
        return 0
    print(f"DICOM file-set {listing}: {report['images']} images in {report['patients']} "
          f"patient(s), {report['studies']} study(ies), {report['series']} series")
    for group, count in groups.items():
        print(f"  {group}: {count} image(s)")
    for entry in report["skipped"]:
        print(f"  skipped {entry['path']}: {entry['reason']}")
    print(f"  note: {report['notes'][0]}")
    return 0
