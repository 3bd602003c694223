"""``load_image``: one entry point for every radiograph file, whatever its format."""

from __future__ import annotations

import os
from pathlib import Path

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io.dicom import load_dicom
from cxr_desktop.core.io.radiograph import Radiograph
from cxr_desktop.core.io.raster import load_raster

_RASTER_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ""}


def sniff_format(path: Path, head: bytes) -> str:
    """``"dicom"`` or ``"raster"`` from the first bytes (and the suffix when unsure)."""
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_RASTER_MAGIC):
        return "raster"
    return "dicom" if path.suffix.lower() in _DICOM_SUFFIXES else "raster"


def load_image(path: str | os.PathLike[str]) -> Radiograph:
    """Load a DICOM, PNG or JPEG radiograph.

    Raises ImageLoadError, whose message names the file and the reason in plain words, for
    every file that cannot become a radiograph; never another exception for bad input.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except FileNotFoundError as exc:
        raise ImageLoadError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise ImageLoadError(path, "is a folder, not an image file") from exc
    except PermissionError as exc:
        raise ImageLoadError(path, "permission denied") from exc
    except OSError as exc:
        raise ImageLoadError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if not head:
        raise ImageLoadError(path, "empty file")
    if sniff_format(path, head) == "dicom":
        return load_dicom(path, has_preamble=head[128:132] == b"DICM")
    return load_raster(path)
