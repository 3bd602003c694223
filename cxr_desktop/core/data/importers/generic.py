"""Any label table, read through a ``ColumnMapping``: a preset's, the user's, or guessed.

The table's rows are filtered, labelled (``labels``), their images found (``resolver``:
paths, bare names, ids without extension, SOPInstanceUIDs), their boxes and masks turned
into shapes (``geometry``), and the rows of each image merged (``merge``). What went wrong
with a row is a problem naming its line; what the import assumed is a note.

One label column of text makes a binary task (two values) or a multiclass one; one column
of 0/1 (or of counts with ``binarize="nonzero"``) a binary task named after the column; a
``positive_if`` condition a binary task; several label columns, or class names per row
(``multilabel``, or joined by ``separator``), a multilabel task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cxr_desktop.core.data.importers.filters import (
    apply_filters,
    filter_notes,
    no_rows_reason,
    parse_filter,
)
from cxr_desktop.core.data.importers.geometry import (
    box_shape,
    image_size,
    is_blank_mask,
    parse_boxes,
    rle_shapes,
)
from cxr_desktop.core.data.importers.labels import is_unknown, row_labels
from cxr_desktop.core.data.importers.mapping import ColumnMapping, complete_mapping, squash
from cxr_desktop.core.data.importers.merge import Merged, Row, merge_classes, merge_marks
from cxr_desktop.core.data.importers.presets import PRESETS
from cxr_desktop.core.data.importers.resolver import PathResolver
from cxr_desktop.core.data.importers.tables import (
    is_missing_cell,
    read_table,
    single_label_classes,
    source_line,
    split_of_name,
)
from cxr_desktop.core.data.spec import DatasetSpec, Problem
from cxr_desktop.core.errors import DatasetError

_VIEW_COLUMNS = ("view", "view position", "viewposition", "projection", "ap/pa")


def positive_name(mapping: ColumnMapping) -> str:
    """The positive class of a ``positive_if`` mapping: the one named, else the value the
    condition looks for (``finding contains "COVID-19"`` -> ``COVID-19``), else
    ``positive``."""
    if mapping.positive_class:
        return mapping.positive_class
    assert mapping.positive_if is not None
    _, op, values = parse_filter(mapping.positive_if)
    if op in ("==", "in", "contains") and len(values) == 1 and values[0]:
        return values[0]
    return "positive"


def _view_setup(mapping: ColumnMapping, view: str | None, columns: list[str],
                path: Path) -> list[str]:
    """The filter that keeps ``mapping.views`` (``view`` given replaces them)."""
    if view:
        if not mapping.view:
            squashed = {squash(c): c for c in columns}
            mapping.view = next((squashed[squash(n)] for n in _VIEW_COLUMNS
                                 if squash(n) in squashed), None)
        if not mapping.view:
            raise DatasetError(path, f"no view column to keep view {view} by (columns: "
                                     f"{columns})")
        mapping.views = [v.strip() for v in view.split(",") if v.strip()]
    if not mapping.view or not mapping.views:
        return []
    shown = ", ".join(f'"{v}"' for v in mapping.views)
    return [f"{mapping.view} in {shown}"]


def _joined_labels(mapping: ColumnMapping, frame: pd.DataFrame) -> list[str]:
    """When a guessed single label column holds findings joined by ``|`` (``Effusion|Mass``,
    as NIH writes them) in a tenth of its cells or more, read it as several findings per
    image; the note says so."""
    if not mapping.guess or mapping.label_mode != "single" or mapping.binarize:
        return []
    cells = frame[mapping.labels[0]].str.strip()
    cells = cells[cells != ""]
    if not len(cells) or cells.str.contains("|", regex=False).mean() < 0.1:
        return []
    mapping.separator = "|"
    return [f"column {mapping.labels[0]!r} holds findings joined by '|': read as several "
            "findings per image (multi-label; --separator names another joint)"]


def _column(frame: pd.DataFrame, name: str | None) -> list[str]:
    return frame[name].tolist() if name else [""] * len(frame)


def _shape_label(mapping: ColumnMapping, label: Any, box_label: str, positive: str) -> str:
    if box_label.strip():
        return box_label.strip()
    if mapping.label_mode == "binary":
        return positive
    if isinstance(label, frozenset) and len(label) == 1:
        return next(iter(label))
    return label if isinstance(label, str) and label else "annotation"


class _TableReader:
    """Turns the filtered rows of one table into ``Row`` values and problems."""

    def __init__(self, path: Path, base: Path, mapping: ColumnMapping,
                 resolver: PathResolver) -> None:
        self.path, self.base, self.mapping, self.resolver = path, base, mapping, resolver
        self.problems: list[Problem] = []
        self.positive = positive_name(mapping) if mapping.positive_if else ""
        self._sizes: dict[str, tuple[int, int] | None] = {}

    def rows(self, frame: pd.DataFrame) -> list[Row]:
        mapping = self.mapping
        labels = row_labels(frame, mapping, self.path)
        boxes = parse_boxes(frame, mapping.boxes, mapping.box_format) if mapping.boxes \
            else [None] * len(frame)
        single = mapping.label_mode in ("single", "columns")
        out: list[Row] = []
        pending: list[tuple[Row, str, str]] = []
        unknown_splits: dict[str, list[str]] = {}
        cells = zip(frame.index, frame[mapping.image], _column(frame, mapping.folder),
                    _column(frame, mapping.patient), _column(frame, mapping.split),
                    _column(frame, mapping.reader), _column(frame, mapping.view),
                    _column(frame, mapping.box_label), _column(frame, mapping.mask),
                    labels, boxes, strict=True)
        for index, name, folder, patient, split, reader, view, box_label, mask, label, box \
                in cells:
            where = f"{self.path.name} line {source_line(frame, index)}"
            if single and is_unknown(label):
                self.problems.append(Problem("unlabelled", [name.strip()],
                                             f"{where}: no label"))
                continue
            row = Row(where, "", label, patient.strip(), split_of_name(split), reader.strip(),
                      view.strip())
            if not row.split and not is_missing_cell(split):
                unknown_splits.setdefault(split.strip(), []).append(name.strip())
            shape_label = _shape_label(mapping, label, box_label, self.positive)
            if isinstance(box, str):
                self.problems.append(Problem("bad_annotation", [name.strip()],
                                             f"{where}: {box}; the box is left out"))
            elif box is not None:
                row.shapes.append(box_shape(box, shape_label))
            raw = f"{folder.strip().rstrip('/')}/{name.strip()}" if folder.strip() else name
            row.rel, kind = self.resolver.resolve(raw)
            if kind == "missing":
                pending.append((row, raw, mask))
            elif kind:
                self.problems.append(self.resolver.problem(kind, row.rel, where))
            else:
                self._add_mask(row, mask, shape_label)
                out.append(row)
        out += self._by_uid(pending, {r.rel for r in out})
        self._report_splits(unknown_splits)
        return out

    def _by_uid(self, pending: list[tuple[Row, str, str]], taken: set[str]) -> list[Row]:
        """Rows whose image is found by SOPInstanceUID; the rest reported missing."""
        found = []
        for row, raw, mask in pending:
            rel = self.resolver.resolve_uid(raw, taken)
            if rel is None:
                self.problems.append(self.resolver.problem("missing", row.rel, row.where))
                continue
            row.rel = rel
            self._add_mask(row, mask,
                           _shape_label(self.mapping, row.label, "", self.positive))
            found.append(row)
        return found

    def _add_mask(self, row: Row, cell: str, label: str) -> None:
        if not self.mapping.mask or is_blank_mask(cell):
            return
        if row.rel not in self._sizes:
            self._sizes[row.rel] = image_size(self.base / row.rel)
        size = self._sizes[row.rel]
        if size is None:
            self.problems.append(Problem("bad_annotation", [row.rel],
                                         f"{row.where}: the image's size cannot be read, so "
                                         "its mask is left out"))
            return
        try:
            row.shapes += rle_shapes(cell, size[0], size[1], label)
        except ValueError as exc:
            self.problems.append(Problem("bad_annotation", [row.rel],
                                         f"{row.where}: {exc}; the mask is left out"))

    def _report_splits(self, unknown: dict[str, list[str]]) -> None:
        for value, paths in unknown.items():
            self.problems.append(Problem(
                "unknown_split", paths,
                f"split {value!r} in column {self.mapping.split!r} ({len(paths)} "
                f"row{'s' if len(paths) > 1 else ''}) is not train, val or test (nor "
                "training, valid, validation, dev, testing); these images were given a "
                "split at random"))


def _notes(mapping: ColumnMapping, whole: pd.DataFrame, frame: pd.DataFrame,
           filters: list[str], path: Path) -> list[str]:
    notes = [PRESETS[mapping.preset].note()] if mapping.preset in PRESETS else []
    notes += filter_notes(whole, filters, path)
    if mapping.view and "" in mapping.views:
        blank = int(frame[mapping.view].map(is_missing_cell).sum())
        if blank:
            rows = "row has" if blank == 1 else "rows have"
            notes.append(f"{blank} {rows} no {mapping.view}; kept")
    return notes


def _task(mapping: ColumnMapping, merged: Merged, positive: str,
          path: Path) -> tuple[str, list[str], str | None]:
    mode = mapping.label_mode
    if mode == "sets":
        if not merged.positives:
            raise DatasetError(path, "no positive label in any row")
        return "multilabel", sorted(merged.positives), None
    if mode == "columns":
        return "multilabel", list(mapping.labels), None
    if mode == "binary":
        return single_label_classes({it.labels for it in merged.items}, positive, path)
    return single_label_classes({it.labels for it in merged.items}, mapping.positive_class,
                                path)


def import_csv(path: Path, *, mapping: ColumnMapping | dict[str, Any] | None = None,
               root: str | None = None, view: str | None = None) -> DatasetSpec:
    """A dataset from a label table; image paths resolve under ``root`` (default: the
    table's folder); ``view`` keeps those views (a column named like a view, or the
    preset's)."""
    base = Path(root).resolve() if root else path.resolve().parent
    if not base.is_dir():
        raise DatasetError(base, "dataset folder not found")
    whole = read_table(path)
    resolver = PathResolver(base)
    mapping = complete_mapping(mapping, whole, path, resolver)
    joined = _joined_labels(mapping, whole)
    filters = [*mapping.filters, *_view_setup(mapping, view, list(whole.columns), path)]
    frame = apply_filters(whole, filters, path)
    if frame.empty:
        raise DatasetError(path, no_rows_reason(whole, filters, path) or "no rows")
    reader = _TableReader(path, base, mapping, resolver)
    rows = reader.rows(frame)
    if not rows:
        if all(p.kind == "unlabelled" for p in reader.problems):
            labels_text = ", ".join(repr(c) for c in mapping.label_columns())
            raise DatasetError(path, f"no row has a label (label column {labels_text} is "
                                     "empty in every row)")
        raise DatasetError(path, "no image of this table was found under "
                                 f"{base} (see the image column {mapping.image!r})")
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.rel, []).append(row)
    mode = mapping.label_mode
    if mode in ("binary", "sets"):
        positive = reader.positive
        merged = merge_marks(groups, mode, mapping.readers, positive, f"no_{positive}")
    else:
        positive = ""
        merged = merge_classes(groups, bool(mapping.boxes or mapping.mask))
    if not merged.items:
        raise DatasetError(path, "no image of this table has a label")
    task, classes, positive_class = _task(mapping, merged, positive, path)
    return DatasetSpec(root=base, task=task, classes=classes, positive_class=positive_class,
                       items=merged.items, filters=filters,
                       problems=resolver.index.problems + reader.problems + merged.problems,
                       notes=joined + _notes(mapping, whole, frame, filters, path)
                       + merged.notes,
                       source={"mapping": mapping.to_dict()})

