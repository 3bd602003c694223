"""Which compute device training and inference will use, and the versions around it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" or "cpu"
    name: str
    torch_version: str
    cuda_version: str | None

    @property
    def label(self) -> str:
        return f"GPU: {self.name}" if self.kind == "cuda" else f"CPU: {self.name}"


def pick_device(requested: str = "auto") -> str:
    """``"cuda"`` when asked for or available under ``"auto"``, else ``"cpu"``."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        from cxr_desktop.core.errors import CxrError

        raise CxrError("--device cuda was asked for, but no CUDA GPU is available here")
    return requested


def describe_device(requested: str = "auto") -> DeviceInfo:
    import platform

    import torch

    kind = pick_device(requested)
    if kind == "cuda":
        name = torch.cuda.get_device_name(0)
    else:
        name = platform.processor() or platform.machine() or "CPU"
        name = f"{name} ({torch.get_num_threads()} threads)"
    return DeviceInfo(kind, name, torch.__version__, torch.version.cuda)
