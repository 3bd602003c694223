"""One exception family whose messages name the file and the reason in plain words."""

from __future__ import annotations

import re
from pathlib import Path

_ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")
MAX_REASON_CHARS = 300


class CxrError(Exception):
    """Base of every error the core raises on purpose; its str() is a one-line message."""


class FileError(CxrError):
    """A problem with one file: the message is ``"<path>: <reason>"``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ImageLoadError(FileError):
    """An image file could not be turned into a radiograph."""


class DatasetError(FileError):
    """A dataset (folder, CSV or saved spec) could not be read."""


class ModelError(CxrError):
    """A model could not be built, or its weights could not be loaded."""


class WeightsNotFoundError(ModelError):
    """Pretrained weights are not on this machine; the message says where to put them."""


def first_line(exc: BaseException) -> str:
    """A foreign exception's text on one line, for a one-line message: its first line (with
    the next when it ends in ``:``, as torch's "Error(s) in loading state_dict for X:"),
    terminal colour codes dropped, cut at ``MAX_REASON_CHARS``; else its type name."""
    lines = [line.strip() for line in _ANSI_CODES.sub("", str(exc)).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 3] + "..."
