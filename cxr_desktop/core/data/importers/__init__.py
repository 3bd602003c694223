"""One importer per label-file layout; ``detect_format`` tells which one a path is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cxr_desktop.core.data.importers.chexpert import (
    chexpert_tables,
    import_chexpert,
    is_chexpert_header,
)
from cxr_desktop.core.data.importers.folders import import_folders
from cxr_desktop.core.data.importers.generic import import_csv
from cxr_desktop.core.data.importers.mapping import ColumnMapping
from cxr_desktop.core.data.importers.nih import import_nih, is_nih_header, nih_table
from cxr_desktop.core.data.importers.objectcxr import (
    import_objectcxr,
    is_objectcxr_header,
    objectcxr_tables,
)
from cxr_desktop.core.data.importers.paths import is_hidden, unwrap
from cxr_desktop.core.data.importers.presets import preset_table
from cxr_desktop.core.data.importers.tables import read_header, split_of_name
from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import DatasetError

IMPORTERS: dict[str, Callable[..., DatasetSpec]] = {
    "folders": import_folders,
    "objectcxr": import_objectcxr,
    "nih": import_nih,
    "chexpert": import_chexpert,
    "csv": import_csv,
}
FORMATS = ("spec", *IMPORTERS)
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def detect_format(path: str | Path) -> str:
    """The format of a folder, a CSV file or a saved spec: one of ``FORMATS``."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, "not found")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "spec"
        if path.suffix.lower() not in TABLE_SUFFIXES:
            raise DatasetError(path, "not a dataset: give a folder, a CSV file or a saved "
                                     "spec (.json)")
        header = read_header(path)
        for name, test in (("nih", is_nih_header), ("chexpert", is_chexpert_header),
                           ("objectcxr", is_objectcxr_header)):
            if test(header):
                return name
        return "csv"
    folder = unwrap(path)
    if nih_table(folder):
        return "nih"
    if chexpert_tables(folder):
        return "chexpert"
    if objectcxr_tables(folder):
        return "objectcxr"
    if preset_table(folder, read_header):
        return "csv"
    if single_table(folder, required=False) and not any(
        split_of_name(p.name) for p in folder.iterdir() if p.is_dir()
    ):
        return "csv"
    return "folders"


def folder_table(folder: Path) -> Path:
    """The label table of a folder: the one a preset recognises, else the only CSV."""
    return preset_table(folder, read_header) or single_table(folder)[0]


def single_table(folder: Path, required: bool = True) -> list[Path]:
    """``[the one CSV]`` directly in ``folder``; ``[]`` (or DatasetError) when not one."""
    tables = sorted(p for p in folder.glob("*.csv") if not is_hidden(p.name))
    if len(tables) == 1:
        return tables
    if required:
        found = ", ".join(p.name for p in tables) or "none"
        raise DatasetError(folder, f"expected one CSV file in the folder, found {found}")
    return []


__all__ = ["FORMATS", "IMPORTERS", "ColumnMapping", "detect_format", "folder_table",
           "single_table", "unwrap"]
