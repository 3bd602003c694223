"""``open_dataset``: any folder, CSV or saved spec in, a ``DatasetSpec`` with splits out."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from cxr_desktop.core.data.importers import IMPORTERS, ColumnMapping, detect_format, folder_table
from cxr_desktop.core.data.importers.paths import unwrap
from cxr_desktop.core.data.patients import patients_from_dicom
from cxr_desktop.core.data.spec import BLANK_POLICIES, UNCERTAIN_POLICIES, DatasetSpec
from cxr_desktop.core.data.splits import assign_splits
from cxr_desktop.core.errors import DatasetError

_SPEC_OPTIONS = {"uncertain": "uncertain_policy", "blank": "blank_policy"}


def _importer_options(fmt: str, options: dict[str, Any], path: Path) -> dict[str, Any]:
    """``options`` without the unset ones; DatasetError for one the format does not take."""
    accepted = set(inspect.signature(IMPORTERS[fmt]).parameters) - {"path"}
    given = {k: v for k, v in options.items() if v is not None}
    for name in given:
        if name not in accepted:
            takes = ", ".join(sorted(accepted)) or "none"
            raise DatasetError(path, f"option {name!r} does not apply to a {fmt} dataset "
                                     f"(its options: {takes})")
    return {k: v.to_dict() if isinstance(v, ColumnMapping) else v for k, v in given.items()}


def _open_spec(path: Path, options: dict[str, Any]) -> DatasetSpec:
    spec = DatasetSpec.load(path)
    for name, value in options.items():
        if value is None:
            continue
        if name not in _SPEC_OPTIONS:
            raise DatasetError(path, f"option {name!r} does not apply to a saved spec "
                                     "(only uncertain and blank do)")
        allowed = UNCERTAIN_POLICIES if name == "uncertain" else BLANK_POLICIES
        if value not in allowed:
            raise DatasetError(path, f"{name} policy must be one of {allowed}")
        setattr(spec, _SPEC_OPTIONS[name], value)
    return spec


def open_dataset(path: str | Path, *, format: str = "auto", seed: int = 0,
                 val_fraction: float = 0.1, test_fraction: float = 0.1,
                 **options: Any) -> DatasetSpec:
    """Import the dataset at ``path`` (format detected unless given) and give it splits.

    ``options`` go to the format's importer (e.g. ``view="PA"`` for NIH, ``uncertain=
    "positive"`` for CheXpert, ``mapping=ColumnMapping(...)`` for a CSV); unset (None)
    options are ignored. Images are never opened. Raises DatasetError naming the file when
    the dataset cannot be read; bad rows become ``spec.problems`` instead.
    """
    path = Path(path).expanduser()
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "spec":
        return _open_spec(path, options)
    if fmt not in IMPORTERS:
        raise DatasetError(path, f"unknown format {fmt!r} (known: auto, spec, "
                                 f"{', '.join(IMPORTERS)})")
    if not path.exists():
        raise DatasetError(path, "not found")
    kwargs = _importer_options(fmt, options, path)
    source = path.resolve()
    if source.is_dir():
        source = unwrap(source)
        if fmt == "csv":
            source = folder_table(source)
    try:
        spec = IMPORTERS[fmt](source, **kwargs)
        from_headers = patients_from_dicom(spec)
        if from_headers:
            spec.notes.append(f"patients of {from_headers} images read from their DICOM "
                              "headers (PatientID), so a patient's films share a split")
        splits = assign_splits(spec, val_fraction=val_fraction, test_fraction=test_fraction,
                               seed=seed)
    except OSError as exc:
        raise DatasetError(getattr(exc, "filename", None) or path,
                           f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DatasetError(path, str(exc)) from None
    spec.notes += splits["made"]
    spec.source = {
        "format": fmt,
        "path": str(path.resolve()),
        "options": {**kwargs, "seed": seed, "val_fraction": val_fraction,
                    "test_fraction": test_fraction},
        **spec.source,
        "splits": splits,
    }
    return spec


def reopen(spec: DatasetSpec, **changes: Any) -> DatasetSpec:
    """Import ``spec``'s source again with the same options (to pick up changed files), or
    with some changed (``test_fraction=0``)."""
    source = spec.source
    if "format" not in source or "path" not in source:
        raise DatasetError(spec.root, "this dataset does not record where it came from")
    options = {**source.get("options", {}), **changes}
    return open_dataset(source["path"], format=source["format"], **options)
