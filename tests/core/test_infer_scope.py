"""Out of scope: DICOM tags against the training data, and the image score of a run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from blobs import blob_image, make_blob_dataset
from PIL import Image

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer import Predictor, ScopeModel, fit_run_scope, fit_scope
from cxr_desktop.core.infer.scope import DEFAULT_METHOD, SCOPE_NAME, check_scope
from cxr_desktop.core.io import load_image
from cxr_desktop.core.models import build_model
from cxr_desktop.core.runs import RunRegistry
from cxr_desktop.core.train import TrainConfig, fit


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One small_cnn run on the blob images (64 px, 2 epochs) with its scope fitted."""
    root = tmp_path_factory.mktemp("tiny_run")
    spec = make_blob_dataset(root / "ds", n_train=32, n_val=16, n_test=8)
    config = TrainConfig(dataset=str(root / "ds"), arch="small_cnn", size=64, epochs=2,
                         batch_size=8, lr=3e-3, pretrained="none", workers=1,
                         out=str(root / "run"), cache_dir=str(root / "cache"))
    result = fit(config, spec=spec, registry=RunRegistry(root / "runs.sqlite"))
    assert result.status == "done"
    scope = fit_run_scope(result.run_dir, spec)
    return result.run_dir, spec, scope


def test_a_tibia_is_out_of_scope_for_a_chest_model_and_a_chest_is_in(testdata):
    tibia, chest = load_image(testdata("RG3_UNCI.dcm")), load_image(testdata("RG1_UNCI.dcm"))
    seen = {"modalities": {"CR": 40}, "body_parts": {"CHEST": 40}, "views": {"PA": 40}}
    out = check_scope(tibia, seen)
    assert not out.in_scope and "EXTREMITY" in out.reason and "CHEST" in out.reason
    assert check_scope(chest, seen).in_scope
    # Trained on PNGs (no DICOM tags at all): the default chest scope, said in the reason.
    for scope in ({"modalities": {}, "body_parts": {}, "views": {}}, None):
        default = check_scope(tibia, scope)
        assert not default.in_scope and "chest model is assumed" in default.reason
        assert check_scope(chest, scope).in_scope
    lateral = check_scope(chest, {"views": {"LL": 3}})
    assert not lateral.in_scope and "view PA" in lateral.reason


def test_the_image_score_flags_noise_and_passes_images_like_validation(tiny_run):
    run_dir, spec, scope = tiny_run
    assert (run_dir / SCOPE_NAME).is_file()
    assert scope.method == DEFAULT_METHOD and scope.meta["val_images"] == 16
    assert scope.false_alarm_rate == 0.05
    # 16 validation images are too few for a conformal 95 % rank: the largest score.
    assert scope.threshold == max(scope.val_scores)
    predictor = Predictor.load(run_dir, device="cpu")
    assert predictor.scope is not None and not predictor.warnings
    assert (scope.val_scores > scope.threshold).sum() <= 1  # 5 % of 16
    held_out = [predictor.predict(load_image(spec.abspath(item)))
                for item in spec.items if item.split == "test"]
    scores = [p.ood_distance for p in held_out]
    # Unseen images like the validation ones: most pass (16 validation images make a rough
    # quantile, so one or two may sit just above it), all far below noise.
    assert sum(p.in_scope for p in held_out) >= len(held_out) * 0.7, scores
    assert np.median(scores) < scope.threshold
    for prediction in held_out:
        image = prediction.scope_image
        assert image is not None and image.score == pytest.approx(prediction.ood_distance)
        assert image.threshold == scope.threshold and image.method == DEFAULT_METHOD
        assert prediction.scope_tags_in_scope and "no DICOM tags" in prediction.scope_tags_reason
    rng = np.random.default_rng(7)
    noise_dir = run_dir.parent / "noise"
    noise_dir.mkdir()
    spread = max(scope.val_scores) - min(scope.val_scores)
    for index in range(5):
        Image.fromarray(rng.integers(0, 256, (80, 80), dtype=np.uint8)).save(
            noise_dir / f"{index}.png")
        prediction = predictor.predict(load_image(noise_dir / f"{index}.png"))
        assert not prediction.in_scope and "unlike the validation images" in \
            prediction.scope_reason
        assert "threshold" in prediction.scope_reason and "5% false alarms" in \
            prediction.scope_reason
        assert not prediction.scope_image.in_scope and prediction.scope_tags_in_scope
        assert prediction.ood_distance > max(scope.threshold, *scores) + spread / 4


def test_a_scope_file_of_another_checkpoint_is_ignored(tiny_run, tmp_path):
    run_dir, _, scope = tiny_run
    loaded = ScopeModel.load(run_dir / SCOPE_NAME)
    np.testing.assert_allclose(loaded.val_scores, scope.val_scores)
    assert loaded.threshold == scope.threshold
    stale_dir = tmp_path / "stale"
    stale_dir.mkdir()
    (stale_dir / "best.pt").write_bytes((run_dir / "best.pt").read_bytes())
    loaded.meta = json.loads(json.dumps(loaded.meta)) | {"epoch": 99}
    loaded.save(stale_dir / SCOPE_NAME)
    predictor = Predictor.load(stale_dir, device="cpu")
    assert predictor.scope is None and any("another checkpoint" in w for w in predictor.warnings)


def test_a_scope_file_of_the_first_version_still_loads_and_says_so(tiny_run, tmp_path):
    """Format 1: pooled-feature mean and precision, threshold at the 99th percentile."""
    run_dir, spec, scope = tiny_run
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    (old_dir / "best.pt").write_bytes((run_dir / "best.pt").read_bytes())
    dims = 256  # small_cnn's pooled features
    meta = {key: scope.meta[key] for key in ("checkpoint", "checkpoint_saved", "epoch")}
    meta |= {"method": "mahalanobis/ledoit-wolf/pooled-features/validation-crossfit/v1",
             "percentile": 99.0, "shrinkage": 0.5}
    np.savez(old_dir / SCOPE_NAME, mean=np.zeros(dims), precision=np.eye(dims, dtype=np.float32),
             threshold=np.float64(1e6), val_distances=np.ones(8),
             meta=np.array(json.dumps(meta)))
    old = ScopeModel.load(old_dir / SCOPE_NAME)
    assert old.legacy and old.method == "mahalanobis" and old.threshold == 1e6
    assert old.false_alarm_rate == pytest.approx(0.01)
    predictor = Predictor.load(old_dir, device="cpu")
    assert predictor.scope is not None
    assert any("older cxr-desktop" in w for w in predictor.warnings)
    item = next(item for item in spec.items if item.split == "test")
    prediction = predictor.predict(load_image(spec.abspath(item)))
    assert prediction.in_scope and prediction.scope_image.false_alarm_rate == pytest.approx(0.01)


def test_fit_scope_needs_images():
    model = build_model("small_cnn", 1, "none")
    one = [np.stack([blob_image(np.random.default_rng(0), True, 32)])]
    with pytest.raises(CxrError, match="4 validation images"):
        fit_scope(model, one)


def test_a_stopped_scope_fit_saves_nothing(tiny_run, tmp_path):
    run_dir, spec, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / SCOPE_NAME).unlink()
    calls = []
    assert fit_run_scope(copy, spec, batch_size=8,
                         should_stop=lambda: calls.append(1) or len(calls) > 1) \
        is None
    assert not (copy / SCOPE_NAME).exists() and len(calls) == 2
    assert isinstance(fit_run_scope(copy, spec), ScopeModel)
    assert (copy / SCOPE_NAME).is_file()
