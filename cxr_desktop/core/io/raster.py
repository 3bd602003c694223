"""PNG, JPEG (and other Pillow formats) to Radiograph."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io.dicom import luminance
from cxr_desktop.core.io.limits import MAX_PIXELS
from cxr_desktop.core.io.radiograph import Radiograph
from cxr_desktop.core.io.warnings_capture import WARNINGS_LOCK
from cxr_desktop.core.io.window import full_range_window, percentile_window

_PHOTOMETRIC = {"1": "MONOCHROME2", "L": "MONOCHROME2", "LA": "MONOCHROME2",
                "I;16": "MONOCHROME2", "I;16B": "MONOCHROME2", "I;16L": "MONOCHROME2",
                "I": "MONOCHROME2", "F": "MONOCHROME2", "RGB": "RGB", "RGBA": "RGBA",
                "P": "PALETTE COLOR", "PA": "PALETTE COLOR", "CMYK": "CMYK",
                "YCbCr": "YBR_FULL"}


def _open(path: Path) -> Image.Image:
    try:
        with WARNINGS_LOCK, warnings.catch_warnings():  # process-wide: see warnings_capture
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(path, f"image is over the pixel limit ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(path, "not an image: not a DICOM, PNG or JPEG file") from exc


def _pixels(image: Image.Image) -> tuple[np.ndarray, int]:
    """Float32 luminance and the bit depth of the source samples."""
    mode = image.mode
    if mode in ("1", "L", "LA"):
        return np.asarray(image.getchannel(0), dtype=np.float32), 1 if mode == "1" else 8
    if mode.startswith("I;16"):
        return np.asarray(image, dtype=np.uint16).astype(np.float32), 16
    if mode in ("I", "F"):
        data = np.asarray(image, dtype=np.float32)
        return data, 32
    if mode in ("P", "PA"):
        return luminance(np.asarray(image.convert("RGBA"))), 8
    return luminance(np.asarray(image.convert("RGB"))), 8


def load_raster(path: Path) -> Radiograph:
    image = _open(path)
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageLoadError(path, f"image of {width} x {height} pixels is over the limit "
                                       f"of {MAX_PIXELS:,} pixels")
        fmt = image.format or "IMAGE"
        mode = image.mode
        frames = int(getattr(image, "n_frames", 1))
        try:
            image.load()
            image = ImageOps.exif_transpose(image) if fmt == "JPEG" else image
            pixels, bits = _pixels(image)
        except (OSError, ValueError, SyntaxError) as exc:
            reason = str(exc) or type(exc).__name__
            if "truncated" in reason or "broken data stream" in reason:
                reason = f"truncated image data ({reason})"
            else:
                reason = f"could not decode {fmt} data ({reason})"
            raise ImageLoadError(path, reason) from exc
    if mode not in _PHOTOMETRIC:
        raise ImageLoadError(path, f"unsupported image mode '{mode}'")
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    notes = []
    if frames > 1:
        notes.append(f"multi-frame: showing frame 1 of {frames}")
    if _PHOTOMETRIC[mode] not in ("MONOCHROME2",):
        notes.append(f"colour ({mode}) converted to luminance")
    if bits <= 8:
        value_range = (0.0, 255.0) if bits == 8 else (0.0, 1.0)
        # An 8-bit export was already windowed by whoever wrote it: show it as it is.
        window, source = full_range_window(*value_range), "full_range"
    else:
        value_range = (float(pixels.min()), float(pixels.max()))
        window, source = percentile_window(pixels), "percentiles"
    return Radiograph(
        path=str(path),
        pixels=pixels,
        window=window,
        window_source=source,
        source_format=fmt,
        photometric=_PHOTOMETRIC[mode],
        bits_stored=bits,
        value_range=value_range,
        frames=frames,
        notes=tuple(notes),
    )
