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

from cxr_desktop.core.data.importers import FORMATS
from cxr_desktop.core.data.spec import BLANK_POLICIES, UNCERTAIN_POLICIES, DatasetSpec, Problem
from cxr_desktop.core.errors import DatasetError, FileError

SHOWN_PER_KIND = 10
_MAPPING_FLAGS = {"image_column": "image", "label_columns": "labels",
                  "patient_column": "patient", "folder_column": "folder",
                  "split_column": "split", "filters": "filters", "binarize": "binarize",
                  "separator": "separator"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="summarise a dataset and report its problems",
        description="Read a dataset (a folder, a CSV or a saved spec), show its classes per "
        "split and check its images. Exit status 0 whenever the dataset could be read.")
    parser.add_argument("dataset", metavar="DATASET", help="folder, CSV file or spec .json")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--save-spec", metavar="FILE", help="save the dataset spec as JSON")
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    parser.add_argument("--no-checks", action="store_true", help="do not read the images")
    parser.add_argument("--workers", type=int, help="threads reading images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits made")
    parser.add_argument("--val", type=float, default=0.1, metavar="FRACTION")
    parser.add_argument("--test", type=float, default=0.1, metavar="FRACTION")
    group = parser.add_argument_group("format options")
    group.add_argument("--view", help="NIH/CheXpert: keep these views, e.g. PA or PA,AP")
    group.add_argument("--uncertain", choices=UNCERTAIN_POLICIES,
                       help="CheXpert: -1 labels masked (default), positive or negative")
    group.add_argument("--blank", choices=BLANK_POLICIES,
                       help="CheXpert: blank labels negative (default) or masked")
    group.add_argument("--class-from-name", metavar="WORDS",
                       help="folders: classes from file names, e.g. bacteria,virus")
    group.add_argument("--patient-regex", metavar="REGEX",
                       help=r"folders: patient from the file name, e.g. '^(person\d+)_'")
    group.add_argument("--positive", metavar="CLASS", help="the positive class of two")
    mapping = parser.add_argument_group("CSV column mapping (guessed when not given)")
    mapping.add_argument("--image-column", metavar="COLUMN")
    mapping.add_argument("--label-column", dest="label_columns", action="append",
                         metavar="COLUMN", help="repeat for a multilabel task")
    mapping.add_argument("--patient-column", metavar="COLUMN")
    mapping.add_argument("--folder-column", metavar="COLUMN")
    mapping.add_argument("--split-column", metavar="COLUMN")
    mapping.add_argument("--filter", dest="filters", action="append", metavar="EXPR",
                         help='keep rows, e.g. \'view == "PA"\' (repeatable)')
    mapping.add_argument("--binarize", choices=("nonzero",), help="every non-zero value is 1")
    mapping.add_argument("--separator", help="labels joined in one column, e.g. '|'")
    mapping.add_argument("--root", metavar="DIR", help="where image paths start "
                                                       "(default: the CSV's folder)")
    parser.set_defaults(func=run)


def dataset_options(args: argparse.Namespace, fmt: str) -> dict[str, Any]:
    """Importer options from the flags that were given (``None`` for those that were not)."""
    options: dict[str, Any] = {"view": args.view, "uncertain": args.uncertain,
                               "blank": args.blank, "class_from_name": args.class_from_name,
                               "patient_regex": args.patient_regex, "root": args.root}
    mapping = {key: getattr(args, flag) for flag, key in _MAPPING_FLAGS.items()
               if getattr(args, flag)}
    if fmt == "csv":
        if args.positive:
            mapping["positive_class"] = args.positive
        options["mapping"] = mapping or None
    else:
        options["positive_class"] = args.positive
        if mapping:
            flags = ", ".join(f"--{f.replace('_', '-')}" for f in _MAPPING_FLAGS
                              if getattr(args, f))
            raise DatasetError(args.dataset, f"{flags} only apply to a CSV dataset "
                                             f"(this one is {fmt})")
    return options


def _progress(done: int, total: int) -> None:
    print(f"\rchecking images {done}/{total}", end="" if done < total else "\n",
          file=sys.stderr, flush=True)


def report_dict(spec: DatasetSpec, problems: list[Problem], stats: dict[str, Any],
                checked: bool) -> dict[str, Any]:
    summary = spec.summary()
    return {
        "dataset": spec.source.get("path", str(spec.root)),
        "format": spec.source.get("format", "spec"),
        "root": str(spec.root),
        "task": spec.task,
        "classes": spec.classes,
        "positive_class": spec.positive_class,
        "images": summary["images"],
        "splits": summary["splits"],
        "checked": checked,
        "problem_counts": dict(Counter(p.kind for p in problems)),
        "problems": [p.to_dict() for p in problems],
        "stats": stats,
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"Dataset {report['dataset']}")
    print(f"  format {report['format']}, task {report['task']}, {report['images']} images, "
          f"classes: {', '.join(report['classes'])}"
          + (f" (positive: {report['positive_class']})" if report["positive_class"] else ""))
    for split, entry in report["splits"].items():
        counts = ", ".join(f"{name} {n}" for name, n in entry["per_class"].items())
        print(f"  {split:<6}{entry['images']:>8} images  {counts}")
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
    from cxr_desktop.core.data import check_dataset, detect_format, open_dataset

    path = Path(args.dataset)
    fmt = detect_format(path) if args.format == "auto" else args.format
    spec = open_dataset(path, format=fmt, seed=args.seed, val_fraction=args.val,
                        test_fraction=args.test, **dataset_options(args, fmt))
    if args.save_spec:
        try:
            spec.save(args.save_spec)
        except OSError as exc:
            raise FileError(args.save_spec, f"cannot save: {exc.strerror or exc}") from None
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
