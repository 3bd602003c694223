"""The one in-memory form every image takes, whatever file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VoiLut:
    """A DICOM VOI LUT: ``table[i]`` is the output for stored value ``first_mapped + i``."""

    table: np.ndarray
    first_mapped: int
    explanation: str = ""


@dataclass
class Radiograph:
    """A grayscale radiograph in display polarity (larger is brighter).

    ``pixels`` are after the Modality LUT (rescale or LUT sequence) and before any VOI.
    MONOCHROME1 images are inverted on load as ``invert_offset - value`` so that the window
    the file gives (converted the same way) and every later step see display polarity; a VOI
    LUT, defined on the file's own values, is applied to ``invert_offset - pixels``.
    """

    path: str
    pixels: np.ndarray
    window: tuple[float, float]
    window_source: str
    source_format: str
    photometric: str
    bits_stored: int
    value_range: tuple[float, float]
    modality: str | None = None
    body_part: str | None = None
    view_position: str | None = None
    pixel_spacing: tuple[float, float] | None = None
    frames: int = 1
    voi_function: str = "LINEAR"
    voi_lut: VoiLut | None = None
    invert_offset: float | None = None
    notes: tuple[str, ...] = ()
    phi: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    def describe(self, show_phi: bool = False) -> dict[str, object]:
        """A JSON-ready summary; patient and study identifiers only when asked."""
        out: dict[str, object] = {
            "path": self.path,
            "format": self.source_format,
            "rows": self.rows,
            "columns": self.columns,
            "photometric": self.photometric,
            "bits_stored": self.bits_stored,
            "modality": self.modality,
            "body_part": self.body_part,
            "view_position": self.view_position,
            "pixel_spacing": list(self.pixel_spacing) if self.pixel_spacing else None,
            "window": [round(float(v), 3) for v in self.window],
            "frames": self.frames,
            "notes": list(self.notes),
        }
        if show_phi:
            out["phi"] = dict(self.phi)
        return out
