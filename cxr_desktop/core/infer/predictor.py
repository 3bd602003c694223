"""``Predictor``: a frozen model that predicts on one radiograph as its run was trained.

MODEL may be:

- a **run folder**: its ``best.pt`` (``last.pt`` before a best exists), with ``scope.npz``
  when it belongs to that checkpoint;
- a **checkpoint** file (``best.pt``/``last.pt``): metadata and weights in one file;
- a **bare weights** file (a state dict of a CxrNet, ``.pt``/``.pth``/``.safetensors``):
  it carries no metadata, so ``arch`` and ``classes`` must be given. One output and two
  classes is a binary task whose positive class is the second; otherwise one output per
  class, ``multilabel`` unless ``task="multiclass"``. The input size is ``size`` or the
  architecture's own; the threshold 0.5; the intensity chain is assumed to be today's (a
  warning says so) and the training scope unknown (the default chest scope applies).

The model is a copy in eval mode with every parameter frozen (``requires_grad`` off), never
the one a training session updates; Grad-CAM still works because its input requires grad.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cxr_desktop.core.device import pick_device
from cxr_desktop.core.errors import FileError, ModelError, first_line
from cxr_desktop.core.infer.ood import OodInputs
from cxr_desktop.core.infer.scope import (
    SCOPE_NAME,
    ImageScope,
    ScopeCheck,
    ScopeModel,
    check_scope,
    pooled,
)
from cxr_desktop.core.infer.scope_layers import LayerRecorder
from cxr_desktop.core.io import INTENSITY_CHAIN, Radiograph, model_input
from cxr_desktop.core.models import CxrNet, build_model, get_arch
from cxr_desktop.core.models.state_dicts import read_state_dict, remap_keys
from cxr_desktop.core.runs import load_run

TASKS = ("binary", "multiclass", "multilabel")
#: Feature maps kept per image, so CAM for another class needs no new forward pass.
FEATURE_CACHE_SIZE = 4


@dataclass
class Prediction:
    """Class probabilities of one image and how it relates to the training data.

    Binary: the positive class's sigmoid and its complement; multilabel: one sigmoid per
    class (they need not sum to 1); multiclass: a softmax. ``positives``: the classes at or
    above the run's threshold (binary, multilabel) or the top class (multiclass).
    ``in_scope``/``scope_reason`` combine the two scope signals; ``scope_image`` is the
    image score against its threshold (None without a scope.npz), ``scope_tags_*`` the
    DICOM-tag check.
    """

    probabilities: dict[str, float]
    top_class: str
    positives: list[str]
    threshold: float
    in_scope: bool
    scope_reason: str
    ood_distance: float | None
    ms: float
    input_key: str = field(repr=False, default="")
    scope_image: ImageScope | None = None
    scope_tags_in_scope: bool = True
    scope_tags_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
                "top_class": self.top_class, "positives": self.positives,
                "threshold": self.threshold, "in_scope": self.in_scope,
                "scope_reason": self.scope_reason,
                "scope_image": None if self.scope_image is None
                else self.scope_image.to_dict(),
                "scope_tags": {"in_scope": self.scope_tags_in_scope,
                               "reason": self.scope_tags_reason},
                "ood_distance": None if self.ood_distance is None
                else round(self.ood_distance, 3), "ms": round(self.ms, 1)}


def _bare_metadata(arch: str, classes: list[str], outputs: int, task: str | None,
                   size: int | None, path: Path) -> dict[str, Any]:
    if task is not None and task not in TASKS:
        raise ModelError(f"task must be one of {TASKS}, not {task!r}")
    if len(classes) < 2 and not (len(classes) == 1 and outputs == 1 and task == "multilabel"):
        raise FileError(path, "give the class names (at least two, in output order)")
    if outputs == 1 and len(classes) == 2 and task in (None, "binary"):
        task, names = "binary", [classes[1]]
    elif outputs == len(classes):
        task, names = task if task in ("multiclass", "multilabel") else "multilabel", classes
    else:
        raise FileError(path, f"the weights have {outputs} output(s) for {len(classes)} "
                        "classes: give one class per output (or two for one binary output)")
    return {"arch": arch, "task": task, "classes": classes, "output_names": names,
            "positive_class": names[0] if task == "binary" else None, "num_outputs": outputs,
            "input_size": size or get_arch(arch).input_size, "threshold": 0.5,
            "intensity_chain": None, "training_scope": None}


def _load_bare(path: Path, arch: str, classes: list[str], task: str | None,
               size: int | None) -> tuple[CxrNet, dict[str, Any]]:
    state = read_state_dict(path)
    head = next((v for k, v in state.items() if k.endswith("head.weight")), None)
    if head is None or head.ndim != 2:
        raise FileError(path, f"not the weights of a cxr-desktop {arch} model (no head.weight)")
    metadata = _bare_metadata(arch, classes, int(head.shape[0]), task, size, path)
    model = build_model(arch, metadata["num_outputs"], pretrained="none")
    try:
        model.load_state_dict(remap_keys(state, model.state_dict(), path))
    except RuntimeError as exc:
        raise FileError(path, f"weights do not fit {arch} ({first_line(exc)})") from exc
    return model, metadata


class Predictor:
    """Predicts on radiographs with a frozen copy of a model and its run's metadata.

    Thread-safe: one lock guards the model, so a worker may predict while another computes
    a CAM. ``warnings`` lists what the caller should show (a changed intensity chain, a
    missing or stale scope file).
    """

    def __init__(self, model: CxrNet, metadata: dict[str, Any], *,
                 scope: ScopeModel | None = None, source: Path | None = None,
                 device: str = "cpu", warnings: list[str] | None = None) -> None:
        self.device = torch.device(pick_device(device))
        self.model = copy.deepcopy(model).to(self.device).eval().requires_grad_(False)
        self.metadata = dict(metadata)
        self.scope = scope
        self.source = source
        self.lock = threading.RLock()
        self.warnings = list(warnings or [])
        self.task = str(metadata["task"])
        self.classes = [str(c) for c in metadata["classes"]]
        self.output_names = [str(c) for c in metadata.get("output_names") or self.classes]
        self.input_size = int(metadata.get("input_size") or model.input_size)
        self.threshold = float(metadata.get("threshold") or 0.5)
        chain = metadata.get("intensity_chain")
        if chain != INTENSITY_CHAIN:
            self.warnings.append(
                f"the model was trained with intensity chain {chain or 'unknown'}, images are "
                f"now prepared with {INTENSITY_CHAIN}: predictions may be off")
        # input key -> (model input, last feature maps, stage statistics), most recent last
        self._cache: OrderedDict[str, tuple[Tensor, Tensor, dict[str, np.ndarray]]] = \
            OrderedDict()

    # --- loading --------------------------------------------------------------------------
    @classmethod
    def load(cls, model_path: str | Path, *, arch: str | None = None,
             classes: list[str] | None = None, task: str | None = None,
             size: int | None = None, which: str = "best", device: str = "auto") -> Predictor:
        """A Predictor from a run folder, a checkpoint or a bare weights file (see above)."""
        path = Path(model_path)
        if not path.exists():
            raise FileError(path, "model not found (a run folder, checkpoint or weights file)")
        bare = path.is_file() and path.suffix.lower() == ".safetensors"
        if not bare:
            try:
                run = load_run(path, which=which)
            except FileError as exc:
                if not (path.is_file() and "no model weights" in exc.reason):
                    raise
                bare = True
        if bare:
            if arch is None:
                raise FileError(path, "a bare weights file: give its architecture and "
                                "classes (--arch, --classes)")
            model, metadata = _load_bare(path, arch, list(classes or []), task, size)
            return cls(model, metadata, source=path, device=device)
        scope, warnings = _run_scope(run.checkpoint_path, run.metadata)
        return cls(run.model, run.metadata, scope=scope, source=run.checkpoint_path,
                   device=device, warnings=warnings)

    # --- prediction -----------------------------------------------------------------------
    def prepare(self, radiograph: Radiograph) -> Tensor:
        """The (1, 1, S, S) input in [0, 1], by the chain and size the run was trained with."""
        pixels = model_input(radiograph, self.input_size)
        return torch.tensor(pixels, device=self.device).float().div_(255.0)[None, None]

    @staticmethod
    def input_key(radiograph: Radiograph, x: Tensor) -> str:
        """Identifies one image's model input (and its original size) for the caches."""
        digest = hashlib.blake2b(x.detach().cpu().numpy().tobytes(), digest_size=12)
        digest.update(f"{radiograph.rows}x{radiograph.columns}".encode())
        return digest.hexdigest()

    def forward_maps(self, key: str, x: Tensor) -> Tensor:
        """The last feature maps of ``x``: from the cache, else one forward pass."""
        return self._forward(key, x)[1]

    def _forward(self, key: str, x: Tensor) -> tuple[Tensor, Tensor, dict[str, np.ndarray]]:
        """The cache entry of ``x``; the forward pass records the stage statistics when the
        scope model needs them (forward hooks: no second pass)."""
        with self.lock:
            entry = self._cache.get(key)
            if entry is None:
                layers: dict[str, np.ndarray] = {}
                with torch.no_grad():
                    if self.scope is not None and self.scope.needs_layers:
                        names = getattr(self.scope.detector, "names", None)
                        with LayerRecorder(self.model, names) as recorder:
                            maps = self.model.forward_features(x)
                        layers = recorder.take()
                    else:
                        maps = self.model.forward_features(x)
                entry = (x, maps, layers)
                self._cache[key] = entry
                while len(self._cache) > FEATURE_CACHE_SIZE:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            return entry

    def cached_input(self, key: str) -> Tensor | None:
        """The model input of a recent prediction (its ``input_key``), if still cached."""
        with self.lock:
            entry = self._cache.get(key)
            return None if entry is None else entry[0]

    def probabilities(self, logits: Tensor) -> dict[str, float]:
        """Probabilities of one image's logits (num_outputs,) per class."""
        logits = logits.detach().float().cpu()
        if self.task == "multiclass":
            values = torch.softmax(logits, dim=0).tolist()
            return dict(zip(self.classes, values, strict=True))
        values = torch.sigmoid(logits).tolist()
        if self.task == "binary":
            positive = self.output_names[0]
            negative = next(c for c in self.classes if c != positive)
            return {negative: 1.0 - values[0], positive: values[0]}
        return dict(zip(self.output_names, values, strict=True))

    def predict(self, radiograph: Radiograph) -> Prediction:
        """Probabilities, the top class and the scope check, from one forward pass."""
        start = time.perf_counter()
        x = self.prepare(radiograph)
        key = self.input_key(radiograph, x)
        _, maps, layers = self._forward(key, x)
        with self.lock, torch.no_grad():
            features = pooled(self.model, maps)
            logits = self.model.head(features)[0]
        probs = self.probabilities(logits)
        check = self.check_scope(radiograph, OodInputs(
            features.double().cpu().numpy(), logits.double().cpu().numpy()[None], layers))
        top = max(probs, key=probs.__getitem__)
        if self.task == "multiclass":
            positives = [top]
        else:
            positives = [c for c in self.output_names if probs[c] >= self.threshold]
            if self.task == "binary" and not positives:
                positives = [c for c in probs if c != self.output_names[0]]
        return Prediction(probs, top, positives, self.threshold, check.in_scope, check.reason,
                          check.score, (time.perf_counter() - start) * 1000.0, key,
                          check.image, check.tags_in_scope, check.tags_reason)

    def check_scope(self, radiograph: Radiograph, inputs: OodInputs | None) -> ScopeCheck:
        return check_scope(radiograph, self.metadata.get("training_scope"), self.scope,
                           inputs)


def _run_scope(checkpoint: Path, metadata: dict[str, Any]) -> tuple[ScopeModel | None,
                                                                     list[str]]:
    """The run's ``scope.npz`` when it was fitted on this very checkpoint."""
    path = checkpoint.parent / SCOPE_NAME
    if not path.is_file():
        return None, ["no scope.npz in the run folder: only DICOM tags are checked for scope"]
    try:
        scope = ScopeModel.load(path)
    except FileError as exc:
        return None, [f"{exc}: only DICOM tags are checked for scope"]
    warnings = []
    if scope.legacy:
        warnings.append(f"{path} is from an older cxr-desktop (pooled-feature distance, "
                        "threshold at 1% false alarms): delete it and run cxr-desktop "
                        "resume on the run to fit today's image score")
    if (scope.meta.get("checkpoint_saved") != metadata.get("saved")
            or scope.meta.get("epoch") != metadata.get("epoch")):
        return None, [f"{path} was fitted on another checkpoint than {checkpoint.name}: "
                      "only DICOM tags are checked for scope"]
    return scope, warnings
