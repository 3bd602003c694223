"""The model's input: the display chain, then a resize to the training size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cxr_desktop.core.io.radiograph import Radiograph
from cxr_desktop.core.io.window import to_display

#: Names the intensity chain; stored in caches and checkpoints so a change invalidates both.
INTENSITY_CHAIN = "voi-file-default/uint8/resize-bilinear/v1"


def model_input(radiograph: Radiograph, size: int) -> np.ndarray:
    """``to_display`` (file VOI, MONOCHROME1 inverted) resized to ``size x size`` uint8.

    The whole image is resized without cropping, so a point ``(x, y)`` of the model input
    maps back to ``(x * columns / size, y * rows / size)`` in the original.
    """
    display = to_display(radiograph)
    image = Image.fromarray(display)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(image, dtype=np.uint8)
