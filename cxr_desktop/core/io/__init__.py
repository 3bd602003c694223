"""Image loading: every file becomes a Radiograph through one chain (see ARCHITECTURE.md)."""

from cxr_desktop.core.errors import ImageLoadError
from cxr_desktop.core.io.limits import MAX_PIXELS
from cxr_desktop.core.io.loader import load_image
from cxr_desktop.core.io.preprocess import INTENSITY_CHAIN, model_input
from cxr_desktop.core.io.radiograph import Radiograph, VoiLut
from cxr_desktop.core.io.window import apply_window, to_display

__all__ = [
    "INTENSITY_CHAIN",
    "MAX_PIXELS",
    "ImageLoadError",
    "Radiograph",
    "VoiLut",
    "apply_window",
    "load_image",
    "model_input",
    "to_display",
]
