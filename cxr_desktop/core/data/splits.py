"""Train/val/test splits: keep what the data gives, make the rest, never split a patient.

Splits are drawn over groups (a patient's images, or one image when no patient is known)
with scikit-learn's ``train_test_split`` stratified by each group's key: its class, or for
a multilabel task its rarest positive finding, so rare findings reach every split.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from cxr_desktop.core.data.spec import DatasetSpec, split_order

_RARE = "\0rare"


def stratify_keys(spec: DatasetSpec) -> list[str]:
    """One key per item: the class, or (multilabel) the rarest positive finding, or ``""``."""
    if spec.task != "multilabel":
        return [str(item.labels) for item in spec.items]
    counts = Counter(n for item in spec.items for n, v in item.labels.items() if v == 1.0)
    keys = []
    for item in spec.items:
        positives = [n for n, v in item.labels.items() if v == 1.0]
        keys.append(min(positives, key=lambda n: (counts[n], n)) if positives else "")
    return keys


def patient_groups(spec: DatasetSpec) -> list[str]:
    """The group of each item: ``p:<patient>`` when known, else the item alone."""
    return [f"p:{item.patient}" if item.patient is not None else f"i:{i}"
            for i, item in enumerate(spec.items)]


def take_groups(indices: np.ndarray, keys: list[str], groups: list[str], fraction: float,
                seed: int) -> np.ndarray:
    """The items of about ``fraction`` of the groups among ``indices``, stratified by key.

    Each group's key is the rarest key among its items; keys held by a single group are
    pooled. Falls back to an unstratified draw when stratifying is impossible.
    """
    indices = np.asarray(indices, dtype=np.int64)
    unique = sorted({groups[i] for i in indices})
    if fraction <= 0 or len(unique) < 2:
        return np.empty(0, dtype=np.int64)
    key_count = Counter(keys[i] for i in indices)
    group_key: dict[str, str] = {}
    for i in indices:
        group, key = groups[i], keys[i]
        current = group_key.get(group)
        if current is None or (key_count[key], key) < (key_count[current], current):
            group_key[group] = key
    strata = [group_key[g] for g in unique]
    per_key = Counter(strata)
    strata = [k if per_key[k] >= 2 else _RARE for k in strata]
    n_take = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    try:
        _, taken = train_test_split(unique, test_size=n_take, stratify=strata,
                                    random_state=seed)
    except ValueError:  # too few groups per key for this many draws
        _, taken = train_test_split(unique, test_size=n_take, random_state=seed)
    chosen = set(taken)
    return np.array([i for i in indices if groups[i] in chosen], dtype=np.int64)


def assign_splits(spec: DatasetSpec, *, val_fraction: float = 0.1, test_fraction: float = 0.1,
                  seed: int = 0) -> dict[str, Any]:
    """Give every item of ``spec`` a split, in place; returns what was given and what made.

    Items without a split join their patient's split when another image of that patient
    has one; the rest are drawn into train/val/test by the fractions. Then a split the data
    does not have (NIH gives train and test, Object-CXR train and dev) is drawn from train.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1
            and val_fraction + test_fraction < 1):
        raise ValueError("val and test fractions must be in [0, 1) and sum to less than 1")
    items = spec.items
    keys, groups = stratify_keys(spec), patient_groups(spec)
    given = sorted({item.split for item in items if item.split}, key=split_order)
    made: list[str] = []
    patient_split: dict[str, str] = {}
    for item in items:
        if item.split and item.patient is not None:
            patient_split.setdefault(item.patient, item.split)
    for item in items:
        if not item.split and item.patient in patient_split:
            item.split = patient_split[item.patient]
    how = "by patient, stratified by class" if any(item.patient for item in items) \
        else "stratified by class"
    pool = np.array([i for i, item in enumerate(items) if not item.split], dtype=np.int64)
    if len(pool):
        test = take_groups(pool, keys, groups, test_fraction, seed)
        rest = np.setdiff1d(pool, test)
        val = take_groups(rest, keys, groups, val_fraction / (1 - test_fraction), seed)
        for i in pool:
            items[i].split = "train"
        for split, chosen in (("test", test), ("val", val)):
            for i in chosen:
                items[i].split = split
        what = f"the {len(pool)} images have no split" if len(pool) == len(items) \
            else f"{len(pool)} images have no split"
        made.append(f"{what}: drawn into train {len(pool) - len(test) - len(val)}, val "
                    f"{len(val)}, test {len(test)} ({how}, seed {seed})")
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        train = np.array([i for i, item in enumerate(items) if item.split == "train"],
                         dtype=np.int64)
        if fraction > 0 and len(train) and not any(item.split == split for item in items):
            share = min(0.5, fraction * len(items) / len(train))
            chosen = take_groups(train, keys, groups, share, seed)
            for i in chosen:
                items[i].split = split
            keep = f"; --{split} 0 keeps train whole" if split == "test" else ""
            made.append(f"the data has no {split} split: {len(chosen)} of its "
                        f"{len(train)} training images were moved into one ({how}, seed "
                        f"{seed}){keep}")
    return {"given": given, "made": made, "seed": seed,
            "val_fraction": val_fraction, "test_fraction": test_fraction}
