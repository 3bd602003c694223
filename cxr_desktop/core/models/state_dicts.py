"""Read a weights file safely and fit its keys onto a model, naming the first mismatch.

Files are read with ``torch.load(..., weights_only=True)`` (no code in a pickle ever runs)
or with safetensors. Known alternate layouts are mapped before the check: a checkpoint
wrapper (``state_dict``/``model``/``model_state_dict``), ``module.`` (DataParallel) and
``_orig_mod.`` (torch.compile) prefixes, old DenseNet keys (``norm.1`` -> ``norm1``, as
torchvision's own loader does) and the original EfficientNet port's keys (``_conv_stem``,
``_blocks.N``, ``_fc``), which line up one-to-one, in order and shape, with timm's.
"""

from __future__ import annotations

import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from cxr_desktop.core.errors import ModelError, first_line

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
KEY_PREFIXES = ("module.", "_orig_mod.")
# As torchvision.models.densenet._load_state_dict: "denselayer1.norm.1.weight" ->
# "denselayer1.norm1.weight" (plus num_batches_tracked, which torchvision's pattern omits).
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\."
    r"((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)
# Buffers that old checkpoints lack and that carry no learned value.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


# torch names the object a refused pickle wanted in words that change between releases
_UNSAFE_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")
#: What to say of a file whose pickle would build Python objects (and so could run code).
UNSAFE_REASON = ("it holds Python objects ({name}) that could run code when loaded, so it was "
                 "not loaded; a safe model file holds only tensors: a state dict "
                 "(torch.save(model.state_dict(), path)) or a .safetensors file")
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")
#: Raised by unpickling bytes that are not a pickle: a memo or stack look-up that misses, a
#: short read.
_NOT_A_PICKLE = (EOFError, KeyError, IndexError, struct.error)
#: What ``torch.load(..., weights_only=True)`` and safetensors raise on a file not theirs.
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, ValueError, OSError, zipfile.BadZipFile,
               SafetensorError, *_NOT_A_PICKLE)


def unsafe_object(exc: BaseException) -> str | None:
    """The Python object a refused pickle asked for (``posix.system``), if that is why
    ``torch.load(..., weights_only=True)`` failed."""
    found = _UNSAFE_GLOBAL.search(str(exc))
    return found[1] if found else None


def load_failure(exc: BaseException) -> str:
    """One line on why ``torch.load(..., weights_only=True)`` (or safetensors) failed."""
    unsafe = unsafe_object(exc)
    if unsafe:
        return UNSAFE_REASON.format(name=unsafe)
    if isinstance(exc, _NOT_A_PICKLE):
        return f"not a PyTorch file: {type(exc).__name__} while unpickling"
    unpickler = _UNPICKLER_ERROR.search(str(exc))
    if unpickler:  # torch's reason is buried under a paragraph on weights_only
        return f"not a PyTorch file: {unpickler[1].strip()}"
    return first_line(exc)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors in ``path`` (``.safetensors``, else a torch file), unwrapped and on CPU."""
    try:
        if path.suffix.lower() == ".safetensors":
            obj: object = safetensors.torch.load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        if unsafe_object(exc):
            raise ModelError(f"{path}: {load_failure(exc)}") from None
        raise ModelError(f"{path}: cannot read weights ({load_failure(exc)})") from exc
    while isinstance(obj, Mapping) and not _all_tensors(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj or not _all_tensors(obj):
        raise ModelError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    return {str(k): v for k, v in obj.items()}


def _all_tensors(obj: Mapping) -> bool:
    return all(isinstance(v, Tensor) for v in obj.values())


def _strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def _densenet_key(key: str) -> str:
    match = _DENSENET_KEY.match(key)
    return match.group(1) + match.group(2) if match else key


def is_efficientnet_port(state: Mapping[str, Tensor]) -> bool:
    """True for the original EfficientNet port's layout (lukemelas / efficientnet-lite0)."""
    return "_conv_stem.weight" in state


def map_by_order(state: Mapping[str, Tensor], target: Mapping[str, Tensor],
                 path: Path) -> dict[str, Tensor]:
    """Rename ``state``'s tensors to ``target``'s keys, pairing them in order, shapes checked."""
    if len(state) != len(target):
        raise ModelError(f"{path}: {len(state)} tensors, the model has {len(target)}: "
                         "cannot map them by order")
    mapped = {}
    for (src_key, tensor), (key, ref) in zip(state.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise ModelError(f"{path}: tensor {src_key!r} {tuple(tensor.shape)} does not fit "
                             f"{key!r} {tuple(ref.shape)}")
        mapped[key] = tensor
    return mapped


def remap_keys(state: Mapping[str, Tensor], target: Mapping[str, Tensor],
               path: Path) -> dict[str, Tensor]:
    """``state`` under the target model's key names, for every known alternate layout."""
    renamed = {_densenet_key(_strip_prefixes(k)): v for k, v in state.items()}
    if is_efficientnet_port(renamed) and not is_efficientnet_port(target):
        return map_by_order(renamed, target, path)
    return renamed


def fit_state_dict(state: Mapping[str, Tensor], target: Mapping[str, Tensor],
                   drop_prefixes: tuple[str, ...], path: Path, arch: str) -> dict[str, Tensor]:
    """The tensors of ``state`` to load into a model whose state dict is ``target``.

    Keys under ``drop_prefixes`` (the classifier that is replaced) are ignored on both
    sides. Every other key of the model must be in the file with the same shape, and the
    file may hold nothing else: the ModelError names the first key that breaks this.
    """
    kept = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)}
    for key, ref in target.items():
        if key.startswith(drop_prefixes) or key.endswith(OPTIONAL_SUFFIXES):
            continue
        if key not in kept:
            raise ModelError(f"{path}: does not fit {arch}: key {key!r} is missing from the file")
        if kept[key].shape != ref.shape:
            raise ModelError(f"{path}: does not fit {arch}: {key!r} has shape "
                             f"{tuple(kept[key].shape)} in the file, {tuple(ref.shape)} in "
                             "the model")
    unexpected = next((k for k in kept if k not in target), None)
    if unexpected is not None:
        raise ModelError(f"{path}: does not fit {arch}: unexpected key {unexpected!r}")
    return kept
