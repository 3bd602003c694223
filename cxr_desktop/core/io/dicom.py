"""DICOM to Radiograph: decode one frame, apply the Modality LUT, keep the VOI for later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, get_decoder
from pydicom.uid import UID

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io.limits import MAX_PIXELS
from cxr_desktop.core.io.radiograph import Radiograph, VoiLut
from cxr_desktop.core.io.window import percentile_window

GRAY = ("MONOCHROME1", "MONOCHROME2")
COLOR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
PALETTE = "PALETTE COLOR"

#: Patient and study identifiers: kept apart, never logged, shown only when asked.
PHI_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "PatientSex",
    "PatientAge", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "StudyID", "StudyDate", "StudyTime", "InstitutionName",
    "ReferringPhysicianName", "OperatorsName",
)

# The plugin packages pydicom needs per family of transfer syntax (for error messages).
_DECODER_PACKAGES = (
    ("JPEG 2000", "pylibjpeg-openjpeg"),
    ("JPEG-LS", "pylibjpeg-libjpeg"),
    ("JPEG", "pylibjpeg-libjpeg"),
    ("RLE", "pylibjpeg-rle"),
    ("Deflated", "zlib (part of Python)"),
)
_LUT_DOMAIN_LIMIT = 1 << 20

# Real-world files often bend the standard (over-long strings, odd UIDs): read them as they
# are, without a warning per element; what matters is reported by load_image itself.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def _first(value: object) -> float:
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    return str(value).strip() or None if value not in (None, "") else None


def read_dataset(path: Path) -> Dataset:
    """Read the header and pixel data, or raise ImageLoadError with a plain reason."""
    try:
        return pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise ImageLoadError(path, f"not a readable DICOM file ({_short(exc)})") from exc


def _short(exc: BaseException, limit: int = 200) -> str:
    """One line from an exception: pydicom's per-plugin reports are joined with '; '."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    text = "; ".join(lines) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_header(path: Path, ds: Dataset, has_preamble: bool) -> str:
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        sop = UID(ds.get("SOPClassUID") or "")
        if not has_preamble and not sop and "Rows" not in ds and len(ds) < 3:
            raise ImageLoadError(path, "not an image: not a DICOM, PNG or JPEG file")
        kind = f" ({sop.name})" if sop else ""
        hint = ": the file may be cut short" if "Image" in sop.name or "Rows" in ds else ""
        raise ImageLoadError(path, f"no pixel data in this DICOM file{kind}{hint}")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows <= 0 or cols <= 0:
        raise ImageLoadError(path, "DICOM file has pixel data but no valid Rows/Columns")
    if rows * cols > MAX_PIXELS:
        raise ImageLoadError(path, f"image of {cols} x {rows} pixels is over the limit of "
                                   f"{MAX_PIXELS:,} pixels")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in GRAY + COLOR + (PALETTE,):
        raise ImageLoadError(path, f"unsupported photometric interpretation '{photometric}'")
    return photometric


def _decode_first_frame(path: Path, ds: Dataset) -> np.ndarray:
    ts = UID(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2.1")
             if hasattr(ds, "file_meta") else "1.2.840.10008.1.2.1")
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise ImageLoadError(path, f"unsupported transfer syntax {ts.name or ts}") from exc
    if not decoder.is_available:
        package = next((pkg for key, pkg in _DECODER_PACKAGES if key in ts.name), "pylibjpeg")
        raise ImageLoadError(path, f"no decoder installed for {ts.name}: install {package}")
    try:
        array, _ = decoder.as_array(ds, index=0)
    except Exception as exc:  # decoders raise ValueError, RuntimeError, OSError...
        reason = _short(exc)
        if any(k in reason.lower() for k in ("length", "insufficient", "less than expected")):
            raise ImageLoadError(path, f"truncated pixel data ({reason})") from exc
        raise ImageLoadError(path, f"could not decode pixel data ({reason})") from exc
    return array


def _modality_range(ds: Dataset) -> tuple[np.ndarray | None, float, float]:
    """The stored-value domain and the min/max the Modality LUT can output on it."""
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if hi - lo < _LUT_DOMAIN_LIMIT:
        domain = np.arange(lo, hi + 1, dtype=np.int32 if signed else np.uint32)
        out = apply_modality_lut(domain, ds)
        return domain, float(np.min(out)), float(np.max(out))
    ends = apply_modality_lut(np.array([lo, hi], dtype=np.float64), ds)
    return None, float(np.min(ends)), float(np.max(ends))


def _voi_lut(ds: Dataset, lo: float, hi: float) -> VoiLut | None:
    if "VOILUTSequence" not in ds or hi - lo >= _LUT_DOMAIN_LIMIT:
        return None
    first = int(np.floor(lo))
    domain = np.arange(first, int(np.ceil(hi)) + 1, dtype=np.int64)
    table = np.asarray(apply_voi(domain, ds, index=0))
    explanation = str(ds.VOILUTSequence[0].get("LUTExplanation", "") or "")
    return VoiLut(table=table, first_mapped=first, explanation=explanation)


def _window_from_lut(lut: VoiLut) -> tuple[float, float]:
    """The input range over which a VOI LUT changes, as a linear window."""
    varying = np.flatnonzero(np.diff(lut.table.astype(np.float64)) != 0)
    if varying.size == 0:
        return float(lut.first_mapped + lut.table.size / 2), float(lut.table.size)
    a, b = lut.first_mapped + varying[0], lut.first_mapped + varying[-1] + 1
    return (a + b) / 2.0, float(max(b - a, 1))


def load_dicom(path: Path, has_preamble: bool = True) -> Radiograph:
    ds = read_dataset(path)
    photometric = _check_header(path, ds, has_preamble)
    array = _decode_first_frame(path, ds)
    frames = int(ds.get("NumberOfFrames") or 1)
    notes = [f"multi-frame: showing frame 1 of {frames}"] if frames > 1 else []
    invert_offset = None
    voi_lut = None
    window = None
    window_source = "percentiles"
    if photometric in GRAY:
        _, lo, hi = _modality_range(ds)
        pixels = np.asarray(apply_modality_lut(array, ds), dtype=np.float32)
        voi_lut = _voi_lut(ds, lo, hi)
        if voi_lut is not None:
            window, window_source = _window_from_lut(voi_lut), "voi_lut"
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            window = (_first(ds.WindowCenter), _first(ds.WindowWidth))
            window_source = "file"
        if photometric == "MONOCHROME1":
            invert_offset = lo + hi
            pixels = np.float32(invert_offset) - pixels
            if window is not None:
                window = (invert_offset - window[0], window[1])
    else:
        rgb = apply_color_lut(array, ds) if photometric == PALETTE else array
        pixels = luminance(np.asarray(rgb))
        lo, hi = 0.0, float((1 << int(ds.get("BitsStored") or 8)) - 1)
        if photometric == PALETTE:
            lo, hi = float(pixels.min()), float(pixels.max())
        notes.append(f"colour ({photometric}) converted to luminance")
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if window is None:
        window = percentile_window(pixels)
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    return Radiograph(
        path=str(path),
        pixels=pixels,
        window=(float(window[0]), float(window[1])),
        window_source=window_source,
        source_format="DICOM",
        photometric=photometric,
        bits_stored=int(ds.get("BitsStored") or 8),
        value_range=(float(min(lo, hi)), float(max(lo, hi))),
        modality=_text(ds, "Modality"),
        body_part=_text(ds, "BodyPartExamined"),
        view_position=_text(ds, "ViewPosition"),
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing else None,
        frames=frames,
        voi_function=str(ds.get("VOILUTFunction") or "LINEAR").strip().upper(),
        voi_lut=voi_lut,
        invert_offset=invert_offset,
        notes=tuple(notes),
        phi={k: str(ds.get(k)) for k in PHI_KEYWORDS if ds.get(k) not in (None, "")},
    )


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3 or 4) array; alpha, if any, is ignored."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.ascontiguousarray(rgb[..., :3].astype(np.float32) @ weights)
