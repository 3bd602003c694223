"""The training engine: a real tiny training on CPU, losses, metrics, augmentations."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from blobs import make_blob_dataset
from sklearn.metrics import roc_auc_score

from cxr_desktop.core.data import cache as cache_module
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.io import load_image
from cxr_desktop.core.models import build_model
from cxr_desktop.core.runs import load_checkpoint
from cxr_desktop.core.train import AugmentSettings, TrainConfig, fit
from cxr_desktop.core.train.augment import augment_batch, preview
from cxr_desktop.core.train.data import epoch_order, loss_weights, prepare_data
from cxr_desktop.core.train.loop import make_loss, masked_bce_with_logits
from cxr_desktop.core.train.lr_finder import find_lr, lr_sweep
from cxr_desktop.core.train.metrics import classification_metrics


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DESKTOP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CXR_DESKTOP_CACHE", str(tmp_path / "cache"))


def tiny_config(tmp_path, **overrides) -> TrainConfig:
    values = dict(dataset=str(tmp_path / "ds"), arch="small_cnn", size=64, epochs=3,
                  batch_size=8, lr=3e-3, pretrained="none", log_every_n_batches=2,
                  workers=2)
    values.update(overrides)
    return TrainConfig(**values)


def test_tiny_training_learns_and_reuses_the_cache(tmp_path, monkeypatch):
    spec = make_blob_dataset(tmp_path / "ds")
    events: list[dict] = []
    result = fit(tiny_config(tmp_path, out=str(tmp_path / "run1")), events.append, spec=spec)
    assert result.status == "done" and result.epochs_done == 3
    assert result.best_val_auc is not None and result.best_val_auc >= 0.8
    kinds = [e["type"] for e in events]
    assert kinds.count("epoch") == 3 and kinds[-1] == "done" and "cache" in kinds
    batch_events = [e for e in events if e["type"] == "batch"]
    assert len(batch_events) == 3 * 2, "32 images / batch 8 = 4 batches, one event per 2"
    epoch = next(e for e in events if e["type"] == "epoch")
    for key in ("train_loss", "val_loss", "val_auc", "lr", "epoch_s", "images_per_s",
                "accuracy", "sensitivity", "specificity", "recall"):
        assert isinstance(epoch[key], float), key
    assert all(isinstance(v, int | float) for e in batch_events for k, v in e.items()
               if k != "type")

    calls: list[str] = []
    monkeypatch.setattr(cache_module, "load_image",
                        lambda path: calls.append(path) or load_image(path))
    second = fit(tiny_config(tmp_path, out=str(tmp_path / "run2"), epochs=1), spec=spec)
    assert second.status == "done" and calls == []


def test_unreadable_image_is_left_out_and_reported(tmp_path):
    spec = make_blob_dataset(tmp_path / "ds", n_train=8, n_val=4)
    (tmp_path / "ds" / spec.items[0].path).write_bytes(b"not an image")
    messages = []
    data = prepare_data(spec, 32, on_event=lambda e: messages.append(e))
    assert len(data.train_rows) == 7 and len(data.val_rows) == 4
    assert data.excluded and "000.png" in data.excluded[0]
    assert any(e["type"] == "message" and "unreadable" in e["text"] for e in messages)


def test_masked_labels_do_not_change_the_loss():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.5, -2.0]])
    target = torch.tensor([[1.0, float("nan"), 0.0], [float("nan"), 1.0, 0.0]])
    masked = masked_bce_with_logits(logits, target)
    for fill in (0.0, 1.0):
        flipped = torch.where(torch.isnan(target), fill, target)
        assert not torch.isclose(masked, masked_bce_with_logits(logits, flipped))
    known = ~torch.isnan(target)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[known],
                                                                    target[known])
    assert torch.isclose(masked, expected)
    loss = make_loss("multilabel")
    assert torch.isclose(loss(logits, target), masked)


def test_uncertain_labels_are_masked_end_to_end(tmp_path):
    spec = make_blob_dataset(tmp_path / "ds", n_train=6, n_val=2, task="multilabel")
    variants = []
    for value in (1.0, -1.0):
        spec.items[0].labels = {"blob": value, "other": 0.0}
        variants.append(spec.targets())
    certain, uncertain = variants
    assert math.isnan(uncertain[0, 0]) and certain[0, 0] == 1.0
    logits = torch.randn(len(certain), 2)
    loss = make_loss("multilabel")
    flipped = uncertain.copy()
    flipped[0, 0] = np.nan
    base = loss(logits, torch.from_numpy(uncertain))
    assert torch.isclose(base, loss(logits, torch.from_numpy(flipped)))
    assert not torch.isclose(base, loss(logits, torch.from_numpy(certain)))


def test_metrics_match_sklearn_and_survive_one_class():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    out = classification_metrics("multiclass", y, probs, ["a", "b", "c"])
    expected = [roc_auc_score(y == c, probs[:, c]) for c in range(3)]
    assert out["auc_per_class"] == pytest.approx(dict(zip("abc", expected, strict=True)))
    assert out["val_auc"] == pytest.approx(np.mean(expected))
    assert out["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == y))

    binary = classification_metrics("binary", np.array([1, 1, 0, 0]),
                                     np.array([0.9, 0.4, 0.6, 0.1]), ["pos"])
    assert binary["val_auc"] == 0.75 and binary["sensitivity"] == 0.5
    assert binary["specificity"] == 0.5 and binary["precision"] == 0.5

    multilabel = np.array([[1, 0], [0, 0], [np.nan, 0], [0, np.nan]], dtype=np.float32)
    scores = np.array([[0.8, 0.3], [0.2, 0.1], [0.0, 0.2], [0.4, 0.9]])
    out = classification_metrics("multilabel", multilabel, scores, ["x", "y"])
    assert out["auc_per_class"]["x"] == 1.0 and math.isnan(out["auc_per_class"]["y"])
    assert out["val_auc"] == 1.0
    assert out["accuracy"] == pytest.approx(6 / 6)


def test_class_balance_helpers(tmp_path):
    spec = make_blob_dataset(tmp_path / "ds", n_train=12, n_val=2)
    for item in spec.items[:12]:
        item.labels = "clear"
    spec.items[1].labels = spec.items[3].labels = "blob"
    data = prepare_data(spec, 32)
    assert loss_weights(data).tolist() == [5.0]
    order = epoch_order(data, "sampler", seed=0, epoch=0)
    drawn = np.concatenate([data.targets[epoch_order(data, "sampler", 0, e)]
                            for e in range(20)])
    assert len(order) == 12 and 0.35 < drawn.mean() < 0.65
    plain = epoch_order(data, "none", seed=0, epoch=0)
    assert sorted(plain) == sorted(data.train_rows)


def test_augmentations_are_seeded_and_the_preview_matches():
    image = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
    settings = AugmentSettings(flip=True, rotate_deg=10, scale=0.1, translate=0.05,
                               brightness=0.1, contrast=0.1)
    first, again = preview(image, settings, seed=3), preview(image, settings, seed=3)
    assert first.dtype == np.uint8 and first.shape == image.shape
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, preview(image, settings, seed=4))
    np.testing.assert_array_equal(preview(image, AugmentSettings.none(), 0), image)
    flip_only = AugmentSettings.none()
    flip_only.flip = True
    outs = [preview(image, flip_only, seed) for seed in range(8)]
    assert all(np.array_equal(o, image) or np.abs(o.astype(int) - image[:, ::-1]).max() <= 1
               for o in outs)
    assert any(not np.array_equal(o, image) for o in outs)
    batch = torch.rand(4, 1, 32, 32)
    out = augment_batch(batch, settings, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1


def test_lr_finder_suggests_a_finite_lr_and_restores_the_model(tmp_path):
    spec = make_blob_dataset(tmp_path / "ds", n_train=16, n_val=4)
    points = []
    result = find_lr(tiny_config(tmp_path), points.append, spec=spec, num_iter=30)
    assert math.isfinite(result.suggested_lr) and 1e-7 <= result.suggested_lr <= 10
    assert len(result.lrs) == len(result.losses) >= 10
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:], strict=False))
    assert sum(e["type"] == "lr_find" for e in points) == len(result.lrs)

    model = build_model("small_cnn", 1, pretrained="none")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.param_groups(1e-3))
    batches = iter([(torch.rand(4, 1, 32, 32), torch.tensor([0.0, 1, 0, 1]))] * 20)
    lr_sweep(model, optimizer, batches, make_loss("binary"), num_iter=20)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert optimizer.state_dict()["state"] == {}


def test_multilabel_spec_trains(tmp_path):
    spec = make_blob_dataset(tmp_path / "ds", n_train=16, n_val=8, task="multilabel")
    spec.items[0].labels = {"blob": -1.0, "other": 1.0}
    assert isinstance(spec, DatasetSpec) and isinstance(spec.items[0], ImageItem)
    result = fit(tiny_config(tmp_path, epochs=1, out=str(tmp_path / "run")), spec=spec)
    assert result.status == "done"
    assert set(result.history[0]["auc_per_class"]) == {"blob", "other"}


def test_out_of_memory_halves_the_batch_and_goes_on(tmp_path, monkeypatch):
    from cxr_desktop.core.train import engine

    def build_with_small_memory(*args, **kwargs):
        model = build_model(*args, **kwargs)
        forward = model.forward

        def limited(images):
            if images.shape[0] > 4:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return forward(images)

        model.forward = limited
        return model

    monkeypatch.setattr(engine, "build_model", build_with_small_memory)
    spec = make_blob_dataset(tmp_path / "ds", n_train=16, n_val=4)
    events: list[dict] = []
    result = fit(tiny_config(tmp_path, epochs=2, out=str(tmp_path / "run")), events.append,
                 spec=spec)
    messages = [e["text"] for e in events if e["type"] == "message"]
    assert any("out of memory: batch halved to 4" in m for m in messages)
    assert result.status == "done" and [r["batch_size"] for r in result.history] == [4, 4]
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["batch_size"] == 4 and checkpoint["accumulate"] == 2


@pytest.mark.parametrize(("start", "end", "num_iter", "reason"), [
    (-1.0, 10.0, 100, "the start LR must be a positive number, not -1"),
    (0.0, 10.0, 100, "the start LR must be a positive number, not 0"),
    (1.0, 1e-3, 100, "the end LR (0.001) must be above the start LR (1)"),
    (1e-7, 10.0, 0, "the sweep needs 10 steps at least, not 0"),
    (1e-7, 10.0, 1, "the sweep needs 10 steps at least, not 1"),
])
def test_lr_finder_settings_are_checked_before_any_work(tmp_path, start, end, num_iter,
                                                         reason):
    from cxr_desktop.core.errors import CxrError

    # The dataset does not exist: the settings are refused before it would be opened.
    with pytest.raises(CxrError, match="^" + re.escape(f"LR finder: {reason}") + "$"):
        find_lr(tiny_config(tmp_path), start_lr=start, end_lr=end, num_iter=num_iter)


def test_lr_finder_suggestions_are_inside_the_swept_range():
    from cxr_desktop.core.train.lr_finder import steepest, valley

    lrs, losses = np.array([1e-7, 10.0]), np.array([0.65, 0.66])
    assert lrs[0] <= steepest(lrs, losses) <= lrs[-1]
    assert lrs[0] <= valley(lrs, losses) <= lrs[-1]
    model = build_model("small_cnn", 1, pretrained="none")
    optimizer = torch.optim.AdamW(model.param_groups(1e-3))
    batches = iter([(torch.rand(4, 1, 32, 32), torch.tensor([0.0, 1, 0, 1]))] * 12)
    result = lr_sweep(model, optimizer, batches, make_loss("binary"), start_lr=1e-4,
                      end_lr=1e-2, num_iter=10)
    for lr in (result.suggested_lr, result.steepest_lr, result.valley_lr):
        assert 1e-4 <= lr <= 1e-2 * (1 + 1e-9)
