"""The learning-rate finder: an exponential LR sweep over training batches (Smith 2015,
fastai's ``lr_find``), the smoothed loss curve and a suggested learning rate.

The suggestion is fastai's "valley": the middle of the longest stretch over which the
smoothed loss keeps falling, a little past its start; the steepest-descent LR is returned
too. The model's weights and the optimizer's state are put back as they were afterwards.

``probe_lr`` is the short sweep a training with ``lr`` auto starts with: every layer with the
fine-tuning phase's LR ratios, at most ``PROBE_STEPS`` steps at ``PROBE_SIZE`` px at most,
cycling over ``PROBE_BATCHES`` fixed batches with light smoothing. Measured on three
``bench/recipe.py`` datasets, a sweep of a few dozen fresh batches is all batch noise (fastai's
smoothing spans 50 steps; the valley landed anywhere from 2e-5 to 9e-4 and a valley of 3e-4
cost 0.1 AUC in a 2-epoch run), while a few fixed batches give a smooth curve that diverges
near 0.05-0.15 for every dataset and seed. Its suggestion is the LR of the lowest loss
divided by 10 (fastai's "minimum"; 1.1e-3 to 3e-3 there), kept within
``schedule.AUTO_LR_RANGE``.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.models import CxrNet, build_model, get_arch
from cxr_desktop.core.runs.folder import jsonable
from cxr_desktop.core.train.augment import augment_batch
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.data import (
    BatchReader,
    EventSink,
    TrainingData,
    check_spec_classes,
    epoch_order,
    prepare_data,
)
from cxr_desktop.core.train.loop import LossFn, Precision, make_loss
from cxr_desktop.core.train.schedule import SchedulePlan, clamp_auto_lr, plan_schedule

Batches = Iterator[tuple[Tensor, Tensor]]
PROBE_STEPS = 20
PROBE_SIZE = 64
PROBE_BATCHES = 3
PROBE_BETA = 0.6
PROBE_START_LR, PROBE_END_LR = 1e-4, 1.0


@dataclass
class LrFinderResult:
    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggested_lr: float
    steepest_lr: float
    valley_lr: float

    @property
    def minimum_lr(self) -> float:
        """The LR of the lowest smoothed loss, divided by 10 (fastai's "minimum")."""
        return float(self.lrs[int(np.argmin(self.losses))]) / 10

    def to_dict(self) -> dict[str, object]:
        return jsonable({**asdict(self), "minimum_lr": self.minimum_lr})


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's valley: longest run of decreasing loss, then 1/2 of the way past its third."""
    n = len(losses)
    run = np.ones(n, dtype=np.int64)
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end = i
            start = end - run[end]
    third = (end - start) / 3
    return float(lrs[min(n - 1, max(0, start + int(third) + int(third / 2)))])


def steepest(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The LR where the smoothed loss falls fastest per decade of LR (with fewer than three
    points, the one of the lowest loss): always one of the LRs swept."""
    if len(lrs) < 3:
        return float(lrs[int(np.argmin(losses))])
    slopes = np.gradient(losses, np.log10(lrs))
    return float(lrs[int(np.argmin(slopes))])


MIN_ITER = 10


def check_sweep(start_lr: float, end_lr: float, num_iter: int) -> None:
    """CxrError naming the first bad sweep setting: the LRs must be positive and finite,
    rising from ``start_lr`` to ``end_lr``, over ``MIN_ITER`` steps at least."""
    checks = [
        (math.isfinite(start_lr) and start_lr > 0,
         f"the start LR must be a positive number, not {start_lr:g}"),
        (math.isfinite(end_lr) and end_lr > 0,
         f"the end LR must be a positive number, not {end_lr:g}"),
        (end_lr > start_lr,
         f"the end LR ({end_lr:g}) must be above the start LR ({start_lr:g})"),
        (num_iter >= MIN_ITER,
         f"the sweep needs {MIN_ITER} steps at least, not {num_iter}"),
    ]
    for ok, message in checks:
        if not ok:
            raise CxrError(f"LR finder: {message}")


def lr_sweep(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Batches,
    loss_fn: LossFn,
    *,
    precision: Precision | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
    should_stop: Callable[[], bool] | None = None,
    on_point: Callable[[float, float], None] | None = None,
) -> LrFinderResult:
    """Sweep the LR of every parameter group from ``start_lr`` to ``end_lr`` (keeping the
    groups' ratios to the last group); stops early when the loss diverges. CxrError for
    settings ``check_sweep`` rejects, or when no step gave a finite loss."""
    check_sweep(start_lr, end_lr, num_iter)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    ratios = [g["lr"] / optimizer.param_groups[-1]["lr"] for g in optimizer.param_groups]
    precision = precision or Precision(torch.device("cpu"), amp=False)
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    average, best = 0.0, math.inf
    model.train()
    try:
        for step in range(num_iter):
            if should_stop is not None and should_stop():
                break
            lr = start_lr * (end_lr / start_lr) ** (step / max(num_iter - 1, 1))
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = lr * ratio
            images, targets = next(batches)
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                loss = loss_fn(model(images), targets)
            precision.backward(loss)
            precision.step(optimizer)
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            average = beta * average + (1 - beta) * value
            smoothed = average / (1 - beta ** (step + 1))
            lrs.append(lr)
            raw.append(value)
            smooth.append(smoothed)
            if on_point is not None:
                on_point(lr, smoothed)
            best = min(best, smoothed)
            if step > 5 and smoothed > diverge * best:
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        optimizer.zero_grad(set_to_none=True)
    if not lrs:
        raise CxrError("LR finder: the sweep produced no finite loss (stopped, or the loss "
                       "diverged at the start LR: try a lower --start-lr)")
    lr_array, loss_array = np.array(lrs), np.array(smooth)
    valley_lr, steep_lr = valley(lr_array, loss_array), steepest(lr_array, loss_array)
    return LrFinderResult(lrs, smooth, raw, valley_lr, steep_lr, valley_lr)


def find_lr(
    config: TrainConfig,
    on_event: EventSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    spec: DatasetSpec | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
) -> LrFinderResult:
    """The LR finder on ``config``'s dataset and model, as the first epoch would train
    (backbone frozen when pretrained and ``freeze_epochs`` > 0, same augmentations).
    Emits ``{"type": "lr_find", "lr", "loss"}`` per point."""
    # Imported here: the engine imports this module for its LR probe.
    from cxr_desktop.core.train.engine import open_spec, pick_device

    config.validate()
    check_sweep(start_lr, end_lr, num_iter)
    emit = on_event or (lambda event: None)
    device = pick_device(config.device)
    spec = spec or open_spec(config)
    check_spec_classes(spec)
    info = get_arch(config.arch)
    size = config.size or info.input_size
    data = prepare_data(spec, size, cache_root=config.cache_dir or None,
                        workers=config.workers, on_event=emit, should_stop=should_stop)
    torch.manual_seed(config.seed)
    model = build_model(config.arch, spec.num_outputs, pretrained=config.pretrained)
    if model.pretrained_note:
        emit({"type": "message", "text": model.pretrained_note})
    plan = plan_schedule(config, len(data.train_rows), size=size,
                         pretrained=model.pretrained_source is not None,
                         min_size=info.min_input_size)
    precision = Precision(device, config.amp, model)
    model.to(device, memory_format=torch.channels_last if precision.channels_last
             else torch.preserve_format)
    if plan.freeze_epochs:
        model.freeze_backbone()
    optimizer = torch.optim.AdamW(model.param_groups(plan.base_lr, plan.lr_mult_early),
                                  weight_decay=config.weight_decay)
    reader = BatchReader(data, device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    try:
        return lr_sweep(
            model, optimizer, _batches(data, reader, precision, config, plan.batch_size,
                                       generator),
            make_loss(data.task), precision=precision,
            start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, should_stop=should_stop,
            on_point=lambda lr, loss: emit({"type": "lr_find", "lr": lr, "loss": loss}),
        )
    finally:
        reader.close()


def _batches(data: TrainingData, reader: BatchReader, precision: Precision,
             config: TrainConfig, batch_size: int, generator: torch.Generator,
             size: int | None = None) -> Batches:
    """Augmented training batches, epoch after epoch (the last partial batch left out)."""
    epoch = 0
    while True:
        order = epoch_order(data, config.class_balance, config.seed, epoch)
        last_start = max(len(order) - batch_size + 1, 1)
        for start in range(0, last_start, batch_size):
            images, targets = reader.get(order[start:start + batch_size])
            yield augment_batch(precision.input(images, size), config.augment,
                                generator), targets
        epoch += 1


def probe_lr(model: CxrNet, reader: BatchReader, data: TrainingData, plan: SchedulePlan,
             precision: Precision, config: TrainConfig, emit: EventSink,
             should_stop: Callable[[], bool]) -> SchedulePlan | None:
    """``plan`` with the LR the probe found (None when stopped during it).

    The sweep trains every layer with the fine-tuning LR ratios, at the first fine-tuning
    epoch's size but at most ``PROBE_SIZE``, for ``PROBE_STEPS`` steps at most (it stops
    when the loss diverges) over ``PROBE_BATCHES`` batches; the model is put back as it
    was. A sweep with no finite loss leaves the plan's fallback LR, said in a message.
    """
    started = time.perf_counter()
    size = min([*plan.sizes[plan.freeze_epochs:], plan.size, PROBE_SIZE])
    trainable = [p.requires_grad for p in model.parameters()]
    model.unfreeze()
    optimizer = torch.optim.AdamW(model.param_groups(plan.base_lr, plan.lr_mult_early),
                                  weight_decay=config.weight_decay)
    generator = torch.Generator(device=reader.device).manual_seed(config.seed + 7919)
    batches = _batches(data, reader, precision, config, plan.batch_size, generator, size)
    fixed = list(itertools.islice(batches, PROBE_BATCHES))
    threads = torch.get_num_threads()
    if reader.device.type == "cpu":
        # Small images: one thread is as fast as two, and does not stall waiting for a core
        # another process holds (measured: 0.3 s a step either way on 2 cores; 3-40x slower
        # with two threads when the machine is busy).
        torch.set_num_threads(1)
    try:
        found = lr_sweep(model, optimizer, itertools.cycle(fixed), make_loss(data.task),
                         precision=precision, start_lr=PROBE_START_LR, end_lr=PROBE_END_LR,
                         num_iter=PROBE_STEPS, beta=PROBE_BETA, should_stop=should_stop)
    except CxrError as exc:
        if should_stop():
            return None
        emit({"type": "message", "text": f"LR probe failed ({exc}): base LR "
              f"{plan.base_lr:.1e}"})
        return plan.with_lr(plan.base_lr, {"failed": str(exc)})
    finally:
        torch.set_num_threads(threads)
        for parameter, grad in zip(model.parameters(), trainable, strict=True):
            parameter.requires_grad_(grad)
    if should_stop():
        return None
    lr = clamp_auto_lr(found.minimum_lr)
    seconds = time.perf_counter() - started
    probe = {"suggested_lr": found.minimum_lr, "valley_lr": found.valley_lr,
             "steepest_lr": found.steepest_lr, "steps": len(found.lrs), "size": size,
             "seconds": round(seconds, 2)}
    kept = "" if lr == found.minimum_lr else f", kept within {lr:.1e}"
    emit({"type": "message", "text": (
        f"LR probe: the LR finder suggests {found.minimum_lr:.1e} ({len(found.lrs)} steps "
        f"at {size} px, {seconds:.1f} s){kept}: base LR {lr:.1e}")})
    return plan.with_lr(lr, probe)
