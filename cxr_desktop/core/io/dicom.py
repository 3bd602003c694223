"""DICOM to Radiograph: decode one frame, apply the Modality LUT, keep the VOI for later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, get_decoder
from pydicom.uid import UID

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io.dicom_values import (
    BadValue,
    first_number,
    label,
    numbers,
    raw_value,
    shown,
    whole_number,
)
from cxr_desktop.core.io.limits import MAX_PIXELS
from cxr_desktop.core.io.radiograph import Radiograph, VoiLut
from cxr_desktop.core.io.warnings_capture import capture_warnings, warning_notes
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
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
# The Image Pixel elements (PS3.3 C.7.6.3) read as whole numbers before decoding.
_PIXEL_KEYWORDS = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored",
                   "HighBit", "PixelRepresentation", "PlanarConfiguration")

# Real-world files often bend the standard (over-long strings, odd UIDs): read them as they
# are, without a warning per element; what matters is reported by load_image itself.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def _get(ds: Dataset, keyword: str) -> object:
    """The element's value, None when absent, empty or unreadable."""
    try:
        return raw_value(ds, keyword)
    except BadValue:
        return None


def _text(ds: Dataset, keyword: str, strip: bool = True) -> str | None:
    value = _get(ds, keyword)
    if value is None:
        return None
    text = str(value)
    return (text.strip() if strip else text) or None


def _first_raw(ds: Dataset, keyword: str) -> object:
    value = _get(ds, keyword)
    return value[0] if isinstance(value, (list, tuple, MultiValue)) and value else value


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


def _pixel_description(path: Path, ds: Dataset) -> dict[str, int | None]:
    """The Image Pixel elements the decoder needs, as whole numbers (None when absent).

    A value that is not a whole number makes the pixels undecodable: a one-line error naming
    the element (the decoder's own message would be a Python error about a string).
    """
    out: dict[str, int | None] = {}
    for keyword in _PIXEL_KEYWORDS:
        try:
            out[keyword] = whole_number(ds, keyword)
        except BadValue as exc:
            raise ImageLoadError(path, f"{exc}: the pixel data cannot be decoded") from exc
    return out


def _check_header(path: Path, ds: Dataset, has_preamble: bool) -> tuple[str, dict]:
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        sop = UID(_text(ds, "SOPClassUID") or "")
        if not has_preamble and not sop and "Rows" not in ds and len(ds) < 3:
            raise ImageLoadError(path, "not an image: not a DICOM, PNG or JPEG file")
        kind = f" ({sop.name})" if sop else ""
        hint = ": the file may be cut short" if "Image" in sop.name or "Rows" in ds else ""
        raise ImageLoadError(path, f"no pixel data in this DICOM file{kind}{hint}")
    pixel = _pixel_description(path, ds)
    rows, cols = pixel["Rows"] or 0, pixel["Columns"] or 0
    if rows <= 0 or cols <= 0:
        raise ImageLoadError(path, "DICOM file has pixel data but no valid Rows/Columns")
    if rows * cols > MAX_PIXELS:
        raise ImageLoadError(path, f"image of {cols} x {rows} pixels is over the limit of "
                                   f"{MAX_PIXELS:,} pixels")
    photometric = _text(ds, "PhotometricInterpretation") or ""
    if photometric not in GRAY + COLOR + (PALETTE,):
        raise ImageLoadError(path, f"unsupported photometric interpretation '{photometric}'")
    return photometric, pixel


def _frames(ds: Dataset, notes: list[str]) -> int:
    """Number of Frames; an unusable value is dropped (pydicom then reads one frame)."""
    try:
        frames = whole_number(ds, "NumberOfFrames", minimum=1)
    except BadValue as exc:
        notes.append(f"{exc}: ignored, frame 1 shown")
        del ds.NumberOfFrames
        return 1
    return frames or 1


def _decode_first_frame(path: Path, ds: Dataset) -> np.ndarray:
    meta = getattr(ds, "file_meta", None)
    ts = UID((meta.get("TransferSyntaxUID") if meta is not None else None)
             or "1.2.840.10008.1.2.1")
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


class _ModalityLut:
    """The Modality LUT (PS3.3 C.11.1): the LUT sequence, else the rescale, else identity.

    Rescale Slope and Intercept define the pixel values: a value that is not a number makes
    the file unloadable (a one-line error naming it), as does a LUT sequence pydicom cannot
    apply. As pydicom does, the rescale applies only when the file has both.
    """

    def __init__(self, path: Path, ds: Dataset, notes: list[str]) -> None:
        self.path, self.ds = path, ds
        self.has_lut = bool(_get(ds, "ModalityLUTSequence"))
        self.rescale: tuple[float, float] | None = None
        if self.has_lut:
            return
        try:
            slope = numbers(ds, "RescaleSlope", count=1)
            intercept = numbers(ds, "RescaleIntercept", count=1)
        except BadValue as exc:
            raise ImageLoadError(path, f"{exc}: the pixel values cannot be computed") from exc
        if slope is not None and intercept is not None:
            self.rescale = (slope[0], intercept[0])
        elif slope is not None or intercept is not None:
            given, missing = ("RescaleSlope", "RescaleIntercept") if slope is not None else (
                "RescaleIntercept", "RescaleSlope")
            notes.append(f"{label(given)} without {label(missing)}: ignored, no rescale")

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        if self.has_lut:
            try:
                return apply_modality_lut(arr, self.ds)
            except Exception as exc:  # a malformed descriptor or table
                raise ImageLoadError(self.path, f"{label('ModalityLUTSequence')} cannot be "
                                                f"applied ({_short(exc)})") from exc
        if self.rescale is not None:
            slope, intercept = self.rescale
            out = arr.astype(np.float64) * slope
            out += intercept
            return out
        return arr

    def value_range(self, bits: int, signed: bool) -> tuple[float, float]:
        """The min/max the Modality LUT can output on the stored-value domain."""
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if hi - lo < _LUT_DOMAIN_LIMIT:
            domain = np.arange(lo, hi + 1, dtype=np.int32 if signed else np.uint32)
        else:
            domain = np.array([lo, hi], dtype=np.float64)
        out = self(domain)
        return float(np.min(out)), float(np.max(out))


def _voi_function(ds: Dataset, notes: list[str]) -> str:
    function = (_text(ds, "VOILUTFunction") or "LINEAR").upper()
    if function not in _VOI_FUNCTIONS:
        notes.append(f"{label('VOILUTFunction')} '{shown(function)}' is not one of "
                     f"{', '.join(_VOI_FUNCTIONS)}: LINEAR used")
        return "LINEAR"
    return function


def _file_window(ds: Dataset, function: str, notes: list[str]) -> tuple[float, float] | None:
    """The file's first window, or None (with a note when the file's is unusable).

    PS3.3 C.11.2.1.2: Window Width >= 1 for LINEAR; > 0 for LINEAR_EXACT and SIGMOID.
    """
    ignored = "ignored, automatic window used"
    try:
        center = first_number(ds, "WindowCenter")
        width = first_number(ds, "WindowWidth")
    except BadValue as exc:
        notes.append(f"{exc}: {ignored}")
        return None
    if center is None and width is None:
        return None
    if center is None or width is None:
        given, missing = ("WindowCenter", "WindowWidth") if center is not None else (
            "WindowWidth", "WindowCenter")
        notes.append(f"{label(given)} without {label(missing)}: {ignored}")
        return None
    if (width < 1) if function == "LINEAR" else (width <= 0):
        need = "is less than 1" if function == "LINEAR" else f"is not above 0 ({function})"
        notes.append(f"{BadValue('WindowWidth', _first_raw(ds, 'WindowWidth'), need)}: "
                     f"{ignored}")
        return None
    return center, width


def _voi_lut(ds: Dataset, lo: float, hi: float, notes: list[str],
             fallback: str) -> VoiLut | None:
    """The first VOI LUT of the file, tabulated over ``lo..hi``; a malformed one is noted
    and ignored (it only sets the display)."""
    if not _get(ds, "VOILUTSequence") or hi - lo >= _LUT_DOMAIN_LIMIT:
        return None
    first = int(np.floor(lo))
    domain = np.arange(first, int(np.ceil(hi)) + 1, dtype=np.int64)
    try:
        table = np.asarray(apply_voi(domain, ds, index=0))
        if table.shape != domain.shape:
            raise ValueError(f"{table.size} outputs for {domain.size} inputs")
        explanation = _text(ds.VOILUTSequence[0], "LUTExplanation") or ""
    except Exception as exc:  # a missing descriptor, short data, odd bit depth...
        notes.append(f"{label('VOILUTSequence')} cannot be used ({_short(exc, 80)}): "
                     f"ignored, {fallback}")
        return None
    return VoiLut(table=table, first_mapped=first, explanation=explanation)


def _window_from_lut(lut: VoiLut) -> tuple[float, float]:
    """The input range over which a VOI LUT changes, as a linear window."""
    varying = np.flatnonzero(np.diff(lut.table.astype(np.float64)) != 0)
    if varying.size == 0:
        return float(lut.first_mapped + lut.table.size / 2), float(lut.table.size)
    a, b = lut.first_mapped + varying[0], lut.first_mapped + varying[-1] + 1
    return (a + b) / 2.0, float(max(b - a, 1))


def _pixel_spacing(ds: Dataset, notes: list[str]) -> tuple[float, float] | None:
    """Pixel Spacing, else Imager Pixel Spacing: two positive numbers, else unknown."""
    problems = []
    spacing = None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            values = numbers(ds, keyword, count=2)
        except BadValue as exc:
            problems.append(str(exc))
            continue
        if values is None:
            continue
        if min(values) <= 0:
            problems.append(str(BadValue(keyword, raw_value(ds, keyword), "is not positive")))
            continue
        spacing = (values[0], values[1])
        break
    for problem in problems:
        if spacing is None:
            notes.append(f"{problem}: pixel spacing unknown")
        else:  # a bad Pixel Spacing, a good Imager Pixel Spacing
            notes.append(f"{problem}: ignored, {label('ImagerPixelSpacing')} used")
    return spacing


def load_dicom(path: Path, has_preamble: bool = True) -> Radiograph:
    """Read one DICOM file; pydicom's warnings about it become notes (see warnings_capture)."""
    with capture_warnings() as caught:
        radiograph = _load_dicom(path, has_preamble)
    radiograph.notes += tuple(n for n in warning_notes(caught, path) if n not in radiograph.notes)
    return radiograph


def _load_dicom(path: Path, has_preamble: bool) -> Radiograph:
    ds = read_dataset(path)
    photometric, pixel = _check_header(path, ds, has_preamble)
    notes: list[str] = []
    frames = _frames(ds, notes)
    array = _decode_first_frame(path, ds)
    if frames > 1:
        notes.append(f"multi-frame: showing frame 1 of {frames}")
    bits_stored = pixel["BitsStored"] or pixel["BitsAllocated"] or None
    invert_offset = None
    voi_lut = None
    window = None
    window_source = "percentiles"
    voi_function = "LINEAR"
    if photometric in GRAY:
        modality = _ModalityLut(path, ds, notes)
        lo, hi = modality.value_range(bits_stored or 16, pixel["PixelRepresentation"] == 1)
        pixels = np.asarray(modality(array), dtype=np.float32)
        voi_function = _voi_function(ds, notes)
        window = _file_window(ds, voi_function, notes)
        fallback = "the file's window used" if window else "automatic window used"
        voi_lut = _voi_lut(ds, lo, hi, notes, fallback)
        if voi_lut is not None:
            window, window_source = _window_from_lut(voi_lut), "voi_lut"
        elif window is not None:
            window_source = "file"
        if photometric == "MONOCHROME1":
            invert_offset = lo + hi
            pixels = np.float32(invert_offset) - pixels
            if window is not None:
                window = (invert_offset - window[0], window[1])
    else:
        if photometric == PALETTE:
            try:
                rgb = apply_color_lut(array, ds)
            except Exception as exc:  # a malformed palette descriptor or table
                raise ImageLoadError(path, f"the palette colour table cannot be applied "
                                           f"({_short(exc)})") from exc
        else:
            rgb = array
        pixels = luminance(np.asarray(rgb))
        lo, hi = 0.0, float((1 << (bits_stored or 8)) - 1)
        if photometric == PALETTE:
            lo, hi = float(pixels.min()), float(pixels.max())
        notes.append(f"colour ({photometric}) converted to luminance")
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if window is None:
        window = percentile_window(pixels)
    return Radiograph(
        path=str(path),
        pixels=pixels,
        window=(float(window[0]), float(window[1])),
        window_source=window_source,
        source_format="DICOM",
        photometric=photometric,
        bits_stored=bits_stored or 8,
        value_range=(float(min(lo, hi)), float(max(lo, hi))),
        modality=_text(ds, "Modality"),
        body_part=_text(ds, "BodyPartExamined"),
        view_position=_text(ds, "ViewPosition"),
        pixel_spacing=_pixel_spacing(ds, notes),
        frames=frames,
        voi_function=voi_function,
        voi_lut=voi_lut,
        invert_offset=invert_offset,
        notes=tuple(notes),
        phi={k: text for k in PHI_KEYWORDS if (text := _text(ds, k, strip=False))},
    )


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3 or 4) array; alpha, if any, is ignored."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.ascontiguousarray(rgb[..., :3].astype(np.float32) @ weights)
