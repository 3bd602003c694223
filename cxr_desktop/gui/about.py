"""The About text: versions of the app and its engines, and the compute device."""

from __future__ import annotations

import platform

import pydicom
import pyqtgraph
import PySide6

from cxr_desktop import __version__
from cxr_desktop.core.device import DeviceInfo


def about_text(device: DeviceInfo | None) -> str:
    import torch

    cuda = torch.version.cuda or "not in this build"
    lines = [
        f"<b>cxr-desktop {__version__}</b>",
        "Build chest X-ray classifiers offline and see what the model sees.",
        "",
        f"Python {platform.python_version()}",
        f"PyTorch {torch.__version__} (CUDA {cuda})",
        f"pydicom {pydicom.__version__}",
        f"PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}",
        f"Compute device: {device.label if device else 'still probing...'}",
    ]
    return "<br>".join(lines)
