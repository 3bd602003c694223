"""The frozen phase: the head trained on backbone features computed once.

With the backbone frozen and no augmentation for it, a training image's pooled features
never change, so the frozen phase computes them once (one forward pass per training image,
no backward pass through the backbone) and trains the head on them for ``HEAD_PASSES``
passes per frozen epoch: a linear probe, as LP-FT (Kumar et al. 2022) does before
fine-tuning. The validation features of the same pass serve every frozen epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from cxr_desktop.core.models import CxrNet
from cxr_desktop.core.train.data import BatchReader
from cxr_desktop.core.train.loop import EpochState, Precision, Stepper, validation_pass

HEAD_PASSES = 10


def pooled_features(model: CxrNet, reader: BatchReader, rows: np.ndarray,
                    precision: Precision, batch_size: int,
                    should_stop: Callable[[], bool]) -> Tensor | None:
    """Pooled features (N, C) of ``rows`` in eval mode, on the training device."""
    done = validation_pass(model, reader, rows, precision, batch_size, should_stop)
    return None if done is None else done.features.to(reader.device)


def train_head_epoch(stepper: Stepper, features: Tensor, targets: Tensor,
                     state: EpochState, seed: int) -> float:
    """``HEAD_PASSES`` shuffled passes of the head over cached ``features``; returns the
    seconds spent. ``state`` gets the last pass's mean loss (the epoch's train loss)."""
    model = stepper.model
    model.train()
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    count, batch = len(features), stepper.batch_size
    stepper.optimizer.zero_grad(set_to_none=True)
    for _ in range(HEAD_PASSES):
        order = torch.randperm(count, generator=generator).to(features.device)
        loss_sum = torch.zeros((), device=features.device)
        for start in range(0, count, batch):
            picked = order[start:start + batch]
            with stepper.precision.autocast():
                logits = model.forward_head(features[picked][:, :, None, None])
            loss = stepper.loss_fn(logits, targets[picked])
            stepper.precision.backward(loss)
            stepper.optimizer_step()
            loss_sum += loss.detach() * len(picked)
    state.pos = state.seen = count
    state.loss_sum = float(loss_sum)
    return time.perf_counter() - started


def head_steps(train_images: int, batch_size: int) -> int:
    """Optimizer steps of one frozen epoch."""
    return HEAD_PASSES * -(-train_images // batch_size)
