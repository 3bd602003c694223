"""NIH ChestX-ray14: ``Data_Entry_2017.csv`` and the images wherever they were unpacked.

Multi-label from ``Finding Labels`` (findings joined by ``|``; ``No Finding`` has none),
patient from ``Patient ID``, view from ``View Position``. The images are found by name under
the root (``images/``, ``images_001/images/``...). ``train_val_list.txt`` and
``test_list.txt`` beside the CSV, when there, give the official test split.
"""

from __future__ import annotations

from pathlib import Path

from cxr_desktop.core.data.importers.paths import PathResolver, path_problem
from cxr_desktop.core.data.importers.tables import apply_filters, read_table
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem, Problem
from cxr_desktop.core.errors import DatasetError

IMAGE, FINDINGS, PATIENT, VIEW = "Image Index", "Finding Labels", "Patient ID", "View Position"
NO_FINDING = "No Finding"
SPLIT_LISTS = {"train_val_list.txt": "train", "test_list.txt": "test"}


def is_nih_header(header: list[str]) -> bool:
    return IMAGE in header and FINDINGS in header


def nih_table(folder: Path) -> Path | None:
    """``Data_Entry_2017*.csv`` in ``folder``, if any."""
    found = sorted(folder.glob("Data_Entry_2017*.csv"))
    return found[0] if found else None


def view_filters(view: str | list[str] | None, column: str) -> list[str]:
    """``["<column> in PA, AP"]`` for ``view="PA,AP"`` or ``["PA", "AP"]``; ``[]`` for None."""
    if not view:
        return []
    views = view.split(",") if isinstance(view, str) else list(view)
    views = [v.strip() for v in views if v.strip()]
    return [f"{column} in {', '.join(views)}"] if views else []


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
    frame = read_table(table, columns=[IMAGE, FINDINGS])
    filters = view_filters(view, VIEW)
    frame = apply_filters(frame, filters, table)
    given = _given_splits(root)
    resolver = PathResolver(root, prefixes=["images/"])
    patients = frame[PATIENT] if PATIENT in frame.columns else [""] * len(frame)
    views = frame[VIEW] if VIEW in frame.columns else [""] * len(frame)
    items: list[ImageItem] = []
    problems: list[Problem] = []
    found: set[str] = set()
    for row, name, findings, patient, position in zip(
        frame.index, frame[IMAGE], frame[FINDINGS], patients, views, strict=True
    ):
        rel, problem = resolver.resolve(name)
        if problem:
            problems.append(path_problem(problem, rel, f"{table.name} line {row + 2}"))
            continue
        labels = {f.strip(): 1.0 for f in findings.split("|") if f.strip()}
        labels.pop(NO_FINDING, None)
        found.update(labels)
        meta = {"view": position.strip()} if position.strip() else {}
        items.append(ImageItem(rel, given.get(name.strip(), ""), patient.strip() or None,
                               labels, meta=meta))
    if not items:
        raise DatasetError(table, "no image of this table was found under its folder")
    if not found:
        raise DatasetError(table, "no finding in any row (all 'No Finding')")
    return DatasetSpec(root=root, task="multilabel", classes=sorted(found), positive_class=None,
                       items=items, filters=filters,
                       problems=resolver.index.problems + problems,
                       source={"tables": [table.name]})
