"""Where the CAM peak falls against the annotations of the image on screen, in words.

The test is the pointing game's (``core.evaluate.localization.bounds_hit``: the peak inside
a shape's bounding box), so the Viewer says of one image what the Evaluate page counts over
a split. Only shapes that mark a region count (rectangles, ellipses, polygons); arrows,
strokes and text do not.
"""

from __future__ import annotations

from collections.abc import Sequence

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.evaluate.localization import bounds_distance, bounds_hit

REGIONS = ("rectangle", "ellipse", "polygon")


def peak_verdict(peak: tuple[float, float] | None, shapes: Sequence[Shape],
                 target: str | None = None) -> str | None:
    """A sentence on the peak ``(x, y)`` (image pixels) against ``shapes``; None when the
    image has no region to compare with. An annotation labelled ``target`` (the CAM's class)
    is named first when the peak lies in several."""
    regions = [s for s in shapes if s.shape_type in REGIONS]
    if not regions:
        return None
    if peak is None:
        return "The CAM is flat: it has no peak to compare with the annotations."
    x, y = peak
    inside = [s for s in regions if bounds_hit(x, y, [s])]
    if inside:
        shape = next((s for s in inside if s.label == target), inside[0])
        return f"CAM peak inside the annotation '{shape.label}'"
    nearest = min(regions, key=lambda s: bounds_distance(x, y, s))
    return (f"CAM peak outside every annotation (nearest: '{nearest.label}', "
            f"{bounds_distance(x, y, nearest):.0f} px away)")
