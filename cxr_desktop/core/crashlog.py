"""Crash reports without patient data, appended to ``crash.log`` in the log folder.

A traceback can hold protected health information: image and dataset paths often carry
patient names or record numbers, and exception messages can quote DICOM values. ``scrub``
replaces every file path outside the Python installation and this package by
``<file:HASH8.suffix>``, DICOM person names (``Doe^Jane``) by ``<name>``, UIDs by ``<uid>``
and runs of 6 or more digits (record numbers, accession numbers, dates) by ``<id>``; line
numbers of tracebacks are kept. HASH8 is keyed with a random per-process secret, so the
same file gets the same token within one session (reports can be correlated) while
nobody can confirm a guessed file name from the log.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import sys
import sysconfig
import threading
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from cxr_desktop import __version__
from cxr_desktop.core import paths
from cxr_desktop.core.atomic import atomic_write_text

log = logging.getLogger(__name__)

LOG_NAME = "crash.log"
#: ``crash.log`` is moved to ``crash.log.1`` (replacing it) when it would grow past this.
MAX_LOG_BYTES = 1_000_000

_KEY = os.urandom(16)
_WRITE_LOCK = threading.Lock()

# Suffixes of the files a user feeds the app; a bare or relative name with one of them is a
# user file even when no folder is given (``Doe_Jane_0042.dcm``).
_DATA_SUFFIXES = ("dcm", "dicom", "dic", "ima", "png", "jpg", "jpeg", "tif", "tiff", "bmp",
                  "csv", "tsv", "txt", "json", "xlsx", "npy", "npz", "pt", "pth", "bin",
                  "safetensors", "zip")
_SEP = r"[/\\]"
# Folder names may hold spaces ("/data/Jane Doe/1.dcm"): a folder segment ends at the next
# separator. The last segment ends with a file suffix, or at ": " (our FileError messages
# are "<path>: <reason>"), or else at the first space.
_CHARS = r"[^/\\\r\n\t:'\"<>|*?]"
_LAST_SEGMENT = (rf"(?:{_CHARS}+?\.[A-Za-z0-9]{{1,11}}(?=[\s'\",;:)\]}}>]|$)"
                 rf"|{_CHARS}+?(?=: )"
                 r"|[^/\\\s:'\"<>|*?,;)\]}]+)")
_ABS_PATH = re.compile(
    r"(?<![\w.<>:/\\])(?:[A-Za-z]:|~|\\\\[^\\/\s]+)?"
    rf"(?:{_SEP}+{_CHARS}+(?={_SEP}))*{_SEP}+{_LAST_SEGMENT}"
)
_DATA_FILE = re.compile(
    r"(?<![\w.<>:/\\-])(?:[\w.-]+" + _SEP + r")*[\w.-]*\w\.(?:" + "|".join(_DATA_SUFFIXES)
    + r")\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'([^'\r\n]*)'|\"([^\"\r\n]*)\"")
_TOKEN = r"(<(?:file:[^>]*|name|uid|id)>)"
_PERSON_NAME = re.compile(_TOKEN + r"|[A-Za-z][^\s^'\"<>=(),]*(?:\^[^\s^'\"<>=(),]*)+")
_UID = re.compile(_TOKEN + r"|(?<![\w.])\d+(?:\.\d+){3,}(?![\w.]*\w)")
_DIGITS = re.compile(_TOKEN + r"|(?<!line )(?<!\d)\d{6,}")


def _safe_roots() -> tuple[str, ...]:
    """Folders whose files are ours or Python's: their paths are kept in reports."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(__file__).resolve().parents[1])}
    roots.update(p for p in sysconfig.get_paths().values() if p)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        roots.add(frozen_root)
    return tuple(os.path.join(os.path.normcase(os.path.abspath(r)), "") for r in roots)


_SAFE_ROOTS = _safe_roots()


def _is_safe(path: str) -> bool:
    if not path.startswith(("/", "\\")) and not re.match(r"[A-Za-z]:[/\\]", path):
        return False
    return os.path.normcase(os.path.abspath(path)).startswith(_SAFE_ROOTS)


def _file_token(path: str) -> str:
    digest = hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=4, key=_KEY)
    suffix = re.search(r"\.[A-Za-z0-9]{1,11}$", path)
    return f"<file:{digest.hexdigest()}{suffix.group(0).lower() if suffix else ''}>"


def _path_or_token(path: str) -> str:
    return path if _is_safe(path) else _file_token(path)


def _looks_like_path(text: str) -> bool:
    return bool(re.match(r"(?:[A-Za-z]:|~)?[/\\]", text)) or _DATA_FILE.fullmatch(text) is not None


def _scrub_quoted(match: re.Match[str]) -> str:
    quote = match.group(0)[0]
    inner = match.group(1) if match.group(1) is not None else match.group(2)
    if _looks_like_path(inner):
        return f"{quote}{_path_or_token(inner)}{quote}"
    if "^" in inner.strip("^~ "):
        return f"{quote}<name>{quote}"
    if re.search(_SEP, inner) or _DATA_FILE.search(inner):
        return f"{quote}{_file_token(inner)}{quote}"
    return match.group(0)


def _keep_token(replacement: str):
    def replace(match: re.Match[str]) -> str:
        return match.group(1) if match.group(1) else replacement

    return replace


def scrub(text: str) -> str:
    """``text`` without file paths, person names, UIDs and ID-like numbers of patients.

    Paths inside the Python installation and this package stay (they make a traceback
    useful); every other path becomes ``<file:HASH8.suffix>``. ``line 123`` stays.
    """
    text = _QUOTED.sub(_scrub_quoted, text)
    text = _ABS_PATH.sub(lambda m: _path_or_token(m.group(0)), text)
    text = _DATA_FILE.sub(lambda m: _file_token(m.group(0)), text)
    text = _PERSON_NAME.sub(_keep_token("<name>"), text)
    text = _UID.sub(_keep_token("<uid>"), text)
    return _DIGITS.sub(_keep_token("<id>"), text)


def summary(exc: BaseException) -> str:
    """One scrubbed line for a dialog: the exception type and the first line of its message."""
    message = str(exc).strip().splitlines()
    first = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    return scrub(first)[:300]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def format_report(exc_type: type[BaseException], exc: BaseException | None,
                  tb: TracebackType | None, where: str) -> str:
    """A scrubbed report: a header with the time, place and versions, then the traceback."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    header = (f"=== {stamp} uncaught {exc_type.__name__} in {where} ===\n"
              f"cxr-desktop {__version__}, Python {platform.python_version()}, "
              f"torch {_version('torch')}, {platform.system()} {platform.machine()}\n")
    body = "".join(traceback.format_exception(exc_type, exc, tb))
    return scrub(header + body).rstrip("\n") + "\n\n"


def crash_log_path() -> Path:
    return paths.log_dir() / LOG_NAME


def write_crash(exc_type: type[BaseException], exc: BaseException | None,
                tb: TracebackType | None, where: str) -> Path:
    """Append a scrubbed report to ``crash.log`` atomically; return the log's path.

    The whole file is rewritten through a temporary file and ``os.replace``, so a reader
    (or a second crash) never sees half a report. Past ``MAX_LOG_BYTES`` the old log moves
    to ``crash.log.1``. Raises OSError when the log folder cannot be written.
    """
    report = format_report(exc_type, exc, tb, where)
    path = crash_log_path()
    with _WRITE_LOCK:
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        if old and len(old.encode("utf-8")) + len(report.encode("utf-8")) > MAX_LOG_BYTES:
            os.replace(path, path.with_name(LOG_NAME + ".1"))
            old = ""
        return atomic_write_text(path, old + report)


def record_crash(exc: BaseException, where: str) -> Path | None:
    """``write_crash`` for an exception being handled; never raises (a report must not crash).

    Returns the log's path, or None when it could not be written (the reason is logged).
    """
    try:
        return write_crash(type(exc), exc, exc.__traceback__, where)
    except OSError as error:
        log.error("could not write the crash log: %s", scrub(str(error)))
        return None
