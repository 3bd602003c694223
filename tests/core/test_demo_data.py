"""The demo dataset: deterministic, Object-CXR shaped, annotated truly, and learnable."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from cxr_desktop.core.annotations.objectcxr import read_objectcxr_csv
from cxr_desktop.core.data.demo import make_demo_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, make_demo_dataset(root, n_images=120, size=128, seed=1)


def _rows(root, split):
    return read_objectcxr_csv(root / f"{split}.csv")


def test_layout_counts_and_planted_problems(demo):
    root, summary = demo
    for split in ("train", "dev", "test"):
        rows = _rows(root, split)
        assert len(rows) == summary.counts[split]
        assert sum(bool(s) for s in rows.values()) == summary.positives[split]
        assert all((root / split / name).is_file() for name in rows)
    assert sum(summary.counts.values()) == 122  # 120 good images + 2 planted
    kinds = {p.kind: p.path for p in summary.planted}
    assert set(kinds) == {"duplicate", "corrupt"}
    duplicate = (root / kinds["duplicate"]).read_bytes()
    assert any(p.read_bytes() == duplicate for p in (root / "train").glob("*.jpg"))
    assert "duplicate" in (root / "README.txt").read_text()


def test_same_seed_same_bytes(tmp_path, demo):
    root, _ = demo
    again = make_demo_dataset(tmp_path, n_images=120, size=128, seed=1)
    for split, count in again.counts.items():
        assert count == demo[1].counts[split]
        for name in _rows(root, split):
            assert (tmp_path / split / name).read_bytes() == (root / split / name).read_bytes()


def test_annotations_lie_inside_and_on_bright_objects(demo):
    root, summary = demo
    corrupt = {p.path for p in summary.planted if p.kind == "corrupt"}
    contrasts = []
    for split in ("train", "dev", "test"):
        for name, shapes in _rows(root, split).items():
            if f"{split}/{name}" in corrupt or not shapes:
                continue
            pixels = np.asarray(Image.open(root / split / name), dtype=float)
            for shape in shapes:
                assert shape.inside(pixels.shape[1], pixels.shape[0])
                x0, y0, x1, y1 = (int(round(v)) for v in shape.bounds())
                inside = pixels[y0:y1 + 1, x0:x1 + 1]
                contrasts.append(inside.max() - np.median(pixels))
    assert np.median(contrasts) > 60


def _features(root, split, corrupt):
    xs, ys = [], []
    for name, shapes in _rows(root, split).items():
        if f"{split}/{name}" in corrupt:
            continue
        image = Image.open(root / split / name).convert("L").resize((32, 32))
        xs.append(np.asarray(image, dtype=float).ravel() / 255)
        ys.append(int(bool(shapes)))
    return np.array(xs), np.array(ys)


def test_a_simple_model_can_learn_it(demo):
    root, summary = demo
    corrupt = {p.path for p in summary.planted if p.kind == "corrupt"}
    x_train, y_train = _features(root, "train", corrupt)
    x_test, y_test = _features(root, "test", corrupt)
    top = np.sort(x_train, axis=1)[:, -20:]  # the brightest pixels: where objects show
    top_test = np.sort(x_test, axis=1)[:, -20:]
    model = LogisticRegression(max_iter=2000).fit(top, y_train)
    assert roc_auc_score(y_test, model.predict_proba(top_test)[:, 1]) > 0.8
