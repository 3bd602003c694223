"""The run registry: one SQLite table of every training run on this machine.

The run folders are the truth; the registry is the list the app shows (history, status and
best AUC) without opening every folder. Each call opens its own connection, so the training
thread and the GUI thread can both use it. A run whose process died (killed, a crash, a
power cut) never said so: it is read back as ``interrupted`` when the process that
registered it is gone.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cxr_desktop.core import paths
from cxr_desktop.core.errors import FileError

STATUSES = ("running", "done", "stopped", "failed")
#: Read back instead of "running" when the process that ran it is gone; never stored.
INTERRUPTED = "interrupted"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_dir TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    task TEXT NOT NULL DEFAULT '',
    epochs INTEGER NOT NULL DEFAULT 0,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    best_val_auc REAL,
    best_epoch INTEGER,
    pid INTEGER
)
"""


@dataclass(frozen=True)
class RunRecord:
    id: int
    run_dir: str
    created: str
    updated: str
    arch: str
    dataset: str
    task: str
    epochs: int
    epochs_done: int
    status: str
    best_val_auc: float | None
    best_epoch: int | None
    pid: int | None = None


def default_registry_path() -> Path:
    return paths.data_dir() / "runs.sqlite"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _process_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid() or os.name == "nt":  # os.kill(pid, 0) would end it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _record(row: sqlite3.Row) -> RunRecord:
    record = RunRecord(**dict(row))
    if record.status == "running" and not _process_alive(record.pid):
        return replace(record, status=INTERRUPTED)
    return record


class RunRegistry:
    """``RunRegistry()`` uses ``<data dir>/runs.sqlite``; pass a path to use another file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_registry_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(_SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            if "pid" not in columns:  # a registry written by version 0.1.0
                db.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success), closed on exit; SQLite's
        errors become one line naming the registry file."""
        try:
            with closing(sqlite3.connect(self.path, timeout=10.0)) as db, db:
                db.row_factory = sqlite3.Row
                yield db
        except sqlite3.Error as exc:
            raise FileError(self.path, f"the run registry cannot be used ({exc}); move the "
                                       "file away to start a new one (run folders are kept)"
                            ) from exc

    def start(self, run_dir: str | Path, *, arch: str, dataset: str, task: str,
              epochs: int) -> int:
        """Register a run as running (again, for a resumed run); returns its id."""
        now = _now()
        with self._db() as db:
            db.execute(
                "INSERT INTO runs (run_dir, created, updated, arch, dataset, task, epochs, "
                "status, pid) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?) "
                "ON CONFLICT(run_dir) DO UPDATE SET status='running', "
                "updated=excluded.updated, pid=excluded.pid",
                (str(Path(run_dir).resolve()), now, now, arch, dataset, task, epochs,
                 os.getpid()),
            )
            row = db.execute("SELECT id FROM runs WHERE run_dir = ?",
                             (str(Path(run_dir).resolve()),)).fetchone()
        return int(row["id"])

    def update(self, run_dir: str | Path, *, status: str | None = None,
               epochs_done: int | None = None, best_val_auc: float | None = None,
               best_epoch: int | None = None) -> None:
        """Set the given fields of a registered run (unknown runs are ignored)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        values = {"status": status, "epochs_done": epochs_done, "best_val_auc": best_val_auc,
                  "best_epoch": best_epoch}
        changes = {k: v for k, v in values.items() if v is not None}
        changes["updated"] = _now()
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE run_dir = ?",
                       (*changes.values(), str(Path(run_dir).resolve())))

    def get(self, run_dir: str | Path) -> RunRecord | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE run_dir = ?",
                             (str(Path(run_dir).resolve()),)).fetchone()
        return _record(row) if row else None

    def list(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY id DESC").fetchall()
        return [_record(row) for row in rows]

    def remove(self, run_dir: str | Path) -> None:
        """Forget a run (its folder is left alone)."""
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE run_dir = ?", (str(Path(run_dir).resolve()),))
