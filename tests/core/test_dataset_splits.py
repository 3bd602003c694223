"""Splits: given ones kept, missing ones drawn, and a patient never in two splits."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from cxr_desktop.core.data import DatasetSpec, ImageItem, assign_splits


def _spec(items, task="binary", classes=("normal", "ill")):
    return DatasetSpec("/data", task, list(classes), "ill" if task == "binary" else None, items)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 15) | st.none(), st.booleans(),
                               st.sampled_from(["", "", "", "train", "test"])),
                     min_size=1, max_size=80),
       seed=st.integers(0, 2**16))
def test_no_patient_in_two_splits(rows, seed):
    items = [ImageItem(f"{i}.png", split, None if p is None else f"p{p}",
                       "ill" if ill else "normal") for i, (p, ill, split) in enumerate(rows)]
    given_patients: dict[str, set[str]] = {}
    for item in items:
        if item.split and item.patient:
            given_patients.setdefault(item.patient, set()).add(item.split)
    given_splits = [item.split for item in items]
    assign_splits(_spec(items), seed=seed)
    assert all(item.split in ("train", "val", "test") for item in items)
    by_patient: dict[str, set[str]] = {}
    for item in items:
        if item.patient is not None:
            by_patient.setdefault(item.patient, set()).add(item.split)
    for patient, splits in by_patient.items():
        # only a patient the data itself put in two splits may be in two
        assert len(splits) == 1 or len(given_patients.get(patient, ())) > 1
    for before, item in zip(given_splits, items, strict=True):
        if before == "test":
            assert item.split == "test"  # a given test split is never changed


def test_fractions_and_stratification():
    items = [ImageItem(f"{i}.png", "", None, "ill" if i % 5 == 0 else "normal")
             for i in range(1000)]
    report = assign_splits(_spec(items), val_fraction=0.2, test_fraction=0.1, seed=0)
    counts = Counter(item.split for item in items)
    assert counts == {"train": 700, "val": 200, "test": 100}
    ill = Counter(item.split for item in items if item.labels == "ill")
    assert ill == {"train": 140, "val": 40, "test": 20}
    assert report["given"] == [] and report["made"]


def test_given_splits_are_kept_and_missing_val_drawn_from_train():
    items = [ImageItem(f"{i}.png", "test" if i < 20 else "train", f"p{i // 2}",
                       "ill" if i % 3 else "normal") for i in range(200)]
    report = assign_splits(_spec(items), val_fraction=0.1, test_fraction=0.1, seed=4)
    counts = Counter(item.split for item in items)
    assert counts["test"] == 20 and 16 <= counts["val"] <= 24
    assert report["given"] == ["train", "test"]
    assert any(line.startswith("the data has no val split: ") for line in report["made"])


def test_multilabel_rare_finding_reaches_every_split():
    items = []
    for i in range(300):
        labels = {"Hernia": 1.0} if i % 30 == 0 else {"Effusion": 1.0} if i % 2 else {}
        items.append(ImageItem(f"{i}.png", "", f"p{i}", labels))
    assign_splits(_spec(items, "multilabel", ["Effusion", "Hernia"]), seed=1)
    hernia = Counter(item.split for item in items if "Hernia" in item.labels)
    assert set(hernia) == {"train", "val", "test"}
