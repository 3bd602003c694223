"""Warnings raised while a file is read become short notes on it, not text on stderr.

pydicom reports what it tolerates in a file (excess padding, an invalid Number of Frames...)
with UserWarnings of several lines that name paths inside site-packages. ``load_dicom``
records them with :func:`capture_warnings` and keeps one short line per warning in
``Radiograph.notes`` (:func:`warning_notes`).

Threads: ``warnings.catch_warnings`` swaps process-wide state (the filters and
``warnings.showwarning``); two blocks that overlap in different threads restore each other's
state in the wrong order and can leave a filter or a hook in place for good. Images load in
worker threads (the viewer's, the thumbnail grid's pool), so every block of this package that
enters ``catch_warnings`` holds :data:`WARNINGS_LOCK` (reentrant: blocks may nest in one
thread). Inside a block only the warnings of the thread that opened it are recorded; one
raised meanwhile by another thread (training, say) goes on to the handler that was in place,
as if no block were open (only its filtering differs: "always", for the time of the block).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pydicom

WARNINGS_LOCK = threading.RLock()
MAX_NOTE_CHARS = 160
_PYDICOM_DIR = os.path.dirname(pydicom.__file__) + os.sep
# Messages for developers about APIs, not about the file: filtered as usual, never notes.
_FOR_DEVELOPERS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_registry: dict = {}


@contextmanager
def capture_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record, in the list it yields, every warning this thread raises inside the block;
    nothing is printed, whatever the filters outside say."""
    owner = threading.get_ident()
    caught: list[warnings.WarningMessage] = []
    with WARNINGS_LOCK, warnings.catch_warnings():
        passed_on = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if threading.get_ident() == owner:
                caught.append(warnings.WarningMessage(message, category, filename, lineno,
                                                      file, line))
            else:
                passed_on(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("always")
        yield caught


def note_text(warning: warnings.WarningMessage, path: str | os.PathLike[str]) -> str:
    """One short line: the file's own path shortened to its name, lines joined, cut."""
    text = str(warning.message)
    name = Path(path).name
    for spelling in {os.fspath(path), str(Path(path).absolute())}:
        text = text.replace(spelling, name)
    text = " ".join(text.split()).rstrip(".")
    if str(warning.filename or "").startswith(_PYDICOM_DIR):
        text = f"pydicom: {text}"
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 3] + "..."


def warning_notes(caught: list[warnings.WarningMessage],
                  path: str | os.PathLike[str]) -> list[str]:
    """The notes for the warnings ``capture_warnings`` recorded, each once, in order.

    Deprecation warnings are about code, not about the file: they go back to the usual
    warnings machinery (and its filters) instead.
    """
    notes: list[str] = []
    for warning in caught:
        if issubclass(warning.category, _FOR_DEVELOPERS):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno, registry=_registry)
            continue
        note = note_text(warning, path)
        if note not in notes:
            notes.append(note)
    return notes
