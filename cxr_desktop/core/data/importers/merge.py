"""Several rows of a table for one image, merged into one ``ImageItem``.

Public label files list an image once per box, per mask, per finding or per reader (RSNA,
SIIM, VinDr-CXR). A binary label is positive, and a finding is marked, when any row says so;
with a reader column each reader's rows are read together first and the readers then
merged by the rule (``any``: one reader is enough; ``majority``: more than half), the
disagreement counted for the report. Boxes and masks of every row are kept, those of a
finding the rule turned down excepted. A row with an unknown label takes no part; an image
with no known label is left out and reported. One class per image (``single`` and
``columns`` labels) cannot be merged: rows that disagree leave the image out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.importers.labels import is_unknown
from cxr_desktop.core.data.importers.tables import label_key, label_text
from cxr_desktop.core.data.spec import ImageItem, Problem


@dataclass
class Row:
    """One table row whose image was found: ``label`` as ``labels.row_labels`` gives it."""

    where: str
    rel: str
    label: Any
    patient: str = ""
    split: str = ""
    reader: str = ""
    view: str = ""
    shapes: list[Shape] = field(default_factory=list)


@dataclass
class Merged:
    items: list[ImageItem]
    problems: list[Problem]
    notes: list[str]
    positives: set[str] = field(default_factory=set)


def _lines(rows: list[Row]) -> str:
    return ", ".join(r.where for r in rows[:5]) + (" ..." if len(rows) > 5 else "")


def _item(rows: list[Row], labels: Any, shapes: list[tuple[Shape, str]]) -> ImageItem:
    meta: dict[str, Any] = {}
    view = next((r.view for r in rows if r.view), "")
    if view:
        meta["view"] = view
    if shapes:
        meta["shape_lines"] = [where for _, where in shapes]
    return ImageItem(rows[0].rel, next((r.split for r in rows if r.split), ""),
                     next((r.patient for r in rows if r.patient), None), labels,
                     [shape for shape, _ in shapes], meta)


def _votes(known: list[Row], mode: str) -> tuple[Counter[str], int]:
    """How many readers mark each class (binary: ``"1"``), and how many readers there are."""
    if len(known) == 1:  # most images: one row, one reader
        label = known[0].label
        marked = ("1",) if mode == "binary" and label == 1.0 else () if mode == "binary" \
            else label
        return Counter(marked), 1
    by_reader: dict[str, set[str]] = {}
    for row in known:
        marked = by_reader.setdefault(row.reader, set())
        if mode == "binary":
            if row.label == 1.0:
                marked.add("1")
        else:
            marked.update(row.label)
    return Counter(c for marked in by_reader.values() for c in marked), len(by_reader)


def merge_marks(groups: dict[str, list[Row]], mode: str, rule: str,
                positive: str = "", negative: str = "") -> Merged:
    """Items of ``binary`` or ``sets`` rows grouped by image (see the module docstring)."""
    out = Merged([], [], [])
    disagree = several = multi_reader = 0
    for rows in groups.values():
        known = [r for r in rows if not is_unknown(r.label)]
        if not known:
            out.problems.append(Problem("unlabelled", [rows[0].rel],
                                        f"{_lines(rows)}: no label; left out"))
            continue
        several += len(rows) > 1
        votes, readers = _votes(known, mode)
        multi_reader += readers > 1
        need = 1 if rule == "any" else readers // 2 + 1
        marked = {c for c, n in votes.items() if n >= need}
        disagree += any(n < readers for n in votes.values())
        if mode == "binary":
            labels: Any = positive if marked else negative
            shapes = [(s, r.where) for r in known if marked and r.label == 1.0
                      for s in r.shapes]
        else:
            labels = {c: 1.0 for c in sorted(marked)}
            out.positives |= marked
            shapes = [(s, r.where) for r in known for s in r.shapes
                      if r.label & marked or s.label in marked]
        out.items.append(_item(rows, labels, shapes))
    if several:
        out.notes.append(f"{several} images have several rows (boxes, masks, findings or "
                         "readers), merged into one image each")
    if multi_reader:
        rule_text = "any reader marks it (--readers majority: most readers)" \
            if rule == "any" else "most readers mark it (--readers any: one is enough)"
        out.notes.append(f"{multi_reader} images were read by several readers; they disagree "
                         f"on {disagree}: a finding counts when {rule_text}")
    return out


def merge_classes(groups: dict[str, list[Row]], has_geometry: bool) -> Merged:
    """Items of ``single`` or ``columns`` rows grouped by image: rows with the same label
    are one image (reported as repeated unless they carry boxes or masks); rows that
    disagree leave the image out, as which is right cannot be told."""
    out = Merged([], [], [])
    for rows in groups.values():
        first = rows[0]
        keys = {label_key(r.label) for r in rows}
        if len(keys) > 1:
            seen = "; ".join(f"{r.where}: {label_text(r.label)}" for r in rows)
            out.problems.append(Problem("label_conflict", [first.rel],
                                        f"listed {len(rows)} times with different labels "
                                        f"({seen}); left out, as which is right cannot be "
                                        "told"))
            continue
        if len(rows) > 1 and not has_geometry:
            again = ", ".join(r.where for r in rows[1:])
            out.problems.append(Problem("duplicate_row", [first.rel],
                                        f"{again}: listed again (first at {first.where}) with "
                                        "the same label; kept once"))
        out.items.append(_item(rows, first.label,
                               [(s, r.where) for r in rows for s in r.shapes]))
    return out

