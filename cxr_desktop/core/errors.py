"""One exception family whose messages name the file and the reason in plain words."""

from __future__ import annotations

from pathlib import Path


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
