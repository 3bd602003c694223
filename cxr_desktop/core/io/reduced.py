"""Decode a radiograph at a reduced resolution when only a small model input is needed.

A 2k x 2k JPEG 2000 radiograph takes about a second to decode in full, while a 224 px
model input needs an eighth of its resolution. JPEG 2000 stores the image as wavelet
resolution levels, so OpenJPEG can decode the low ones alone (``reduce``; Pillow exposes it
for raw codestreams). Uncompressed pixels are box-averaged by the same power of two.
The level is the deepest whose image keeps at least ``size`` pixels on its shorter side.

The reduced stored values then go through exactly the chain of ``load_image`` (the file's
Modality LUT, MONOCHROME1 inversion, VOI): the dataset is re-encoded in memory with the
smaller pixel data and read by the same DICOM reader, so nothing of the chain is copied
here. Anything unusual (multi-frame, colour, signed JPEG 2000, other compressions, PNG and
JPEG files) is loaded in full by ``load_image``.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless

from cxr_desktop.core.io.dicom import GRAY, load_dicom
from cxr_desktop.core.io.limits import MAX_PIXELS
from cxr_desktop.core.io.loader import load_image, sniff_format
from cxr_desktop.core.io.radiograph import Radiograph

_J2K_SYNTAXES = (JPEG2000Lossless, JPEG2000)
_J2K_START = b"\xff\x4f\xff\x51"  # SOC then SIZ: a raw JPEG 2000 codestream


@dataclass
class ModelImage:
    """A radiograph decoded for the model: ``radiograph.pixels`` may be smaller than the
    file's ``rows`` x ``columns`` by ``factor`` (1: the full image)."""

    radiograph: Radiograph
    rows: int
    columns: int
    factor: int

    @property
    def shape(self) -> tuple[int, int]:
        """The original (rows, columns), where CAM maps and peaks belong."""
        return self.rows, self.columns


def reduction_level(rows: int, columns: int, size: int, max_level: int = 8) -> int:
    """The largest ``k <= max_level`` with ``ceil(min(rows, columns) / 2**k) >= size``."""
    level = 0
    shorter = min(rows, columns)
    while level < max_level and -(-shorter // (1 << (level + 1))) >= size:
        level += 1
    return level


def _j2k_header(frame: bytes) -> tuple[int, int, bool, int] | None:
    """(decomposition levels, precision, signed, components) from the main header."""
    if not frame.startswith(_J2K_START):
        return None
    pos, siz, levels = 2, None, None
    while pos + 4 <= len(frame) and (siz is None or levels is None):
        marker, length = struct.unpack(">HH", frame[pos:pos + 4])
        body = frame[pos + 4:pos + 2 + length]
        if marker == 0xFF51:  # SIZ: Rsiz, sizes (8 x 4 bytes), Csiz, then Ssiz per component
            components = struct.unpack(">H", body[34:36])[0]
            ssiz = body[36]
            siz = ((ssiz & 0x7F) + 1, bool(ssiz & 0x80), components)
        elif marker == 0xFF52:  # COD: Scod, progression, layers (2), MCT, levels, ...
            levels = body[5]
        elif marker == 0xFF90:  # first tile part: the main header is over
            break
        pos += 2 + length
    if siz is None or levels is None:
        return None
    return levels, *siz


def _decode_j2k(frame: bytes, level: int, precision: int) -> np.ndarray:
    """Stored values of a grayscale codestream at 1 / 2**level resolution, via OpenJPEG.

    Pillow rounds the reduced size to nearest while OpenJPEG takes the ceiling, which breaks
    odd sizes; so the tile is set here with OpenJPEG's size and the reduce level.
    """
    image = Image.open(io.BytesIO(frame))
    width, height = image.size
    size = (-(-width // (1 << level)), -(-height // (1 << level)))
    tile = image.tile[0]
    codec, _, layers, fd, length = tile.args
    image._size = size
    image.tile = [tile._replace(extents=(0, 0, *size), args=(codec, level, layers, fd, length))]
    image.load()
    pixels = np.asarray(image)
    if image.mode == "I;16" and precision < 16:
        pixels = pixels >> (16 - precision)  # Pillow scales samples up to 16 bits
    return pixels


def _box_reduce(pixels: np.ndarray, level: int) -> np.ndarray:
    """Mean of each 2**level square (partial squares at the edges), rounded."""
    reduced = Image.fromarray(pixels.astype(np.int32)).reduce(1 << level)
    return np.asarray(reduced).astype(pixels.dtype)


def _reduced_pixels(ds: Dataset, size: int) -> tuple[np.ndarray, int] | None:
    if str(ds.get("PhotometricInterpretation", "")).strip() not in GRAY:
        return None
    if int(ds.get("NumberOfFrames") or 1) != 1 or int(ds.get("SamplesPerPixel") or 1) != 1:
        return None
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows * columns > MAX_PIXELS or "PixelData" not in ds:
        return None
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") \
        else UID("")
    if syntax in _J2K_SYNTAXES:
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
        header = _j2k_header(frame)
        if header is None or header[2] or header[3] != 1:
            return None
        level = reduction_level(rows, columns, size, header[0])
        return (_decode_j2k(frame, level, header[1]), level) if level else None
    if not syntax or syntax.is_compressed:
        return None
    level = reduction_level(rows, columns, size)
    return (_box_reduce(ds.pixel_array, level), level) if level else None


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return bool(head) and sniff_format(path, head) == "dicom"


def load_image_for_model(path: str | os.PathLike[str], size: int) -> ModelImage:
    """The radiograph at the smallest resolution that still gives a ``size`` px model input.

    Raises ImageLoadError like ``load_image`` for a file that cannot be read.
    """
    path = Path(path)
    reduced = None
    if _is_dicom(path):
        try:
            ds = pydicom.dcmread(path, force=True)
            reduced = _reduced_pixels(ds, size)
        except Exception:  # any trouble: load_image decodes and reports it
            reduced = None
    if reduced is None:
        radiograph = load_image(path)
        return ModelImage(radiograph, radiograph.rows, radiograph.columns, 1)
    pixels, level = reduced
    rows, columns = int(ds.Rows), int(ds.Columns)
    ds.set_pixel_data(np.ascontiguousarray(pixels), str(ds.PhotometricInterpretation).strip(),
                      int(ds.BitsStored))
    buffer = io.BytesIO()
    ds.save_as(buffer)
    buffer.seek(0)
    radiograph = load_dicom(buffer, has_preamble=True)  # type: ignore[arg-type]
    factor = 1 << level
    note = f"decoded at 1/{factor} resolution for the model ({columns} x {rows} in the file)"
    radiograph = replace(radiograph, path=str(path), notes=(*radiograph.notes, note))
    return ModelImage(radiograph, rows, columns, factor)
