"""Localization: where the maps point, against the annotations (issue #13's core)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from blobs import blob_image
from PIL import Image

from cxr_desktop.cli import main
from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.evaluate.localization import (
    bounds_hit,
    energy_in,
    froc,
    local_maxima,
    shapes_mask,
)
from cxr_desktop.core.evaluate.localize import Localization, localize
from cxr_desktop.core.infer.batch_cam import _library_maps, batch_maps
from cxr_desktop.core.runs.load import load_run
from cxr_desktop.core.train import TrainConfig, fit

BOX = Shape("blob", "rectangle", ((10.0, 20.0), (30.0, 40.0)))


def test_pointing_and_energy_on_shapes_as_drawn():
    assert bounds_hit(10, 20, [BOX]) and bounds_hit(30, 40, [BOX])
    assert not bounds_hit(31, 20, [BOX])
    # The pointing game's tolerance: 15 pixels from the box still points at it, 16 does not.
    assert bounds_hit(45, 40, [BOX], tolerance=15) and not bounds_hit(46, 40, [BOX], 15)
    assert bounds_hit(39, 49, [BOX], tolerance=15) and not bounds_hit(41, 52, [BOX], 15)
    triangle = Shape("blob", "polygon", ((0.0, 0.0), (40.0, 0.0), (0.0, 40.0)))
    mask = shapes_mask([BOX, triangle], (50, 50), (1.0, 1.0))
    assert mask[25, 15] == 1 and mask[5, 5] == 1 and mask[45, 45] == 0
    half = shapes_mask([BOX], (25, 25), (0.5, 0.5))  # the map at half the image's size
    assert half[10:20, 5:15].all() and half.sum() == 100
    cam = np.zeros((50, 50), np.float32)
    cam[25, 15], cam[0, 49] = 3.0, 1.0
    assert energy_in(cam, shapes_mask([BOX], (50, 50), (1.0, 1.0))) == pytest.approx(0.75)
    ellipse = shapes_mask([Shape("o", "ellipse", ((0.0, 0.0), (20.0, 10.0)))], (20, 30),
                          (1.0, 1.0))
    assert ellipse[5, 10] == 1 and ellipse[0, 0] == 0


def test_local_maxima_strongest_first_and_apart():
    cam = np.zeros((64, 64), np.float32)
    cam[10, 10], cam[11, 11], cam[40, 50], cam[60, 5] = 1.0, 0.9, 0.6, 0.1
    assert local_maxima(cam) == [(10, 10, 1.0), (50, 40, pytest.approx(0.6))]
    assert local_maxima(np.zeros((8, 8), np.float32)) == []


def test_froc_counts_each_object_once_and_negatives_as_false_positives():
    a = Shape("x", "rectangle", ((0.0, 0.0), (10.0, 10.0)))
    b = Shape("x", "rectangle", ((50.0, 50.0), (60.0, 60.0)))
    images = [
        ([(5, 5, 0.9), (6, 6, 0.8), (80, 80, 0.7)], [a, b]),   # a found twice, then a FP
        ([(55, 55, 0.95)], [b]),                                # found
        ([(1, 1, 0.85), (2, 90, 0.1)], []),                      # a negative: two FPs
    ]
    curve = froc(images)
    # by confidence: 0.95 hit, 0.9 hit, 0.85 FP, 0.8 (again, ignored), 0.7 FP, 0.1 FP
    assert curve.sensitivity == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert curve.fp_per_image == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1])
    assert curve.at_rates == pytest.approx([2 / 3] * 7)
    assert curve.score == pytest.approx(2 / 3)


def test_shortcut_warning_when_auc_is_good_and_maps_miss():
    from cxr_desktop.core.evaluate.localization import FrocCurve, ImageScore

    scores = [ImageScore(f"{i}.png", "blob", 0.9, 1.0, 1.0, i == 0, 0.1) for i in range(4)]
    loc = Localization("run", "test", "gradcam", "block4", scores, FrocCurve([0], [0]), 0)
    assert "may use shortcuts" in loc.shortcut_warning(0.95)
    assert "only 1 of 4 images" in loc.shortcut_warning(0.95)
    assert loc.shortcut_warning(0.6) is None


def _annotated_blobs(root: Path, seed: int = 5) -> DatasetSpec:
    """Blob images whose positives carry a box around the blob (the annotation)."""
    rng = np.random.default_rng(seed)
    items = []
    for split, count in (("train", 40), ("val", 12), ("test", 24)):
        for index in range(count):
            positive = index % 2 == 1
            state = rng.bit_generator.state
            pixels = blob_image(rng, positive)
            shapes = []
            if positive:  # find the blob again: the same draws as blob_image
                rng.bit_generator.state = state
                rng.uniform(0, 6)
                rng.normal(0, 12, (80, 80))
                cy, cx = rng.uniform(20, 60, 2)
                shapes = [Shape("blob", "rectangle", ((cx - 12, cy - 12), (cx + 12, cy + 12)))]
            name = f"{split}/{index:03d}.png"
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / name)
            items.append(ImageItem(name, split, None, "blob" if positive else "clear", shapes))
    return DatasetSpec(root=root, task="binary", classes=["clear", "blob"],
                       positive_class="blob", items=items)


@pytest.fixture(scope="module")
def blob_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("loc")
    spec = _annotated_blobs(base / "ds")
    dataset = spec.save(base / "ds.json")
    config = TrainConfig(dataset=str(dataset), arch="small_cnn", size=64, epochs=4,
                         batch_size=8, lr=3e-3, pretrained="none", seed=0,
                         out=str(base / "run"), cache_dir=str(base / "cache"))
    assert fit(config, spec=spec).status == "done"
    return base / "run", dataset


def test_maps_from_the_forward_pass_equal_the_library_grad_cam(blob_run):
    run_dir, dataset = blob_run
    model = load_run(run_dir).model
    spec = DatasetSpec.load(dataset)
    images = np.stack([np.asarray(Image.open(spec.abspath(it)).resize((64, 64)))
                       for it in spec.items[-6:]])
    fast = batch_maps(model, images, [0] * 6, method="gradcam", layer="block4",
                      task="binary", device=torch.device("cpu"))
    x = torch.from_numpy(images).float().div(255)[:, None]
    library, probs = _library_maps(model, x, [0] * 6, "gradcam", "block4", "binary")
    assert np.abs(fast.maps - library.numpy()).max() < 0.05
    assert np.allclose(fast.probs, probs.numpy(), atol=1e-5)


def test_evaluate_localization_json_equals_what_its_csv_and_annotations_give(blob_run, tmp_path,
                                                                          capsys):
    run_dir, dataset = blob_run
    report = tmp_path / "report"
    code = main(["evaluate", str(run_dir), str(dataset), "--localization", "--layer", "block3",
                 "--report", str(report), "--json", "--bootstrap", "200"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)["localization"]
    assert (result["method"], result["layer"], result["n"]) == ("gradcam", "block3", 12)
    assert result["negatives"] == 12
    low, high = result["pointing_game_ci"]
    assert low <= result["pointing_game"] <= high
    spec = DatasetSpec.load(dataset)
    boxes = {str(spec.abspath(it)): it.shapes for it in spec.items}
    with open(report / "localization.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    recomputed = [bounds_hit(float(r["peak_x"]), float(r["peak_y"]), boxes[r["image"]])
                  for r in rows]
    assert [r["hit"] == "True" for r in rows] == recomputed
    assert np.mean(recomputed) == pytest.approx(result["pointing_game"])
    misses = sorted((report / "misses").glob("*.png"))
    assert len(misses) == recomputed.count(False)
    assert 0 <= result["froc"]["score"] <= 1 and len(result["froc"]["rates"]) == 7


def test_a_learnt_blob_is_pointed_at_more_often_than_chance(blob_run):
    run_dir, dataset = blob_run
    spec = DatasetSpec.load(dataset)
    loc = localize(run_dir, spec, "test", method="gradcam", layer="block3", n_boot=0)
    # a 24 px box covers 9 % of an 80 px image: chance is about 0.09
    assert loc.n == 12 and loc.pointing_game >= 0.5
    assert loc.energy_in_boxes > 0.09
