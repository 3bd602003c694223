"""Object-CXR: ``train/ dev/ test/`` image folders beside ``train.csv dev.csv test.csv``.

Each CSV has an ``image_name`` (or ``image_path``) column and an ``annotation`` column of
shape strings; an image with any object is positive. The task is binary with classes
``no_object`` and ``object``; ``dev`` is the validation split.
"""

from __future__ import annotations

from pathlib import Path

from cxr_desktop.core.annotations.objectcxr import (
    ANNOTATION_COLUMN,
    IMAGE_COLUMNS,
    parse_objectcxr,
)
from cxr_desktop.core.data.importers.resolver import FileIndex, PathResolver
from cxr_desktop.core.data.importers.tables import (
    drop_repeated,
    read_header,
    read_table,
    split_of_name,
)
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem, Problem
from cxr_desktop.core.errors import DatasetError

NEGATIVE, POSITIVE = "no_object", "object"
CSV_NAMES = ("train.csv", "dev.csv", "valid.csv", "val.csv", "test.csv")


def is_objectcxr_header(header: list[str]) -> bool:
    return any(c in header for c in IMAGE_COLUMNS) and ANNOTATION_COLUMN in header


def objectcxr_tables(folder: Path) -> list[Path]:
    """The Object-CXR label files directly in ``folder``."""
    return [folder / n for n in CSV_NAMES
            if (folder / n).is_file() and is_objectcxr_header(read_header(folder / n))]


def import_objectcxr(path: Path) -> DatasetSpec:
    """Every Object-CXR CSV of a folder, or the one CSV given (its name gives the split)."""
    if path.is_dir():
        root, tables = path.resolve(), objectcxr_tables(path)
        if not tables:
            raise DatasetError(path, "no Object-CXR label file (train.csv, dev.csv, test.csv "
                                     "with image_name and annotation columns)")
    else:
        root, tables = path.resolve().parent, [path]
    index = FileIndex(root)
    rows: list[tuple[ImageItem, str]] = []
    problems: list[Problem] = []
    for table in tables:
        frame = read_table(table)
        image_column = next((c for c in IMAGE_COLUMNS if c in frame.columns), None)
        if image_column is None or ANNOTATION_COLUMN not in frame.columns:
            raise DatasetError(table, "needs columns image_name (or image_path) and annotation")
        split = split_of_name(table.stem)
        resolver = PathResolver(root, index, prefixes=[f"{table.stem}/"] if split else [])
        cells = zip(frame[image_column], frame[ANNOTATION_COLUMN], strict=True)
        for row, (name, text) in enumerate(cells, start=2):
            rel, problem = resolver.resolve(name)
            if problem:
                problems.append(resolver.problem(problem, rel, f"{table.name} line {row}"))
                continue
            try:
                shapes = parse_objectcxr(text, label=POSITIVE)
            except ValueError as exc:
                problems.append(Problem("bad_annotation", [rel],
                                        f"{table.name} line {row}: {exc}"))
                continue
            label = POSITIVE if text.strip() else NEGATIVE
            rows.append((ImageItem(rel, split, None, label, shapes), f"{table.name} line {row}"))
    items, repeated = drop_repeated(rows)
    problems += repeated
    if not items:
        raise DatasetError(tables[0], "no usable rows (are the images beside the CSV files?)")
    return DatasetSpec(root=root, task="binary", classes=[NEGATIVE, POSITIVE],
                       positive_class=POSITIVE, items=items, problems=index.problems + problems,
                       source={"tables": [t.resolve().relative_to(root).as_posix()
                                          for t in tables]})
