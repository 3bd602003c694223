"""Marks over the original pixels as a Grayscale Softcopy Presentation State (highdicom).

A GSPS draws vector graphics over the referenced image in any DICOM viewer, so the CAM peak
and the annotation shapes stay exact at every zoom, on the original pixels. Layers: ``CAM``
(the peak as a POINT at its pixel's centre with a label) and ``ANNOTATIONS`` (each shape
with its label); a ``NOTE`` layer carries the research-use text in display units. Shapes
map to GSPS graphics as: rectangle and polygon a closed POLYLINE, freehand and arrow an open
POLYLINE, ellipse an ELLIPSE (major axis first), text a text object at its point. Points
outside the image are moved onto its border (a GSPS may not draw outside it).

The presentation state keeps the image's own window (highdicom copies it); a MONOCHROME1
image gets an INVERSE presentation LUT, since a presentation state replaces the image's
photometric interpretation and would otherwise show it negated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import highdicom as hd
import numpy as np

from cxr_desktop import __version__
from cxr_desktop.core.dicom_out.results import (
    MANUFACTURER,
    RESEARCH_NOTE,
    DicomSource,
    Placement,
    RunInfo,
)

if TYPE_CHECKING:
    from cxr_desktop.core.annotations import Shape
    from cxr_desktop.core.infer import CamResult

_PIXEL = hd.pr.AnnotationUnitsValues.PIXEL
_GRAPHIC = hd.pr.GraphicTypeValues


def _clipped(points: Sequence[tuple[float, float]], columns: int, rows: int) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([np.clip(array[:, 0], 0.0, columns), np.clip(array[:, 1], 0.0, rows)])


def _ellipse(points: np.ndarray) -> np.ndarray:
    """The four axis end points of the ellipse in a bounding box, the major axis first."""
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    horizontal = [[x0, cy], [x1, cy]]
    vertical = [[cx, y0], [cx, y1]]
    pairs = horizontal + vertical if x1 - x0 >= y1 - y0 else vertical + horizontal
    return np.asarray(pairs, dtype=np.float64)


def shape_graphic(shape: Shape, columns: int, rows: int) -> hd.pr.GraphicObject | None:
    """The GSPS graphic of one shape (None for a text shape, which is only words)."""
    points = _clipped(shape.points, columns, rows)
    if shape.shape_type == "text":
        return None
    if shape.shape_type == "ellipse":
        return hd.pr.GraphicObject(_GRAPHIC.ELLIPSE, _ellipse(points), _PIXEL)
    if shape.shape_type == "rectangle":
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if shape.shape_type in ("rectangle", "polygon"):
        points = np.vstack([points, points[:1]])
    return hd.pr.GraphicObject(_GRAPHIC.POLYLINE, points, _PIXEL)


def shape_text(shape: Shape, columns: int, rows: int) -> hd.pr.TextObject | None:
    """The shape's label (a text shape: its words) at its top left point, if it has one."""
    words = shape.text if shape.shape_type == "text" and shape.text else shape.label
    if not words:
        return None
    points = _clipped(shape.points, columns, rows)
    anchor = (float(points[:, 0].min()), float(points[:, 1].min()))
    return hd.pr.TextObject(words[:1024], _PIXEL, anchor_point=anchor,
                            anchor_point_visible=False)


def _layer(name: str, order: int, description: str) -> hd.pr.GraphicLayer:
    return hd.pr.GraphicLayer(layer_name=name, order=order, description=description)


def build_gsps(dicom: DicomSource, shapes: Sequence[Shape], cam: CamResult | None,
               run: RunInfo | None, place: Placement
               ) -> hd.pr.GrayscaleSoftcopyPresentationState:
    """The presentation state of the CAM peak (when ``cam`` has one) and the shapes."""
    header = dicom.header
    columns, rows = int(header.Columns), int(header.Rows)
    annotations = []

    def annotate(layer: hd.pr.GraphicLayer, graphics: list, texts: list) -> None:
        graphics = [g for g in graphics if g is not None]
        texts = [t for t in texts if t is not None]
        if graphics or texts:
            annotations.append((layer, hd.pr.GraphicAnnotation(
                referenced_images=[header], graphic_layer=layer,
                graphic_objects=graphics or None, text_objects=texts or None)))

    if cam is not None and cam.peak is not None:
        x, y = cam.peak[0] + 0.5, cam.peak[1] + 0.5
        annotate(_layer("CAM", 1, f"{cam.method} peak"),
                 [hd.pr.GraphicObject(_GRAPHIC.POINT, np.array([[x, y]]), _PIXEL)],
                 [hd.pr.TextObject(f"{cam.method} peak: {cam.target_class}"[:1024], _PIXEL,
                                   anchor_point=(x, y), anchor_point_visible=True)])
    annotate(_layer("ANNOTATIONS", 2, "annotation shapes"),
             [shape_graphic(s, columns, rows) for s in shapes],
             [shape_text(s, columns, rows) for s in shapes])
    annotate(_layer("NOTE", 3, "research use"), [],
             [hd.pr.TextObject(RESEARCH_NOTE, hd.pr.AnnotationUnitsValues.DISPLAY,
                               bounding_box=(0.01, 0.01, 0.6, 0.05),
                               text_justification=hd.pr.TextJustificationValues.LEFT)])
    inverse = str(header.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    shape = hd.PresentationLUTShapeValues.INVERSE if inverse \
        else hd.PresentationLUTShapeValues.IDENTITY
    label = "CXR_CAM" if run is not None else "CXR_ANNOTATIONS"
    made_by = f"cxr-desktop {run.label}" if run is not None else "cxr-desktop"
    tail = ": research use, not for diagnosis"
    return hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[header],
        series_instance_uid=place.series_uid,
        series_number=place.series_number,
        sop_instance_uid=place.sop_uid,
        instance_number=place.instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=run.model_name if run is not None else MANUFACTURER,
        software_versions=run.app_version if run is not None else __version__,
        device_serial_number=run.run_id[:64] if run is not None else "unknown",
        content_label=label,
        content_description=made_by[: 64 - len(tail)] + tail,
        graphic_layers=[layer for layer, _ in annotations],
        graphic_annotations=[annotation for _, annotation in annotations],
        presentation_lut_transformation=hd.PresentationLUTTransformation(
            presentation_lut_shape=shape),
        series_description=place.series_description,
    )
