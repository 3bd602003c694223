"""DatasetSpec: targets under each policy, summaries, and JSON save/load round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data import DatasetSpec, ImageItem, Problem
from cxr_desktop.core.errors import DatasetError


def _multilabel(tmp_path, **policies) -> DatasetSpec:
    items = [
        ImageItem("a.png", "train", "p1", {"Edema": 1.0, "Effusion": -1.0}),
        ImageItem("b.png", "val", "p2", {"Edema": 0.0}),
        ImageItem("c.png", "test", None, {}),
    ]
    return DatasetSpec(tmp_path, "multilabel", ["Edema", "Effusion"], None, items, **policies)


def test_binary_and_multiclass_targets(tmp_path):
    items = [ImageItem("a.png", "train", None, "normal"), ImageItem("b.png", "test", None, "ill")]
    spec = DatasetSpec(tmp_path, "binary", ["normal", "ill"], "ill", items)
    assert spec.targets().dtype == np.float32
    assert spec.targets().tolist() == [0.0, 1.0]
    assert spec.num_outputs == 1
    multi = DatasetSpec(tmp_path, "multiclass", ["a", "b", "c"], None,
                        [ImageItem("x.png", "train", None, "c"),
                         ImageItem("y.png", "train", None, "a")])
    assert multi.targets().dtype == np.int64
    assert multi.targets().tolist() == [2, 0]
    assert multi.num_outputs == 3
    assert spec.abspath(items[1]) == tmp_path / "b.png"
    assert spec.split_indices("test").tolist() == [1]
    assert spec.split_indices("val").dtype == np.int64


@pytest.mark.parametrize(("uncertain", "blank", "expected"), [
    ("mask", "negative", [[1, np.nan], [0, 0], [0, 0]]),
    ("positive", "negative", [[1, 1], [0, 0], [0, 0]]),
    ("negative", "mask", [[1, 0], [0, np.nan], [np.nan, np.nan]]),
])
def test_multilabel_policies(tmp_path, uncertain, blank, expected):
    spec = _multilabel(tmp_path, uncertain_policy=uncertain, blank_policy=blank)
    targets = spec.targets()
    assert targets.dtype == np.float32 and targets.shape == (3, 2)
    np.testing.assert_array_equal(targets, np.array(expected, dtype=np.float32))
    assert spec.num_outputs == 2


def test_summary_counts_per_split(tmp_path):
    summary = _multilabel(tmp_path).summary()
    assert summary["splits"]["train"] == {"images": 1, "per_class": {"Edema": 1, "Effusion": 0}}
    assert summary["splits"]["val"]["per_class"] == {"Edema": 0, "Effusion": 0}
    binary = DatasetSpec(tmp_path, "binary", ["normal", "ill"], "ill",
                         [ImageItem("a", "train", None, "ill"), ImageItem("b", "train", None,
                                                                        "normal"),
                          ImageItem("c", "train", None, "ill")])
    assert binary.summary()["splits"]["train"]["per_class"] == {"normal": 1, "ill": 2}
    assert binary.summary()["splits"]["test"] == {"images": 0, "per_class": {"normal": 0,
                                                                             "ill": 0}}


def test_save_load_round_trip(tmp_path):
    shapes = [Shape("object", "rectangle", ((1, 2), (30.5, 40))),
              Shape("object", "polygon", ((0, 0), (5, 0), (5, 5)))]
    spec = _multilabel(tmp_path, uncertain_policy="positive")
    spec.items[0].shapes = shapes
    spec.items[1].meta = {"view": "PA"}
    spec.problems = [Problem("missing", ["d.png"], "train.csv line 4: not found")]
    spec.source = {"format": "csv", "options": {"seed": 3}}
    spec.filters = ['view == "PA"']
    path = spec.save(tmp_path / "specs" / "ds.json")
    loaded = DatasetSpec.load(path)
    assert loaded == spec
    assert loaded.items[0].shapes == shapes
    np.testing.assert_array_equal(loaded.targets(), spec.targets())
    assert not list(path.parent.glob(".*.tmp"))  # atomic: no temp file left behind


def test_moved_dataset_found_through_relative_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    spec = DatasetSpec(root, "binary", ["a", "b"], "b", [ImageItem("x.png", "train", None, "a")])
    spec.save(root / "spec.json")
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    assert DatasetSpec.load(moved / "spec.json").root == moved.resolve()


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="not-there.json: file not found"):
        DatasetSpec.load(tmp_path / "not-there.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(DatasetError, match="bad.json: not valid JSON"):
        DatasetSpec.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DatasetError, match="not a valid dataset spec"):
        DatasetSpec.load(other)


def test_invalid_specs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="two classes"):
        DatasetSpec(tmp_path, "binary", ["a", "b"], None, [])
    with pytest.raises(ValueError, match="task"):
        DatasetSpec(tmp_path, "regression", ["a"], None, [])
