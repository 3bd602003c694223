"""Out of scope: DICOM tags against the training data, and the feature distance of a run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from blobs import blob_image, make_blob_dataset
from PIL import Image

from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.infer import Predictor, ScopeModel, fit_run_scope, fit_scope
from cxr_desktop.core.infer.scope import SCOPE_NAME, check_scope
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


def test_the_feature_distance_flags_noise_and_passes_images_like_validation(tiny_run):
    run_dir, spec, scope = tiny_run
    assert (run_dir / SCOPE_NAME).is_file()
    assert scope.meta["train_images"] == 32 and scope.meta["val_images"] == 16
    assert scope.threshold == pytest.approx(np.percentile(scope.val_distances, 99))
    predictor = Predictor.load(run_dir, device="cpu")
    assert predictor.scope is not None and not predictor.warnings
    assert (scope.val_distances > scope.threshold).sum() <= 1  # the 99th percentile of 16
    held_out = [predictor.predict(load_image(spec.abspath(item)))
                for item in spec.items if item.split == "test"]
    distances = [p.ood_distance for p in held_out]
    # Unseen images like the validation ones: most pass (16 validation images make a rough
    # percentile, so one or two may sit just above it), all far below noise.
    assert sum(p.in_scope for p in held_out) >= len(held_out) * 0.7, distances
    assert np.median(distances) < scope.threshold
    rng = np.random.default_rng(7)
    noise_dir = run_dir.parent / "noise"
    noise_dir.mkdir()
    for index in range(5):
        Image.fromarray(rng.integers(0, 256, (80, 80), dtype=np.uint8)).save(
            noise_dir / f"{index}.png")
        prediction = predictor.predict(load_image(noise_dir / f"{index}.png"))
        assert not prediction.in_scope and "feature distance" in prediction.scope_reason
        assert prediction.ood_distance > max(scope.threshold, *distances) * 1.5


def test_a_scope_file_of_another_checkpoint_is_ignored(tiny_run, tmp_path):
    run_dir, _, scope = tiny_run
    loaded = ScopeModel.load(run_dir / SCOPE_NAME)
    np.testing.assert_allclose(loaded.mean, scope.mean)
    assert loaded.threshold == scope.threshold
    stale_dir = tmp_path / "stale"
    stale_dir.mkdir()
    (stale_dir / "best.pt").write_bytes((run_dir / "best.pt").read_bytes())
    loaded.meta = json.loads(json.dumps(loaded.meta)) | {"epoch": 99}
    loaded.save(stale_dir / SCOPE_NAME)
    predictor = Predictor.load(stale_dir, device="cpu")
    assert predictor.scope is None and any("another checkpoint" in w for w in predictor.warnings)


def test_fit_scope_needs_images():
    model = build_model("small_cnn", 1, "none")
    one = [np.stack([blob_image(np.random.default_rng(0), True, 32)])]
    with pytest.raises(CxrError, match="2 training"):
        fit_scope(model, one, one)



def test_a_stopped_scope_fit_saves_nothing(tiny_run, tmp_path):
    run_dir, spec, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / SCOPE_NAME).unlink()
    calls = []
    assert fit_run_scope(copy, spec, should_stop=lambda: calls.append(1) or len(calls) > 1) \
        is None
    assert not (copy / SCOPE_NAME).exists() and len(calls) == 2
    assert isinstance(fit_run_scope(copy, spec), ScopeModel)
    assert (copy / SCOPE_NAME).is_file()


@pytest.mark.parametrize(("count", "dims"), [(40, 128), (200, 16)])
def test_the_scope_from_validation_features_is_ledoit_wolf_cross_fitted(count, dims):
    from sklearn.covariance import LedoitWolf

    from cxr_desktop.core.infer.scope import fit_scope_features

    rng = np.random.default_rng(3)
    features = rng.normal(size=(count, dims)) @ rng.normal(size=(dims, dims)) * 0.1 + 2.0
    scope = fit_scope_features(features, folds=4)
    reference = LedoitWolf().fit(features)
    np.testing.assert_allclose(scope.mean, reference.location_)
    np.testing.assert_allclose(scope.precision, np.linalg.inv(reference.covariance_),
                               rtol=1e-6, atol=1e-9 * np.abs(scope.precision).max())
    assert scope.meta["shrinkage"] == pytest.approx(reference.shrinkage_)
    # Each fold's distances come from a model that never saw it.
    fold_of = np.arange(count) % 4
    expected = np.empty(count)
    for fold in range(4):
        held = fold_of == fold
        other = LedoitWolf().fit(features[~held])
        delta = features[held] - other.location_
        expected[held] = np.sqrt(np.einsum("nd,de,ne->n", delta,
                                           np.linalg.inv(other.covariance_), delta))
    np.testing.assert_allclose(scope.val_distances, expected, rtol=1e-6)
    assert scope.threshold == pytest.approx(np.percentile(expected, 99))
    assert scope.meta["val_images"] == count and scope.meta["folds"] == 4
    with pytest.raises(CxrError, match="4 validation images"):
        fit_scope_features(features[:3])
