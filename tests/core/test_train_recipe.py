"""The budget-aware recipe in the engine: LR probe, cheap frozen phase, progressive sizes,
the scope from the validation pass, and runs saved before plans existed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from blobs import make_blob_dataset
from PIL import Image

from cxr_desktop.core.infer import Predictor
from cxr_desktop.core.infer.scope import SCOPE_METHOD_VALIDATION, SCOPE_NAME, ScopeModel
from cxr_desktop.core.io import load_image
from cxr_desktop.core.models import build_model, get_arch
from cxr_desktop.core.runs import RunFolder, load_checkpoint, save_checkpoint
from cxr_desktop.core.train import TrainConfig, engine, fit, lr_finder, resume, scope_fit
from cxr_desktop.core.train.loop import Precision
from cxr_desktop.core.train.lr_finder import LrFinderResult


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DESKTOP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CXR_DESKTOP_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def spec(tmp_path):
    return make_blob_dataset(tmp_path / "ds", n_train=24, n_val=12)


def config(tmp_path, name: str, **overrides) -> TrainConfig:
    values = dict(dataset=str(tmp_path / "ds"), arch="small_cnn", size=48, epochs=2,
                  batch_size=8, lr=3e-3, pretrained="none", log_every_n_batches=1,
                  out=str(tmp_path / name), workers=2)
    values.update(overrides)
    return TrainConfig(**values)


def counting_forward(monkeypatch, calls: list[tuple[str, int, int]]):
    """Every backbone forward pass is recorded as (mode, images, side)."""

    def build(*args, **kwargs):
        model = build_model(*args, **kwargs)
        inner = model.forward_features

        def forward_features(images):
            calls.append(("train" if model.training else "eval", images.shape[0],
                          images.shape[-1]))
            return inner(images)

        model.forward_features = forward_features
        return model

    monkeypatch.setattr(engine, "build_model", build)


def test_lr_auto_takes_the_probe_suggestion_and_records_it(tmp_path, spec, monkeypatch):
    swept = []

    def fake_sweep(model, optimizer, batches, loss_fn, **kwargs):
        images, _ = next(batches)
        swept.append((kwargs["num_iter"], images.shape[-1]))
        # The lowest loss at 2e-2: the probe takes a tenth of it.
        return LrFinderResult([1e-3, 2e-2, 5e-2], [0.7, 0.5, 0.9], [0.7, 0.5, 0.9],
                              1e-3, 5e-3, 1e-3)

    monkeypatch.setattr(lr_finder, "lr_sweep", fake_sweep)
    events = []
    result = fit(config(tmp_path, "run", lr="auto"), events.append, spec=spec)
    assert result.status == "done" and swept == [(lr_finder.PROBE_STEPS, 48)]
    messages = [e["text"] for e in events if e["type"] == "message"]
    assert any(m.startswith("LR probe: the LR finder suggests 2.0e-03") for m in messages)
    assert any(m.startswith("schedule: 2 epochs") and "from the probe" in m
               for m in messages)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["lr"] == "auto" and saved["plan"]["lr"] == pytest.approx(2e-3)
    assert saved["plan"]["probe"]["suggested_lr"] == pytest.approx(2e-3)
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["plan"]["lr"] == 2e-3
    head = checkpoint["optimizer"]["param_groups"][-1]
    assert head["max_lr"] == pytest.approx(2e-3)

    # A suggestion out of range is kept inside it; resume never probes again.
    monkeypatch.setattr(lr_finder, "lr_sweep", lambda *a, **k: LrFinderResult(
        [1e-4, 1.0], [0.9, 0.6], [0.9, 0.6], 5e-2, 5e-2, 5e-2))
    later: list[dict] = []
    stopped = fit(config(tmp_path, "run2", lr="auto", epochs=3), later.append,
                  lambda: any(e["type"] == "epoch" for e in later), spec=spec)
    assert stopped.status == "stopped"
    assert json.loads((tmp_path / "run2" / "config.json").read_text())["plan"]["lr"] == 3e-3
    monkeypatch.setattr(lr_finder, "lr_sweep", lambda *a, **k: pytest.fail("probed again"))
    assert resume(tmp_path / "run2").status == "done"


def test_a_real_probe_finds_a_usable_lr(tmp_path, spec):
    events = []
    result = fit(config(tmp_path, "run", lr="auto", epochs=1), events.append, spec=spec)
    plan = json.loads((tmp_path / "run" / "config.json").read_text())["plan"]
    assert result.status == "done" and 3e-4 <= plan["lr"] <= 3e-3
    assert 6 <= plan["probe"]["steps"] <= lr_finder.PROBE_STEPS


def test_the_frozen_phase_computes_features_once_and_never_trains_the_backbone(
        tmp_path, spec, monkeypatch):
    weights = tmp_path / "pretrained.pth"
    torch.save(get_arch("small_cnn").create().state_dict(), weights)
    start = torch.load(weights, weights_only=True)
    calls: list[tuple[str, int, int]] = []
    counting_forward(monkeypatch, calls)
    events = []
    result = fit(config(tmp_path, "run", epochs=3, freeze_epochs=2, pretrained=str(weights)),
                 events.append, lambda: any(e["type"] == "epoch" and e["epoch"] == 2
                                            for e in events), spec=spec)
    assert result.status == "stopped" and result.epochs_done == 2
    # Two frozen epochs: one eval-mode forward pass per training and validation image, in
    # all, and no training-mode pass through the backbone (so no backward through it).
    assert [c[0] for c in calls] == ["eval"] * len(calls)
    assert sum(c[1] for c in calls) == 24 + 12 and {c[2] for c in calls} == {48}
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["phase"] == 1 and checkpoint["freeze_epochs"] == 2
    backbone = [k for k in start if k.startswith("features.")]
    assert backbone and all(torch.equal(checkpoint["model"][k], start[k]) for k in backbone)
    records = [e for e in events if e["type"] == "epoch"]
    assert [r["phase"] for r in records] == [1, 1] and records[1]["val_auc"] > 0.5

    calls.clear()
    finished = resume(tmp_path / "run")
    assert finished.status == "done" and [r["phase"] for r in finished.history] == [1, 1, 2]
    assert "train" in {c[0] for c in calls}


def test_progressive_sizes_train_smaller_first_and_validate_at_full_size(
        tmp_path, spec, monkeypatch):
    calls: list[tuple[str, int, int]] = []
    counting_forward(monkeypatch, calls)
    result = fit(config(tmp_path, "run", epochs=3, size=64, progressive=True), spec=spec)
    assert [r["train_size"] for r in result.history] == [48, 64, 64]
    train_sides = [c[2] for c in calls if c[0] == "train"]
    assert train_sides[0] == 48 and train_sides[-1] == 64
    assert {c[2] for c in calls if c[0] == "eval"} == {64}
    assert load_checkpoint(tmp_path / "run" / "best.pt")["metadata"]["input_size"] == 64
    fixed = fit(config(tmp_path, "fixed", epochs=3, size=64), spec=spec)
    assert [r["train_size"] for r in fixed.history] == [64, 64, 64]


def test_the_scope_comes_from_the_validation_pass_with_no_extra_pass(
        tmp_path, spec, monkeypatch):
    calls: list[tuple[str, int, int]] = []
    counting_forward(monkeypatch, calls)
    monkeypatch.setattr(scope_fit, "fit_run_scope", lambda *a, **k: pytest.fail("extra pass"))
    seen_at_last_epoch = []

    def on_event(event):
        if event["type"] == "epoch" and event["epoch"] == 2:
            seen_at_last_epoch.append(len(calls))

    # float32: a validation pass under bf16 autocast (small_cnn on a CPU with native bf16)
    # is followed by a float32 pass for the scope (tests/core/test_scope_training.py).
    result = fit(config(tmp_path, "run", amp=False), on_event, spec=spec)
    assert result.status == "done" and seen_at_last_epoch == [len(calls)]
    scope = ScopeModel.load(tmp_path / "run" / SCOPE_NAME)
    assert scope.meta["method"] == SCOPE_METHOD_VALIDATION and scope.meta["val_images"] == 12
    assert scope.meta["epoch"] == result.best_epoch and scope.meta["checkpoint"] == "best.pt"
    predictor = Predictor.load(tmp_path / "run", device="cpu")
    assert predictor.scope is not None and not predictor.warnings
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (80, 80), dtype=np.uint8)) \
        .save(noise)
    assert not predictor.predict(load_image(noise)).in_scope


def test_a_run_saved_before_plans_existed_resumes(tmp_path, spec):
    events = []
    stopped = fit(config(tmp_path, "run", epochs=3, size=64, progressive=True), events.append,
                  lambda: any(e["type"] == "epoch" for e in events), spec=spec)
    assert stopped.status == "stopped"
    folder = RunFolder(tmp_path / "run")
    old = json.loads(folder.config_path.read_text())
    for key in ("plan", "progressive"):
        del old[key]
    old.update(lr=3e-3, batch_size=8, freeze_epochs=1, lr_mult_early=0.1)
    folder.config_path.write_text(json.dumps(old))
    checkpoint = load_checkpoint(folder.last_path)
    del checkpoint["plan"]
    checkpoint["config"] = old
    save_checkpoint(folder.last_path, checkpoint)
    resumed = resume(folder.path)
    assert resumed.status == "done" and resumed.epochs_done == 3
    assert [r["train_size"] for r in resumed.history[1:]] == [64, 64]


def test_precision_on_the_cpu_uses_channels_last_and_bf16_only_where_native(monkeypatch):
    from cxr_desktop.core.train import loop

    cpu = torch.device("cpu")
    plain = Precision(cpu, amp=True)
    assert plain.channels_last and plain.enabled == loop.cpu_has_native_bf16()
    batch = plain.input(torch.zeros(2, 1, 64, 64, dtype=torch.uint8), 32)
    assert batch.shape == (2, 1, 32, 32) and batch.is_contiguous(
        memory_format=torch.channels_last)
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    bf16 = Precision(cpu, amp=True)
    assert bf16.enabled and bf16.dtype == torch.bfloat16 and bf16.name == "bfloat16"
    model = build_model("small_cnn", 1, pretrained="none")
    with bf16.autocast():
        logits = model(bf16.input(torch.zeros(2, 1, 32, 32, dtype=torch.uint8)))
    assert logits.dtype == torch.bfloat16
    logits.float().sum().backward()
    assert not Precision(cpu, amp=False).enabled
    # Depthwise convolutions are slower in bf16 on a CPU: EfficientNet stays in float32.
    lite0 = build_model("efficientnet_lite0", 1, pretrained="none")
    assert loop.has_depthwise_convs(lite0) and not loop.has_depthwise_convs(model)
    assert not Precision(cpu, amp=True, model=lite0).enabled
    assert Precision(cpu, amp=True, model=model).enabled
