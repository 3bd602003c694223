"""The schedule a run follows, from its settings, its epochs and its dataset size.

``plan_schedule(config, train_images)`` is pure (no torch, no files): the engine trains by
the plan it returns and the Training tab shows the same plan before Start. Settings the user
gave (a number for ``lr``, ``batch_size``, ``freeze_epochs``) are kept; the others follow
the budget, by rules chosen on ``bench/recipe.py`` (real radiographs, data no test uses, 2,
3 and 6 epochs against a plain fine-tuning loop; see ``bench/RESULTS.md``):

- **Frozen epochs**: none below ``FREEZE_FROM_EPOCHS`` epochs: in a short run a frozen
  epoch spends a share of the budget learning little. From there on one, which trains the
  head alone on backbone features computed once (a linear probe: about a third of an
  epoch), so fine-tuning starts from a head that already fits and does not tear the
  pretrained features apart with a random head's gradients.
- **Learning rates**: the head gets the base LR, the earliest layers ``lr_mult_early`` of
  it, the late layers the geometric middle (one-cycle peaks). The base LR is the user's, or
  with ``"auto"`` the LR finder's suggestion on a short probe at the start of the run
  (kept within ``AUTO_LR_RANGE``: a probe of a few dozen steps is noisy).
- **Batch size**: 16 up to ``2_500`` training images, 32 up to ``10_000``, 64 beyond: a
  short run on a small dataset needs the optimizer steps more than a big batch.
- **Warm-up**: about one epoch of the one-cycle schedule, between 10 % and 30 % of it.
- **Sizes**: every epoch at the full size. With ``progressive`` (opt-in) the first
  fine-tuning epochs train at a lower size (from ``PROGRESSIVE_LOW`` of the final size up),
  the last third at the full size, as fastai's progressive resizing; validation always runs
  at the full size. It saves a fifth to a third of the compute, but on the bench it cost
  validation AUC: 0.855 -> 0.776 in 2 epochs and 0.948 -> 0.937 in 6 on the multi-label
  set, so it is not the default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cxr_desktop.core.train.config import AUTO_BATCH, AUTO_FREEZE, AUTO_LR, TrainConfig

FREEZE_FROM_EPOCHS = 8
AUTO_LR_RANGE = (3e-4, 3e-3)
FALLBACK_LR = 1e-3  # shown for an "auto" LR before the probe has run
HEAD_LR_MULT = 10.0  # the frozen head's LR against the base LR (a linear probe)
BATCH_STEPS = ((2_500, 16), (10_000, 32))
LARGE_BATCH = 64
WARMUP_RANGE = (0.1, 0.3)
PROGRESSIVE_LOW = 0.8
SIZE_STEP = 16


def auto_batch_size(train_images: int) -> int:
    for limit, batch in BATCH_STEPS:
        if train_images <= limit:
            return batch
    return LARGE_BATCH


def auto_freeze_epochs(epochs: int) -> int:
    return 1 if epochs >= FREEZE_FROM_EPOCHS else 0


def warmup_share(fine_epochs: int) -> float:
    low, high = WARMUP_RANGE
    return min(high, max(low, 1.0 / max(fine_epochs, 1)))


def _round_size(value: float) -> int:
    return int(round(value / SIZE_STEP) * SIZE_STEP)


def progressive_sizes(size: int, epochs: int, min_size: int = 32) -> list[int]:
    """One size per fine-tuning epoch: the last third (at least one) at ``size``, the
    epochs before it rising evenly from ``PROGRESSIVE_LOW * size``."""
    full = math.ceil(epochs / 3)
    ramp = epochs - full
    low = max(min_size, min(size, _round_size(size * PROGRESSIVE_LOW)))
    rising = [max(low, _round_size(low + (size - low) * i / ramp)) for i in range(ramp)]
    return [min(s, size) for s in rising] + [size] * full


@dataclass(frozen=True)
class SchedulePlan:
    """What a run will do, epoch by epoch; JSON-able with ``to_dict``/``from_dict``.

    ``lr`` is the base (head) LR of the fine-tuning phase, None while ``"auto"`` waits for
    the probe (``lr_source`` ``"auto"``; ``"probe"`` once found, ``"set"`` when given).
    ``sizes`` has one training size per epoch (the frozen ones included); ``warmup`` is the
    share of the fine-tuning steps that warm the LR up. ``probe`` holds what the LR probe
    found (its valley, steps, size, seconds).
    """

    epochs: int
    freeze_epochs: int
    batch_size: int
    steps_per_epoch: int
    lr: float | None
    lr_source: str
    lr_mult_early: float
    warmup: float
    sizes: list[int]
    size: int
    probe: dict[str, Any] = field(default_factory=dict)

    @property
    def fine_epochs(self) -> int:
        return self.epochs - self.freeze_epochs

    @property
    def base_lr(self) -> float:
        """The LR in use: the plan's, or the fallback shown before an auto LR is probed."""
        return self.lr if self.lr is not None else FALLBACK_LR

    @property
    def head_lr(self) -> float:
        """Peak LR of the frozen phase (the head alone, on cached features)."""
        return self.base_lr * HEAD_LR_MULT

    def group_lrs(self) -> dict[str, float]:
        """Peak LR of each parameter group while fine-tuning (``CxrNet.param_groups``)."""
        lr, mult = self.base_lr, self.lr_mult_early
        return {"early": lr * mult, "late": lr * math.sqrt(mult), "head": lr}

    def with_lr(self, lr: float, probe: dict[str, Any]) -> SchedulePlan:
        return replace(self, lr=float(lr), lr_source="probe", probe=dict(probe))

    def describe(self) -> str:
        """One line for a person: frozen epochs, batch, LRs, warm-up, sizes."""
        frozen = (f"{self.freeze_epochs} frozen (head on cached features) + "
                  f"{self.fine_epochs} fine-tuning" if self.freeze_epochs
                  else "no frozen epoch")
        groups = self.group_lrs()
        lrs = f"head {groups['head']:.1e}, late {groups['late']:.1e}, early {groups['early']:.1e}"
        if self.lr_source == "auto":
            low_lr, high_lr = AUTO_LR_RANGE
            lrs = (f"LR auto (the LR finder's probe at the start picks the head's, "
                   f"{low_lr:.0e}-{high_lr:.0e}; late x{math.sqrt(self.lr_mult_early):.2f}, "
                   f"early x{self.lr_mult_early:.2f})")
        elif self.lr_source == "probe":
            lrs = f"LR from the probe: {lrs}"
        else:
            lrs = f"LR {lrs}"
        runs: list[list[int]] = []
        for value in self.sizes:
            if runs and runs[-1][0] == value:
                runs[-1][1] += 1
            else:
                runs.append([value, 1])
        sizes = ", ".join(f"{v} px" + (f" x{n}" if n > 1 else "") for v, n in runs)
        return (f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}: {frozen}; batch "
                f"{self.batch_size} ({self.steps_per_epoch} steps/epoch); {lrs}; warm-up "
                f"{self.warmup:.0%}; sizes {sizes}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedulePlan:
        values = dict(data)
        values["sizes"] = [int(s) for s in values["sizes"]]
        return cls(**values)


def plan_schedule(config: TrainConfig, train_images: int, *, size: int | None = None,
                  pretrained: bool = True, min_size: int | None = None) -> SchedulePlan:
    """The plan for ``config`` on ``train_images`` training images (before Start: the
    dataset's training split; the engine counts the readable ones).

    ``size`` is the full training size and ``min_size`` the smallest input of the
    architecture (default: from ``config`` and the architecture registry); ``pretrained``
    False (no weights found) means nothing to freeze.
    """
    if not (size or config.size) or min_size is None:
        from cxr_desktop.core.models import get_arch  # the registry imports torch

        info = get_arch(config.arch)
        size, min_size = size or config.size or info.input_size, min_size or info.min_input_size
    full = size or config.size
    epochs = config.epochs
    if config.freeze_epochs == AUTO_FREEZE:
        freeze = auto_freeze_epochs(epochs)
    else:
        freeze = config.freeze_epochs
    freeze = min(freeze, epochs) if pretrained else 0
    batch = auto_batch_size(train_images) if config.batch_size == AUTO_BATCH \
        else config.batch_size
    steps = max(1, math.ceil(math.ceil(max(train_images, 1) / batch) / config.accumulate))
    fine = epochs - freeze
    if config.progressive and fine >= 2:
        fine_sizes = progressive_sizes(full, fine, min_size)
    else:
        fine_sizes = [full] * fine
    auto = config.lr == AUTO_LR
    return SchedulePlan(
        epochs=epochs, freeze_epochs=freeze, batch_size=batch, steps_per_epoch=steps,
        lr=None if auto else float(config.lr), lr_source="auto" if auto else "set",
        lr_mult_early=config.lr_mult_early, warmup=warmup_share(fine),
        sizes=[full] * freeze + fine_sizes, size=full,
    )


def clamp_auto_lr(suggested: float) -> float:
    low, high = AUTO_LR_RANGE
    return min(high, max(low, float(suggested)))
