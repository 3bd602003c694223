"""The schedule plan: budget-aware defaults, explicit settings kept, JSON round trips."""

from __future__ import annotations

import json

import pytest

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.schedule import (
    AUTO_LR_RANGE,
    SchedulePlan,
    clamp_auto_lr,
    plan_schedule,
    progressive_sizes,
)


def test_a_short_and_a_long_budget_get_different_sensible_plans():
    short = plan_schedule(TrainConfig(epochs=2, size=224, progressive=True), 648)
    long = plan_schedule(TrainConfig(epochs=30, size=224, progressive=True), 648)
    # A short run spends no epoch frozen; a long one starts with one (a cheap linear probe).
    assert short.freeze_epochs == 0 and long.freeze_epochs == 1
    assert short.fine_epochs == 2 and long.fine_epochs == 29
    # Small dataset: batch 16, so a short run still takes many optimizer steps.
    assert short.batch_size == long.batch_size == 16 and short.steps_per_epoch == 41
    # About one epoch of warm-up: a larger share of a short run.
    assert short.warmup > long.warmup and 0.1 <= long.warmup <= short.warmup <= 0.3
    # Every epoch has a size; the last ones train at the full size.
    assert len(short.sizes) == 2 and len(long.sizes) == 30
    assert short.sizes[-1] == long.sizes[-1] == 224 and short.sizes[0] < 224
    assert long.sizes[0] == 224, "the frozen epoch computes its features at the full size"
    assert long.sizes[1:] == sorted(long.sizes[1:]) and sum(s == 224 for s in long.sizes) >= 10
    # The backbone is not starved: the earliest layers get a real share of the LR.
    groups = short.group_lrs()
    assert groups["head"] >= groups["late"] >= groups["early"] >= groups["head"] / 4
    assert short.lr is None and short.lr_source == "auto"


@pytest.mark.parametrize(("images", "batch"), [(100, 16), (2_500, 16), (2_501, 32),
                                                (10_000, 32), (50_000, 64)])
def test_the_batch_follows_the_dataset_size(images, batch):
    assert plan_schedule(TrainConfig(epochs=5, size=128), images).batch_size == batch


def test_explicit_settings_win():
    config = TrainConfig(epochs=2, size=224, lr=3e-3, batch_size=48, freeze_epochs=1,
                         progressive=False, lr_mult_early=0.1, accumulate=2)
    plan = plan_schedule(config, 648)
    assert plan.freeze_epochs == 1 and plan.batch_size == 48 and plan.lr == 3e-3
    assert plan.lr_source == "set" and plan.sizes == [224, 224]
    assert plan.steps_per_epoch == 7  # ceil(ceil(648 / 48) / 2)
    assert plan.group_lrs()["early"] == pytest.approx(3e-4)
    explicit_zero = plan_schedule(TrainConfig(epochs=30, size=224, freeze_epochs=0), 648)
    assert explicit_zero.freeze_epochs == 0
    # Without pretrained weights there is nothing to freeze.
    assert plan_schedule(TrainConfig(epochs=30, size=224), 648, pretrained=False) \
        .freeze_epochs == 0


def test_progressive_sizes_rise_to_the_full_size():
    assert progressive_sizes(160, 2) == [128, 160]
    assert progressive_sizes(224, 3) == [176, 192, 224]
    six = progressive_sizes(224, 6)
    assert six[-2:] == [224, 224] and six == sorted(six) and six[0] == 176
    assert all(s >= 75 for s in progressive_sizes(96, 5, min_size=75))
    assert plan_schedule(TrainConfig(epochs=1, size=224, progressive=True), 100).sizes == [224]
    assert plan_schedule(TrainConfig(epochs=6, size=224), 100).sizes == [224] * 6


def test_the_plan_round_trips_through_json_and_describes_itself():
    config = TrainConfig(epochs=12, size=192)
    plan = plan_schedule(config, 5_000)
    again = SchedulePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    text = plan.describe()
    assert "1 frozen" in text and "batch 32" in text and "LR auto" in text
    assert "192 px" in text and "\n" not in text
    probed = plan.with_lr(2e-3, {"suggested_lr": 2e-3, "steps": 20})
    assert probed.lr == 2e-3 and probed.lr_source == "probe" and "from the probe" in \
        probed.describe()
    assert probed.head_lr > probed.lr


def test_auto_lr_is_kept_in_range_and_configs_read_lr_and_autos():
    low, high = AUTO_LR_RANGE
    assert clamp_auto_lr(1e-6) == low and clamp_auto_lr(1.0) == high
    assert clamp_auto_lr(1e-3) == 1e-3
    assert TrainConfig(lr="1e-3").validate().lr == 1e-3
    assert TrainConfig(lr="AUTO").validate().lr == "auto"
    for bad in ("fast", -1, 0, float("nan"), True):
        with pytest.raises(CxrError, match="lr must be 'auto' or a positive number"):
            TrainConfig(lr=bad).validate()
    with pytest.raises(CxrError, match="batch_size"):
        TrainConfig(batch_size=-1).validate()
    with pytest.raises(CxrError, match="freeze_epochs"):
        TrainConfig(freeze_epochs=-2).validate()
    config = TrainConfig(dataset="d", epochs=4)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_config_json_of_before_the_schedule_still_loads(tmp_path):
    old = {"dataset": "ds", "dataset_options": {}, "arch": "small_cnn", "size": 64,
           "epochs": 3, "batch_size": 32, "lr": 0.001, "freeze_epochs": 1,
           "lr_mult_early": 0.1, "schedule": "onecycle", "weight_decay": 0.01,
           "pretrained": "auto", "device": "auto", "augment": {}, "class_balance": "none",
           "early_stop_patience": 0, "accumulate": 1, "amp": True, "seed": 0,
           "threshold": 0.5, "log_every_n_batches": 10, "out": "", "workers": 0,
           "cache_dir": ""}
    (tmp_path / "config.json").write_text(json.dumps(old))
    config = TrainConfig.load(tmp_path / "config.json").validate()
    assert config.lr == 0.001 and config.batch_size == 32 and config.freeze_epochs == 1
    assert config.plan == {}
    plan = plan_schedule(config, 100)
    assert plan.lr == 0.001 and plan.batch_size == 32 and plan.freeze_epochs == 1
