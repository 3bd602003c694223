"""A run folder: ``config.json``, ``metrics.jsonl``, ``last.pt`` and ``best.pt``.

Every write replaces the whole file atomically, ``metrics.jsonl`` included (it is small), so
a killed process leaves the previous version of a file or the new one, never a torn line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxr_desktop.core import paths
from cxr_desktop.core.atomic import atomic_write_text
from cxr_desktop.core.errors import FileError

if TYPE_CHECKING:
    from cxr_desktop.core.train.config import TrainConfig

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
#: The dataset spec a run was trained on, its splits included (written by ``fit``).
DATASET_NAME = "dataset.json"


def jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def os_reason(exc: OSError) -> str:
    """An OSError's reason in words, without the path it names (the message names it)."""
    return exc.strerror or type(exc).__name__


def make_dirs(path: str | Path, what: str = "folder") -> list[Path]:
    """Create the folder ``path`` (and missing parents); the folders made, deepest first.

    FileError naming ``path`` when it cannot be made: a file is in the way, a parent is not
    a folder, no permission, a read-only file system.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileError(path, f"cannot create the {what}: a file of that name exists")
    created = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileError(path, f"cannot create the {what} ({os_reason(exc)})") from None
    return created


def remove_empty_dirs(created: list[Path]) -> None:
    """Remove the folders ``make_dirs`` made, deepest first, as long as they are empty."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def new_run_dir(arch: str, parent: Path | None = None) -> Path:
    """A fresh, not yet existing folder ``<runs>/<YYYYmmdd-HHMMSS>-<arch>[-N]``."""
    parent = parent or paths.runs_dir()
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{arch}"
    candidate = parent / stem
    number = 1
    while candidate.exists():
        number += 1
        candidate = parent / f"{stem}-{number}"
    return candidate


class RunFolder:
    """Paths and atomic reads/writes of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_NAME

    @property
    def last_path(self) -> Path:
        return self.path / LAST_NAME

    @property
    def best_path(self) -> Path:
        return self.path / BEST_NAME

    def check_new(self) -> None:
        """FileError unless the folder is new or empty: a file in the way, a run already
        there, or other files (a run's files are never mixed with the user's)."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise FileError(self.path, "cannot create the run folder: a file of that name "
                                       "exists")
        if self.config_path.exists() or self.last_path.exists():
            raise FileError(self.path, "already holds a run: resume it or choose another "
                                       "folder")
        try:
            with os.scandir(self.path) as entries:
                empty = next(entries, None) is None
        except OSError as exc:
            raise FileError(self.path, f"cannot read the folder ({os_reason(exc)})") from None
        if not empty:
            raise FileError(self.path, "not empty and not a run folder: choose an empty or "
                                       "new folder")

    def create(self) -> list[Path]:
        """Make the folder; the folders made (for :meth:`discard`), FileError if it cannot."""
        return make_dirs(self.path, "run folder")

    def write_config(self, config: TrainConfig) -> None:
        self.create()
        try:
            config.save(self.config_path)
        except OSError as exc:
            raise FileError(self.config_path, f"cannot write ({os_reason(exc)})") from None

    def discard(self, created: list[Path]) -> None:
        """Remove what a training that failed before its first checkpoint wrote: the run's
        own files, then the folders in ``created`` (made by this call) when empty. Nothing
        else is touched."""
        for name in (CONFIG_NAME, METRICS_NAME, DATASET_NAME, LAST_NAME, BEST_NAME):
            with contextlib.suppress(OSError):
                (self.path / name).unlink(missing_ok=True)
        remove_empty_dirs(created)

    def read_config(self) -> TrainConfig:
        # Imported here: the training package imports this module (runs <-> train).
        from cxr_desktop.core.train.config import TrainConfig

        if not self.config_path.is_file():
            raise FileError(self.path, f"not a run folder (no {CONFIG_NAME})")
        return TrainConfig.load(self.config_path)

    def read_metrics(self) -> list[dict[str, Any]]:
        """One dict per finished epoch, in order."""
        if not self.metrics_path.is_file():
            return []
        records = []
        for number, line in enumerate(self.metrics_path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                raise FileError(self.metrics_path, f"line {number} is not JSON ({exc})") from exc
        return records

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(jsonable(r), sort_keys=True) + "\n" for r in records)
        atomic_write_text(self.metrics_path, text)

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Add one epoch's line, dropping any earlier line for that epoch or a later one."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) < record["epoch"]]
        self.write_metrics([*kept, record])

    def truncate_metrics(self, last_epoch: int) -> None:
        """Forget lines after ``last_epoch`` (written before a kill, redone on resume)."""
        records = self.read_metrics()
        kept = [r for r in records if r.get("epoch", 0) <= last_epoch]
        if len(kept) != len(records):
            self.write_metrics(kept)
