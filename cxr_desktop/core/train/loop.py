"""One training epoch and one validation pass (the engine's inner loops).

``train_one_epoch`` steps the optimizer every ``accumulate`` batches, checks ``should_stop``
before each batch and, on a CUDA out-of-memory error, halves the batch and doubles the
accumulation (same effective batch, same number of optimizer steps) and retries the step.
Its :class:`EpochState` is what a checkpoint needs to continue mid-epoch exactly: the
position at the last optimizer step and the random states at that point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cxr_desktop.core.models import CxrNet
from cxr_desktop.core.train.augment import augment_batch, to_float
from cxr_desktop.core.train.config import AugmentSettings
from cxr_desktop.core.train.data import BatchReader, EventSink, TrainingData
from cxr_desktop.core.train.metrics import classification_metrics

LossFn = Callable[[Tensor, Tensor], Tensor]


def masked_bce_with_logits(logits: Tensor, target: Tensor,
                           pos_weight: Tensor | None = None) -> Tensor:
    """Mean BCE over the entries whose target is not NaN (masked labels count nowhere)."""
    known = ~torch.isnan(target)
    losses = F.binary_cross_entropy_with_logits(
        logits, torch.where(known, target, torch.zeros_like(target)),
        pos_weight=pos_weight, reduction="none",
    )
    return (losses * known).sum() / known.sum().clamp_min(1)


def make_loss(task: str, weight: Tensor | None = None) -> LossFn:
    """Cross-entropy for multiclass; NaN-masked BCE with logits (``weight`` = pos_weight)."""
    if task == "multiclass":
        return lambda logits, target: F.cross_entropy(logits.float(), target, weight=weight)
    return lambda logits, target: masked_bce_with_logits(
        logits.float(), target.view(logits.shape[0], -1).float(), weight)


def probabilities(task: str, logits: Tensor) -> Tensor:
    if task == "multiclass":
        return logits.float().softmax(dim=1)
    probs = logits.float().sigmoid()
    return probs[:, 0] if task == "binary" else probs


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: where bf16 matrix math is faster than float32 on the CPU
    (elsewhere oneDNN emulates it, slower than float32)."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported",
                                                     "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def has_depthwise_convs(model: nn.Module) -> bool:
    """True when the model has depthwise convolutions (EfficientNet, MobileNet, ...)."""
    return any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
               for m in model.modules())


class Precision:
    """Mixed precision: on CUDA bf16 autocast when supported, else fp16 with a GradScaler;
    on a CPU with native bf16, bf16 autocast unless ``model`` has depthwise convolutions.
    Measured on a 2-core AVX-512-BF16 CPU (one thread, CPU time of a training step at 160
    px, batch 16, channels-last): ResNet-18 0.31 s in bf16 against 0.55-0.62 s in float32,
    but EfficientNet-Lite0 0.58-0.60 s against 0.40-0.45 s and MobileNetV3 0.36-0.45 s
    against 0.23-0.28 s: oneDNN's bf16 depthwise kernels are slower than float32 ones.
    Channels-last memory everywhere: measured on a 2-core AVX2 CPU it trains
    EfficientNet-Lite0 1.3-1.5x faster than the default layout (MobileNet more, ResNet-18 the
    same), and it is what cuDNN's fast kernels want.
    """

    def __init__(self, device: torch.device, amp: bool, model: nn.Module | None = None) -> None:
        if device.type == "cuda":
            self.enabled = amp
            bf16 = torch.cuda.is_bf16_supported()
        else:
            self.enabled = bf16 = (amp and cpu_has_native_bf16()
                                   and not (model is not None and has_depthwise_convs(model)))
        self.dtype = torch.bfloat16 if self.enabled and bf16 else torch.float16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.enabled and self.dtype == torch.float16)
        self.channels_last = True
        self.device = device

    def autocast(self) -> AbstractContextManager:
        if not self.enabled:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def input(self, images_uint8: Tensor, size: int | None = None) -> Tensor:
        """Floats in [0, 1]; resized (antialiased) to ``size`` when given and different."""
        images = to_float(images_uint8)
        if size is not None and images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear",
                                   antialias=True, align_corners=False)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def backward(self, loss: Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)
        self.scaler.update()

    @property
    def name(self) -> str:
        return str(self.dtype).replace("torch.", "") if self.enabled else "float32"


def rng_snapshot(generator: torch.Generator) -> dict[str, Tensor]:
    state = {"torch": torch.get_rng_state(), "augment": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def rng_restore(state: dict[str, Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclass
class EpochState:
    """Where the current epoch stands, at its last optimizer step."""

    pos: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    rng: dict[str, Tensor] = field(default_factory=dict)

    @property
    def train_loss(self) -> float:
        return self.loss_sum / self.seen if self.seen else float("nan")


@dataclass
class Stepper:
    """What a training step needs besides the data: model, optimizer, schedule, batch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    total_steps: int
    loss_fn: LossFn
    precision: Precision
    augment: AugmentSettings
    generator: torch.Generator
    batch_size: int
    accumulate: int
    size: int | None = None  # this epoch's training size (None: the cache's)
    # False for a rank of a distributed run: ranks must step alike, an OOM is an error.
    halve_on_oom: bool = True

    def optimizer_step(self) -> None:
        self.precision.step(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler.last_epoch < self.total_steps:
            self.scheduler.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[-1]["lr"])


def _oom_halve(stepper: Stepper, emit: EventSink) -> None:
    stepper.optimizer.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    stepper.batch_size //= 2
    stepper.accumulate *= 2
    emit({"type": "message",
          "text": f"CUDA out of memory: batch halved to {stepper.batch_size} "
                  f"(gradient accumulation {stepper.accumulate} keeps the effective batch)"})


def train_one_epoch(
    stepper: Stepper,
    reader: BatchReader,
    order: np.ndarray,
    state: EpochState,
    *,
    epoch: int,
    log_every: int,
    emit: EventSink,
    should_stop: Callable[[], bool],
) -> bool:
    """Train on ``order[state.pos:]``; False when stopped (``state`` is at the last step)."""
    model = stepper.model
    model.train()
    n = len(order)
    pos = group_start = state.pos
    micro = 0
    # Losses stay on the device (no sync per step); committed = groups already stepped.
    group_loss = torch.zeros((), device=reader.device)
    committed = torch.zeros((), dtype=torch.float64, device=reader.device)
    base_loss = state.loss_sum
    log_loss = torch.zeros((), device=reader.device)
    log_batches = batch_index = 0
    started, images_done = time.perf_counter(), 0
    state.rng = rng_snapshot(stepper.generator)
    stepper.optimizer.zero_grad(set_to_none=True)
    while pos < n:
        if should_stop():
            state.loss_sum = base_loss + float(committed)
            return False
        rows = order[pos:pos + stepper.batch_size]
        following = order[pos + len(rows):pos + len(rows) + stepper.batch_size]
        try:
            images, targets = reader.get(rows)
            if len(following):
                reader.prefetch(following)
            images = augment_batch(stepper.precision.input(images, stepper.size),
                                   stepper.augment, stepper.generator)
            with stepper.precision.autocast():
                loss = stepper.loss_fn(model(images), targets)
            stepper.precision.backward(loss / stepper.accumulate)
        except torch.cuda.OutOfMemoryError:
            if stepper.batch_size <= 1 or not stepper.halve_on_oom:
                raise
            _oom_halve(stepper, emit)
            pos, micro, group_loss = group_start, 0, group_loss.zero_()
            rng_restore(state.rng, stepper.generator)
            continue
        detached = loss.detach() * len(rows)
        group_loss += detached
        log_loss += loss.detach()
        micro += 1
        batch_index += 1
        log_batches += 1
        pos += len(rows)
        images_done += len(rows)
        if micro == stepper.accumulate or pos >= n:
            stepper.optimizer_step()
            committed += group_loss
            state.seen += pos - group_start
            state.pos = group_start = pos
            state.rng = rng_snapshot(stepper.generator)
            micro = 0
            group_loss.zero_()
        if batch_index % log_every == 0:
            elapsed = max(time.perf_counter() - started, 1e-9)
            emit({"type": "batch", "epoch": epoch, "batch": batch_index,
                  "batches": -(-(n - state.pos) // stepper.batch_size) + batch_index,
                  "loss": float(log_loss) / log_batches, "lr": stepper.lr,
                  "images_per_s": images_done / elapsed, "progress": pos / n})
            log_loss.zero_()
            log_batches = 0
    state.loss_sum = base_loss + float(committed)
    return True


@dataclass
class Validation:
    """One pass over the validation rows: the logits and the pooled backbone features (the
    spatial mean of the last maps, before ``pool_norm``), both on the CPU."""

    logits: Tensor
    features: Tensor


@torch.no_grad()
def validation_pass(
    model: CxrNet,
    reader: BatchReader,
    rows: np.ndarray,
    precision: Precision,
    batch_size: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> Validation | None:
    """Logits and pooled features of ``rows`` (in that order), the model in eval mode; None
    when ``should_stop()`` turned true between two batches. The features cost nothing extra
    (the head needs them) and serve the frozen phase and the out-of-scope model."""
    model.eval()
    logits, features = [], []
    for start in range(0, len(rows), batch_size):
        if should_stop():
            return None
        images, _ = reader.get(rows[start:start + batch_size])
        with precision.autocast():
            maps = model.forward_features(precision.input(images))
            means = maps.float().mean(dim=(2, 3))
            logits.append(model.forward_head(means[:, :, None, None]).float().cpu())
        features.append(means.cpu())
    width = model.num_features
    return Validation(torch.cat(logits) if logits else torch.zeros(0, model.num_outputs),
                      torch.cat(features) if features else torch.zeros(0, width))


def score(data: TrainingData, rows: np.ndarray, logits: Tensor, loss_fn: LossFn,
          threshold: float) -> dict[str, Any]:
    """``val_loss`` and :func:`classification_metrics` of ``logits`` for ``rows``."""
    targets = torch.from_numpy(np.ascontiguousarray(data.targets[rows]))
    loss = float(loss_fn(logits.float(), targets)) if len(rows) else float("nan")
    probs = probabilities(data.task, logits).numpy()
    metrics = classification_metrics(data.task, data.targets[rows], probs,
                                     data.output_names, threshold)
    return {"val_loss": loss, **metrics}
