"""A real tiny training on chest views: its scope.npz flags a tagless tibia and keeps chests.

The chests are views (crop, small rotation, gamma, noise) of pydicom-data's real CR chest
``RG1_UNCI.dcm``; the out-of-scope images are views of its distal tibia ``RG3_UNCI.dcm``
saved as PNG, so no DICOM tag can help.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cxr_desktop.cli import main
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.infer import Predictor
from cxr_desktop.core.infer.scope import DEFAULT_METHOD, SCOPE_NAME, ScopeModel
from cxr_desktop.core.io import load_image, to_display
from cxr_desktop.core.runs import RunRegistry
from cxr_desktop.core.train import TrainConfig, fit

SIDE = 96


def _source(testdata, name: str) -> Image.Image:
    image = Image.fromarray(to_display(load_image(testdata(name))))
    return image.resize((400, round(400 * image.height / image.width)),
                        Image.Resampling.BILINEAR)


def view(rng: np.random.Generator, source: Image.Image, side: int = SIDE) -> np.ndarray:
    """A random view of ``source``: a crop of 60-95 % of the side, a rotation up to 6
    degrees, a gamma, noise."""
    short = min(source.size)
    crop = int(short * rng.uniform(0.6, 0.95))
    x = int(rng.integers(0, source.width - crop + 1))
    y = int(rng.integers(0, source.height - crop + 1))
    patch = source.crop((x, y, x + crop, y + crop)).rotate(float(rng.uniform(-6, 6)),
                                                           Image.Resampling.BILINEAR)
    pixels = np.asarray(patch.resize((side, side), Image.Resampling.BILINEAR), np.float32)
    pixels = 255.0 * (pixels / 255.0) ** rng.uniform(0.8, 1.25)
    pixels += rng.normal(0, 3, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def chest_run(tmp_path_factory, testdata):
    """small_cnn, 2 epochs at 64 px on 32 chest views (16 validation, 12 test)."""
    root = tmp_path_factory.mktemp("chest_scope")
    chest, tibia = _source(testdata, "RG1_UNCI.dcm"), _source(testdata, "RG3_UNCI.dcm")
    rng = np.random.default_rng(11)
    items = []
    for split, count in (("train", 32), ("val", 16), ("test", 12)):
        for index in range(count):
            positive = index % 2 == 1
            pixels = view(rng, chest)
            if positive:  # a bright coin, the finding the model learns
                cy, cx = rng.integers(20, SIDE - 20, 2)
                yy, xx = np.mgrid[0:SIDE, 0:SIDE]
                pixels = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < 36, 250, pixels)
            relative = f"{split}/{index:03d}.png"
            (root / "ds" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(root / "ds" / relative)
            items.append(ImageItem(relative, split, f"{split}{index}",
                                   "coin" if positive else "clear"))
    spec = DatasetSpec(root / "ds", "binary", ["clear", "coin"], "coin", items)
    (root / "tibia").mkdir()
    for index in range(8):
        Image.fromarray(view(rng, tibia)).save(root / "tibia" / f"{index}.png")
    config = TrainConfig(dataset=str(root / "ds"), arch="small_cnn", size=64, epochs=2,
                         batch_size=8, lr=3e-3, pretrained="none", workers=1,
                         out=str(root / "run"), cache_dir=str(root / "cache"))
    result = fit(config, spec=spec, registry=RunRegistry(root / "runs.sqlite"))
    assert result.status == "done"
    return result.run_dir, spec, root / "tibia"


def test_the_training_scope_flags_a_tagless_tibia_and_keeps_unseen_chests(chest_run):
    run_dir, spec, tibia_dir = chest_run
    scope = ScopeModel.load(run_dir / SCOPE_NAME)
    assert scope.method == DEFAULT_METHOD and scope.meta["val_images"] == 16
    assert scope.meta["options"]["layers"] == ["block3", "block4"]  # the deeper half
    predictor = Predictor.load(run_dir, device="cpu")
    assert not predictor.warnings
    chests = [predictor.predict(load_image(spec.abspath(item)))
              for item in spec.items if item.split == "test"]
    tibias = [predictor.predict(load_image(path)) for path in sorted(tibia_dir.glob("*.png"))]
    chest_scores = [p.scope_image.score for p in chests]
    tibia_scores = [p.scope_image.score for p in tibias]
    # 16 validation images: the threshold is their largest cross-fitted score; one unseen
    # chest of 12 may still pass it.
    assert sum(p.in_scope for p in chests) >= 11, (chest_scores, scope.threshold)
    assert not any(p.in_scope for p in tibias), (tibia_scores, scope.threshold)
    assert min(tibia_scores) > max(chest_scores)
    for prediction in tibias:
        assert prediction.scope_tags_in_scope  # a PNG: the image score alone said it
        assert "unlike the validation images" in prediction.scope_reason


def test_predict_json_carries_the_score_its_threshold_and_the_tags_apart(chest_run, capsys):
    run_dir, spec, tibia_dir = chest_run
    chest = next(spec.abspath(item) for item in spec.items if item.split == "test")
    tibia = sorted(tibia_dir.glob("*.png"))[0]
    assert main(["predict", str(run_dir), str(chest), str(tibia), "--json",
                 "--device", "cpu"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    threshold = ScopeModel.load(run_dir / SCOPE_NAME).threshold
    for record, inside in zip(records, (True, False), strict=True):
        image = record["scope_image"]
        assert set(image) == {"score", "threshold", "false_alarm_rate", "method", "in_scope"}
        assert image["threshold"] == pytest.approx(threshold, abs=1e-3)
        assert image["false_alarm_rate"] == 0.05 and image["method"] == DEFAULT_METHOD
        assert image["in_scope"] is inside and record["in_scope"] is inside
        assert record["scope_tags"] == {"in_scope": True, "reason": "no DICOM tags to check"}
    assert "at 5% false alarms" in records[1]["scope_reason"]
    assert main(["predict", str(run_dir), str(tibia), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "out of scope: unlike the validation images: scope score" in text
    assert main(["predict", str(run_dir), str(chest), "--device", "cpu"]) == 0
    assert "scope score" in capsys.readouterr().out


@pytest.mark.parametrize("amp", [False, True])
def test_the_scope_uses_the_validation_pass_unless_it_ran_in_reduced_precision(
        amp, tmp_path, monkeypatch):
    """float32 validation: its recorded statistics, no extra pass. Under autocast (bf16 on
    a CPU that has it) the statistics differ from the float32 Predictor's: one float32
    pass over the validation images instead."""
    from blobs import make_blob_dataset

    from cxr_desktop.core.train import scope_fit
    from cxr_desktop.core.train.loop import Precision

    reduced = Precision(torch.device("cpu"), amp).enabled
    if amp and not reduced:
        pytest.skip("this CPU has no native bf16: training runs in float32")
    spec = make_blob_dataset(tmp_path / "ds", n_train=16, n_val=12)
    calls = []
    real = scope_fit.fit_run_scope
    monkeypatch.setattr(scope_fit, "fit_run_scope",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    events = []
    config = TrainConfig(dataset=str(tmp_path / "ds"), arch="small_cnn", size=48, epochs=1,
                         batch_size=8, lr=3e-3, pretrained="none", workers=1, amp=amp,
                         out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    assert fit(config, events.append, spec=spec,
               registry=RunRegistry(tmp_path / "runs.sqlite")).status == "done"
    scope = ScopeModel.load(tmp_path / "run" / SCOPE_NAME)
    assert scope.method == DEFAULT_METHOD and scope.meta["val_images"] == 12
    said = any("reduced precision" in e.get("text", "") for e in events)
    assert calls == ([1] if reduced else []) and said == reduced
