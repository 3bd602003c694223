"""The CAM overlay as a Secondary Capture image in the source's study (highdicom SCImage).

A presentation state cannot carry a colour map, so the heat map goes to PACS as pixels: the
same blend the Viewer and ``predict --cam-out`` show (``overlay_rgb`` over the display
image), RGB, at the original size or shrunk to at most ``MAX_SIDE`` pixels a side. The
research-use note is burned into the top left corner, because most viewers show pixels and
few show ImageComments; it is also in ImageComments and the series description.
BurnedInAnnotation stays NO: that attribute says whether the pixels identify the patient,
and this text does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cxr_desktop.core.dicom_out.results import (
    MANUFACTURER,
    RESEARCH_NOTE,
    DicomSource,
    Placement,
    RunInfo,
)
from cxr_desktop.core.io import Radiograph, to_display

if TYPE_CHECKING:
    from cxr_desktop.core.infer import CamResult

#: The longest side of the Secondary Capture; larger overlays are shrunk to it.
MAX_SIDE = 2048
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def burn_in(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """White text with a black outline in the top left corner, its first line about half
    the image's width (Hershey fonts are ASCII: other characters become '?')."""
    lines = [line.encode("ascii", "replace").decode("ascii") for line in lines]
    width = cv2.getTextSize(lines[0], _FONT, 1.0, 1)[0][0]
    scale = max(0.3, 0.5 * rgb.shape[1] / max(width, 1))
    thickness = max(1, round(scale * 1.5))
    height = cv2.getTextSize(lines[0], _FONT, scale, thickness)[0][1]
    out = np.ascontiguousarray(rgb)
    margin = max(4, height // 2)
    for number, line in enumerate(lines):
        origin = (margin, margin + height + number * round(height * 1.6))
        cv2.putText(out, line, origin, _FONT, scale, (0, 0, 0), thickness * 3, cv2.LINE_AA)
        cv2.putText(out, line, origin, _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def overlay_image(radiograph: Radiograph, cam: CamResult, window: tuple[float, float] | None,
                  opacity: float, colormap: str) -> tuple[np.ndarray, float]:
    """The blended RGB uint8 image, shrunk to ``MAX_SIDE``, and the factor it was shrunk by
    (1.0 when not). A map of another size than the image is stretched to it first."""
    from cxr_desktop.core.infer.cam import overlay_rgb, to_original

    display = to_display(radiograph, window)
    heat = cam.map
    if heat.shape != display.shape:
        heat = to_original(heat, *display.shape)
    rgb = overlay_rgb(display, heat, opacity, colormap)
    factor = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
    if factor < 1.0:
        size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb, factor


def build_sc(dicom: DicomSource, cam: CamResult, run: RunInfo, place: Placement,
             window: tuple[float, float] | None, opacity: float, colormap: str
             ) -> hd.sc.SCImage:
    """The Secondary Capture of one image's CAM overlay, referencing the image."""
    rgb, factor = overlay_image(dicom.radiograph, cam, window, opacity, colormap)
    rgb = burn_in(rgb, [RESEARCH_NOTE, f"{cam.method}: {cam.target_class} ({run.label})"])
    header = dicom.header
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=header,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=place.series_uid,
        series_number=place.series_number,
        sop_instance_uid=place.sop_uid,
        instance_number=place.instance_number,
        manufacturer=MANUFACTURER,
        # highdicom wants one of its single-letter orientations here; the source's own value
        # (which may be empty, or a combination such as "AL") replaces it below.
        patient_orientation=("L", "F"),
        series_description=place.series_description,
        manufacturer_model_name=run.model_name,
        software_versions=run.app_version,
        device_serial_number=run.run_id[:64],
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    sc.PatientOrientation = header.get("PatientOrientation") or ""
    sc.BurnedInAnnotation = "NO"
    sc.ImageComments = (f"{RESEARCH_NOTE}. {cam.method} class activation map of "
                        f"'{cam.target_class}' (layer {cam.layer}) by {run.label} "
                        f"({run.model_version}), cxr-desktop {run.app_version}.")
    description = f"{cam.method} map of {cam.target_class} over the source image"
    if factor < 1.0:
        description += f", shrunk by {factor:.4f}"
    sc.DerivationDescription = description[:1024]
    reference = Dataset()
    reference.ReferencedSOPClassUID = header.SOPClassUID
    reference.ReferencedSOPInstanceUID = header.SOPInstanceUID
    sc.SourceImageSequence = [reference]
    return sc
