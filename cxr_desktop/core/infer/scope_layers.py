"""Per-stage channel statistics of a CxrNet, recorded by forward hooks during a pass the
caller makes anyway (the validation pass of training, the Predictor's forward pass).

Each top-level block of ``model.features`` (the stem and every stage) yields, per image, the
spatial mean and standard deviation of each channel: a (2C,) vector. They are what the
``layers`` out-of-scope detector compares (:mod:`cxr_desktop.core.infer.ood`).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import numpy as np
import torch
from torch import Tensor, nn

from cxr_desktop.core.models import CxrNet


def stage_names(model: CxrNet) -> list[str]:
    """The top-level blocks of the backbone, input to output."""
    return [name for name, _ in model.features.named_children()]


def channel_stats(maps: Tensor) -> Tensor:
    """(B, 2C) float32: per-channel spatial mean, then standard deviation, of (B, C, h, w)."""
    values = maps.detach().float().flatten(2)
    return torch.cat([values.mean(dim=2), values.std(dim=2, unbiased=False)], dim=1)


class LayerRecorder:
    """Forward hooks on the stages of ``model`` while the ``with`` block lasts.

    ``take()`` returns what was recorded since the last ``take``: one (N, 2C) float64 array
    per stage, N the images of every forward pass in between (in order). Hooks run only
    while ``active``; a pass that must not be recorded (training batches) sets it False.
    """

    def __init__(self, model: CxrNet, names: Iterable[str] | None = None) -> None:
        self.model = model
        self.names = list(names) if names is not None else stage_names(model)
        self.active = True
        self._chunks: dict[str, list[Tensor]] = {name: [] for name in self.names}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name: str):  # noqa: ANN202 - a torch hook closure
        def record(module: nn.Module, inputs: object, output: Tensor) -> None:
            if self.active:
                self._chunks[name].append(channel_stats(output).cpu())
        return record

    def __enter__(self) -> LayerRecorder:
        for name in self.names:
            module = self.model.features.get_submodule(name)
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def clear(self) -> None:
        for chunks in self._chunks.values():
            chunks.clear()

    def take(self) -> dict[str, np.ndarray]:
        out = {name: torch.cat(chunks).double().numpy() if chunks
               else np.zeros((0, 0)) for name, chunks in self._chunks.items()}
        self.clear()
        return out
