"""NIH ChestX-ray14: ``Data_Entry_2017.csv`` and the images wherever they were unpacked.

Multi-label from ``Finding Labels`` (findings joined by ``|``; ``No Finding`` has none;
names are matched to the 14 findings whatever their case),
patient from ``Patient ID``, view from ``View Position``. The images are found by name under
the root (``images/``, ``images_001/images/``...). ``train_val_list.txt`` and
``test_list.txt`` beside the CSV, when there, give the official test split.
"""

from __future__ import annotations

from pathlib import Path

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.importers.filters import apply_filters, no_rows_reason
from cxr_desktop.core.data.importers.geometry import box_shape, parse_boxes
from cxr_desktop.core.data.importers.resolver import PathResolver
from cxr_desktop.core.data.importers.tables import (
    drop_repeated,
    is_missing_cell,
    read_header,
    read_table,
    source_line,
)
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem, Problem
from cxr_desktop.core.errors import DatasetError

IMAGE, FINDINGS, PATIENT, VIEW = "Image Index", "Finding Labels", "Patient ID", "View Position"
NO_FINDING = "No Finding"
#: The 14 findings of ChestX-ray14, as its CSV spells them.
FINDINGS_14 = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion",
               "Emphysema", "Fibrosis", "Hernia", "Infiltration", "Mass", "Nodule",
               "Pleural_Thickening", "Pneumonia", "Pneumothorax")
SPLIT_LISTS = {"train_val_list.txt": "train", "test_list.txt": "test"}


def is_nih_header(header: list[str]) -> bool:
    return IMAGE in header and FINDINGS in header


def nih_table(folder: Path) -> Path | None:
    """``Data_Entry_2017*.csv`` in ``folder``, else the one CSV there with its header (the
    Kaggle sample's ``sample_labels.csv``), if any."""
    found = sorted(folder.glob("Data_Entry_2017*.csv"))
    if found:
        return found[0]
    tables = []
    for table in sorted(folder.glob("*.csv")):
        try:
            if is_nih_header(read_header(table)):
                tables.append(table)
        except DatasetError:
            continue
    return tables[0] if len(tables) == 1 else None


def view_filters(view: str | list[str] | None, column: str) -> list[str]:
    """``["<column> in PA, AP"]`` for ``view="PA,AP"`` or ``["PA", "AP"]``; ``[]`` for None."""
    if not view:
        return []
    views = view.split(",") if isinstance(view, str) else list(view)
    views = [v.strip() for v in views if v.strip()]
    return [f"{column} in {', '.join(views)}"] if views else []


def box_table(folder: Path) -> Path | None:
    """``BBox_List_2017*.csv`` in ``folder``, if any."""
    found = sorted(folder.glob("BBox_List_2017*.csv"))
    return found[0] if found else None


def read_boxes(table: Path) -> tuple[dict[str, list[tuple[Shape, str]]], list[Problem]]:
    """The boxes of NIH's box file by image name, each with the line it came from.

    Its header reads ``Image Index,Finding Label,Bbox [x,y,w,h],,,``: the four numbers are
    the four columns from the ``Bbox`` one on, whatever pandas names them.
    """
    frame = read_table(table)
    columns = list(frame.columns)
    first = next((i for i, c in enumerate(columns) if c.lower().startswith("bbox")), None)
    if first is None or len(columns) < first + 4 or IMAGE not in columns:
        raise DatasetError(table, "not an NIH box file (Image Index, Finding Label, Bbox "
                                  "[x,y,w,h])")
    label_column = next((c for c in columns if c.lower().startswith("finding label")),
                        columns[1])
    boxes = parse_boxes(frame, columns[first:first + 4], "xywh")
    out: dict[str, list[tuple[Shape, str]]] = {}
    problems: list[Problem] = []
    for row, name, label, box in zip(frame.index, frame[IMAGE], frame[label_column], boxes,
                                     strict=True):
        where = f"{table.name} line {source_line(frame, row)}"
        if isinstance(box, str) or box is None:
            problems.append(Problem("bad_annotation", [name.strip()],
                                    f"{where}: {box or 'no box'}; the box is left out"))
            continue
        finding = canonical_finding(label) or label.strip()
        out.setdefault(name.strip(), []).append((box_shape(box, finding), where))
    return out, problems


def _key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


_CANONICAL = {_key(name): name for name in (*FINDINGS_14, NO_FINDING)}
_CANONICAL["infiltrate"] = "Infiltration"  # the box file's spelling


def canonical_finding(name: str) -> str | None:
    """The ChestX-ray14 spelling of a finding written in any case (``effusion``, ``Pleural
    Thickening``, ``no finding``); None for a name that is not one of them."""
    return _CANONICAL.get(_key(name))


def _given_splits(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, split in SPLIT_LISTS.items():
        listing = folder / name
        if listing.is_file():
            out.update((line.strip(), split) for line in
                       listing.read_text(encoding="utf-8", errors="replace").splitlines()
                       if line.strip())
    return out


def import_nih(path: Path, *, view: str | list[str] | None = None) -> DatasetSpec:
    """The NIH dataset from its folder or its ``Data_Entry_2017.csv``; ``view`` filters."""
    table = nih_table(path) if path.is_dir() else path
    if table is None:
        raise DatasetError(path, "no Data_Entry_2017.csv in this folder")
    root = table.resolve().parent
    whole = read_table(table, columns=[IMAGE, FINDINGS])
    filters = view_filters(view, VIEW)
    frame = apply_filters(whole, filters, table)
    if frame.empty:
        raise DatasetError(table, no_rows_reason(whole, filters, table) or "no rows")
    given = _given_splits(root)
    resolver = PathResolver(root, prefixes=["images/"])
    patients = frame[PATIENT] if PATIENT in frame.columns else [""] * len(frame)
    views = frame[VIEW] if VIEW in frame.columns else [""] * len(frame)
    rows: list[tuple[ImageItem, str]] = []
    problems: list[Problem] = []
    unknown: dict[str, list[str]] = {}
    unlabelled = 0
    for row, name, findings, patient, position in zip(
        frame.index, frame[IMAGE], frame[FINDINGS], patients, views, strict=True
    ):
        where = f"{table.name} line {source_line(frame, row)}"
        names = [f.strip() for f in findings.split("|") if not is_missing_cell(f)]
        if not names:
            unlabelled += 1
            problems.append(Problem("unlabelled", [name.strip()],
                                    f"{where}: no Finding Labels (write No Finding for an "
                                    "image without findings); left out"))
            continue
        rel, problem = resolver.resolve(name)
        if problem:
            problems.append(resolver.problem(problem, rel, where))
            continue
        labels: dict[str, float] = {}
        for finding in names:
            canonical = canonical_finding(finding)
            if canonical is None:
                unknown.setdefault(finding, []).append(rel)
                canonical = finding
            labels[canonical] = 1.0
        labels.pop(NO_FINDING, None)
        meta = {"view": position.strip()} if position.strip() else {}
        rows.append((ImageItem(rel, given.get(name.strip(), ""), patient.strip() or None,
                               labels, meta=meta), where))
    for finding, paths in unknown.items():
        problems.append(Problem("unknown_finding", paths,
                                f"{finding!r} ({len(paths)} images) is not one of the 14 "
                                "ChestX-ray14 findings; kept as a class of its own"))
    if not rows:
        if unlabelled == len(frame):
            raise DatasetError(table, "no row has Finding Labels")
        raise DatasetError(table, "no image of this table was found under its folder")
    items, repeated = drop_repeated(rows)
    notes: list[str] = []
    boxes_at = box_table(root)
    if boxes_at is not None:
        notes, box_problems = _attach_boxes(items, boxes_at)
        problems += box_problems
    found = {name for item in items for name in item.labels}
    if not found:
        raise DatasetError(table, "no finding in any row (all 'No Finding')")
    return DatasetSpec(root=root, task="multilabel", classes=sorted(found), positive_class=None,
                       items=items, filters=filters,
                       problems=resolver.index.problems + problems + repeated, notes=notes,
                       source={"tables": [table.name] + ([boxes_at.name] if boxes_at else [])})


def _attach_boxes(items: list[ImageItem], table: Path) -> tuple[list[str], list[Problem]]:
    """Give the items the boxes of NIH's box file; a note says how many."""
    boxes, problems = read_boxes(table)
    attached = 0
    for item in items:
        found = boxes.get(item.path.rsplit("/", 1)[-1], [])
        if found:
            item.shapes = [shape for shape, _ in found]
            item.meta["shape_lines"] = [where for _, where in found]
            attached += len(found)
    images = sum(bool(item.shapes) for item in items)
    return [f"{table.name}: {attached} boxes on {images} images (x, y, w, h in image "
            "pixels)"], problems
