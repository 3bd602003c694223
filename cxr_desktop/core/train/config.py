"""Training settings as one plain dataclass that round-trips through JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cxr_desktop.core.atomic import atomic_write_json
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.jsonfile import read_json

SCHEDULES = ("onecycle", "cosine")
DEVICES = ("auto", "cpu", "cuda")
CLASS_BALANCE = ("none", "weights", "sampler")
#: The values that leave a setting to the schedule (``core.train.schedule.plan_schedule``).
AUTO_LR = "auto"
AUTO_BATCH = 0
AUTO_FREEZE = -1


def parse_lr(value: object) -> float | str:
    """``"auto"`` or a positive finite number (a number written as text is converted);
    CxrError otherwise."""
    if isinstance(value, str) and value.strip().lower() == AUTO_LR:
        return AUTO_LR
    try:
        lr = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lr = float("nan")
    if isinstance(value, bool) or not math.isfinite(lr) or lr <= 0:
        raise CxrError(f"training settings: lr must be 'auto' or a positive number, "
                       f"not {value!r}")
    return lr


@dataclass
class AugmentSettings:
    """Random transforms applied to training batches on the training device.

    ``flip`` is off by default: a mirrored chest film puts the heart on the wrong side, which
    a real film never does. ``scale`` 0.1 zooms by a factor in [0.9, 1.1]; ``translate`` is a
    fraction of the side; ``brightness`` and ``contrast`` are the largest change, as a
    fraction of the full range (brightness) or of the contrast (contrast).

    The defaults are light (a small rotation and brightness change; no zoom, shift or
    contrast change): on ``bench/recipe.py``'s three datasets, five seeds each, the former
    defaults (7 degrees, zoom 0.1, shift 0.05, contrast 0.1) cost 0.031 of test AUC on the
    multi-label set at 6 epochs, 0.021 at 3 and 0.060 at 2, and were not clearly better
    elsewhere (bench/RESULTS.md).
    """

    flip: bool = False
    rotate_deg: float = 5.0
    scale: float = 0.0
    translate: float = 0.0
    brightness: float = 0.1
    contrast: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(
            self.flip or self.rotate_deg or self.scale or self.translate
            or self.brightness or self.contrast
        )

    @classmethod
    def none(cls) -> AugmentSettings:
        return cls(flip=False, rotate_deg=0.0, scale=0.0, translate=0.0, brightness=0.0,
                   contrast=0.0)


@dataclass
class TrainConfig:
    """Everything a run needs; ``config.json`` in the run folder is this, as JSON.

    ``epochs`` counts every epoch, the frozen ones included. ``lr`` ``"auto"``,
    ``batch_size`` 0 and ``freeze_epochs`` -1 leave the value to the schedule, which follows
    the epochs and the dataset size (``core.train.schedule``); a number is kept as given.
    ``lr`` is the peak LR of the head, ``lr_mult_early`` the share of it the earliest layers
    get. ``progressive`` trains the first epochs at a lower size (off by default: it cost
    validation AUC in ``bench/recipe.py``). ``plan`` is filled by
    the engine: the schedule it resolved (the LR probe's result included), so ``resume``
    follows the same one; leave it empty in a new request. ``size`` 0 means the
    architecture's own input size. ``out`` empty means a new folder under the runs folder.
    ``early_stop_patience`` 0 disables early stopping. ``workers`` 0 means one
    cache-building thread per CPU core (at most 8).
    """

    dataset: str = ""
    dataset_options: dict[str, Any] = field(default_factory=dict)
    arch: str = "efficientnet_lite0"
    size: int = 0
    epochs: int = 10
    batch_size: int = AUTO_BATCH
    lr: float | str = AUTO_LR
    freeze_epochs: int = AUTO_FREEZE
    lr_mult_early: float = 0.5
    progressive: bool = False
    schedule: str = "onecycle"
    weight_decay: float = 0.01
    pretrained: str = "auto"
    device: str = "auto"
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    class_balance: str = "none"
    early_stop_patience: int = 0
    accumulate: int = 1
    amp: bool = True
    seed: int = 0
    threshold: float = 0.5
    log_every_n_batches: int = 10
    out: str = ""
    workers: int = 0
    cache_dir: str = ""
    plan: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        """Raise CxrError naming the first bad setting; return self."""
        self.lr = parse_lr(self.lr)
        checks = [
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
            (self.device in DEVICES, f"device must be one of {DEVICES}"),
            (self.class_balance in CLASS_BALANCE, f"class_balance must be one of {CLASS_BALANCE}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 0, "batch_size must be at least 1, or 0 (auto)"),
            (self.accumulate >= 1, "accumulate must be at least 1"),
            (self.freeze_epochs >= -1, "freeze_epochs must be 0 or more, or -1 (auto)"),
            (0 < self.lr_mult_early <= 1, "lr_mult_early must be in (0, 1]"),
            (self.size == 0 or self.size >= 16, "size must be 0 (the model's own) or >= 16"),
            (self.log_every_n_batches >= 1, "log_every_n_batches must be at least 1"),
            (0.0 < self.threshold < 1.0, "threshold must be between 0 and 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise CxrError(f"training settings: {message}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CxrError(f"training settings: unknown setting(s) {', '.join(unknown)}")
        values = dict(data)
        augment = values.get("augment", {})
        if isinstance(augment, dict):
            aug_known = {f.name for f in fields(AugmentSettings)}
            bad = sorted(set(augment) - aug_known)
            if bad:
                raise CxrError(f"training settings: unknown augmentation(s) {', '.join(bad)}")
            values["augment"] = AugmentSettings(**augment)
        return cls(**values)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        data = read_json(path)
        if not isinstance(data, dict):
            raise FileError(path, "training settings must be a JSON object")
        return cls.from_dict(data)
