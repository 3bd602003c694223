"""The dataset options every command that takes a DATASET accepts alike (``inspect``,
``train``, ``lr-find``, ``evaluate``): format, splits, format options and the CSV mapping.

``dataset_options(args)`` turns the flags given into the keyword arguments of
``open_dataset``; flags not given are left out, so the format's own defaults and the
preset a table's header matches still apply.
"""

from __future__ import annotations

import argparse
from typing import Any

from cxr_desktop.core.data.importers import FORMATS, detect_format
from cxr_desktop.core.data.spec import BLANK_POLICIES, UNCERTAIN_POLICIES
from cxr_desktop.core.errors import DatasetError

_MAPPING_FLAGS = {"image_column": "image", "label_columns": "labels",
                  "patient_column": "patient", "folder_column": "folder",
                  "split_column": "split", "filters": "filters", "binarize": "binarize",
                  "separator": "separator", "positive_if": "positive_if",
                  "multilabel": "multilabel", "box_columns": "boxes",
                  "box_format": "box_format", "box_label_column": "box_label",
                  "mask_column": "mask", "reader_column": "reader", "readers": "readers",
                  "view_column": "view", "unknown_values": "unknown_values",
                  "preset": "preset"}


def add_dataset_arguments(parser: argparse.ArgumentParser,
                          seed_flags: tuple[str, ...] = ("--split-seed",)) -> None:
    """Add the dataset options (after the DATASET positional the command defines)."""
    group = parser.add_argument_group("dataset options (the same for every command)")
    group.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    group.add_argument(*seed_flags, dest="split_seed", type=int, default=0,
                       help="seed of the splits made")
    group.add_argument("--val", type=float, default=0.1, metavar="FRACTION",
                       help="validation share when the dataset has no split")
    group.add_argument("--test", type=float, default=0.1, metavar="FRACTION")
    group.add_argument("--view", help="keep these views, e.g. PA or PA,AP (NIH, CheXpert, "
                                      "and a CSV with a view column)")
    group.add_argument("--uncertain", choices=UNCERTAIN_POLICIES,
                       help="CheXpert: -1 labels masked (default), positive or negative")
    group.add_argument("--blank", choices=BLANK_POLICIES,
                       help="CheXpert: blank labels negative (default) or masked")
    group.add_argument("--class-from-name", metavar="WORDS",
                       help="folders: classes from file names, e.g. bacteria,virus")
    group.add_argument("--patient-regex", metavar="REGEX",
                       help=r"folders: patient from the file name, e.g. '^(person\d+)_'")
    group.add_argument("--positive", metavar="CLASS", help="the positive class of two")
    mapping = parser.add_argument_group(
        "CSV column mapping (a preset or guessed when not given; given flags win)")
    mapping.add_argument("--preset", metavar="NAME",
                         help="siim, rsna, vindr, nih-boxes, covid, or none (default: the "
                              "one the header matches)")
    mapping.add_argument("--image-column", metavar="COLUMN")
    mapping.add_argument("--label-column", dest="label_columns", action="append",
                         metavar="COLUMN", help="repeat for a multilabel task")
    mapping.add_argument("--positive-if", metavar="EXPR",
                         help="binary label from a condition, e.g. 'finding contains "
                              "\"COVID-19\"' or 'Target == 1'")
    mapping.add_argument("--multilabel", action="store_true",
                         help="the label column holds one finding per row; rows of an "
                              "image are merged")
    mapping.add_argument("--patient-column", metavar="COLUMN")
    mapping.add_argument("--folder-column", metavar="COLUMN")
    mapping.add_argument("--split-column", metavar="COLUMN")
    mapping.add_argument("--view-column", metavar="COLUMN")
    mapping.add_argument("--filter", dest="filters", action="append", metavar="EXPR",
                         help='keep rows, e.g. \'view == "PA"\' (repeatable; ==, !=, in, '
                              "not in, contains, not contains, <, <=, >, >=)")
    mapping.add_argument("--binarize", choices=("nonzero",), help="every non-zero value is 1")
    mapping.add_argument("--separator", help="labels joined in one column, e.g. '|'")
    mapping.add_argument("--unknown-value", dest="unknown_values", action="append",
                         metavar="TEXT", help="a label cell meaning 'not known' (repeatable)")
    mapping.add_argument("--box-columns", nargs=4, metavar=("X", "Y", "W", "H"),
                         help="box columns: x, y, width, height (or x_min, y_min, x_max, "
                              "y_max with --box-format xyxy)")
    mapping.add_argument("--box-format", choices=("xywh", "xyxy"))
    mapping.add_argument("--box-label-column", metavar="COLUMN")
    mapping.add_argument("--mask-column", metavar="COLUMN",
                         help="run-length masks (SIIM's EncodedPixels)")
    mapping.add_argument("--reader-column", metavar="COLUMN",
                         help="the column telling readers apart (VinDr rad_id)")
    mapping.add_argument("--readers", choices=("any", "majority"),
                         help="how readers' labels merge (default any)")
    mapping.add_argument("--root", metavar="DIR", help="where image paths start "
                                                       "(default: the CSV's folder)")


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """``open_dataset`` keyword arguments from the flags that were given."""
    fmt = detect_format(args.dataset) if args.format == "auto" else args.format
    options: dict[str, Any] = {
        "format": fmt, "seed": args.split_seed, "val_fraction": args.val,
        "test_fraction": args.test, "view": args.view, "uncertain": args.uncertain,
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
    return {k: v for k, v in options.items() if v is not None}
