"""Checks on a small dataset with every kind of planted problem, and on real DICOMs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from dataset_helpers import smooth_pixels, write_image

from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.data import ImageItem, check_dataset, open_dataset, run_checks
from cxr_desktop.core.data.imagescan import near_duplicate_pairs, perceptual_hash


@pytest.fixture()
def planted(tmp_path):
    """A folders dataset with duplicates, bad files and a patient in two splits."""
    root = tmp_path / "ds"
    for i in range(8):
        write_image(root / "train" / ("ill" if i % 2 else "normal") / f"pat{i}_a.png", 10 + i)
        write_image(root / "val" / ("ill" if i % 2 else "normal") / f"pat{20 + i}_a.png", 30 + i)
        write_image(root / "test" / ("ill" if i % 2 else "normal") / f"pat{40 + i}_a.png", 50 + i)
    shutil.copy(root / "train/normal/pat0_a.png", root / "test/normal/pat90_copy.png")
    write_image(root / "train/ill/pat60_b.jpg", 70, quality=95)
    write_image(root / "val/ill/pat61_b.jpg", 70, quality=60)
    brighter = np.clip(smooth_pixels(71).astype(int) + 12, 0, 255).astype(np.uint8)
    write_image(root / "train/normal/pat62_c.png", 71)
    write_image(root / "test/normal/pat63_c.png", pixels=brighter)
    (root / "train/normal/pat64_empty.png").write_bytes(b"")
    whole = (root / "train/normal/pat2_a.png").read_bytes()
    (root / "train/ill/pat65_cut.png").write_bytes(whole[: len(whole) // 2])
    write_image(root / "test/ill/pat1_again.png", 80)  # patient pat1 also in train
    write_image(root / "train/ill/pat66_gone.png", 81)
    spec = open_dataset(root, patient_regex=r"^(pat\d+)_")
    (root / "train/ill/pat66_gone.png").unlink()
    spec.items.append(ImageItem("../escape.png", "train", None, "ill"))
    box = next(it for it in spec.items if it.path == "train/ill/pat3_a.png")
    box.shapes = [Shape("object", "rectangle", ((10, 10), (150, 40))),
                  Shape("object", "rectangle", ((1, 1), (20, 20)))]
    return spec


def _by_kind(problems):
    out = {}
    for problem in problems:
        out.setdefault(problem.kind, []).append(problem)
    return out


def test_planted_problems_are_all_found(planted):
    report = check_dataset(planted, workers=4)
    kinds = _by_kind(report.problems)
    [dup] = kinds["duplicate"]
    assert sorted(dup.paths) == ["test/normal/pat90_copy.png", "train/normal/pat0_a.png"]
    assert "across splits train, test" in dup.detail
    near = {tuple(sorted(p.paths)): p.detail for p in kinds["near_duplicate"]}
    assert set(near) == {("train/ill/pat60_b.jpg", "val/ill/pat61_b.jpg"),
                         ("test/normal/pat63_c.png", "train/normal/pat62_c.png")}
    assert all("across splits" in detail for detail in near.values())
    unreadable = {p.paths[0]: p.detail for p in kinds["unreadable"]}
    assert set(unreadable) == {"train/normal/pat64_empty.png", "train/ill/pat65_cut.png"}
    assert unreadable["train/normal/pat64_empty.png"] == "empty file"
    assert [p.paths for p in kinds["missing"]] == [["train/ill/pat66_gone.png"]]
    assert [p.paths for p in kinds["outside_root"]] == [["../escape.png"]]
    [overlap] = kinds["patient_overlap"]
    assert overlap.detail == "patient pat1 has images in train and test"
    [outside] = kinds["annotation_outside"]
    assert outside.paths == ["train/ill/pat3_a.png"] and "112 x 96 image" in outside.detail
    assert report.stats["width"] == {"min": 112.0, "median": 112.0, "max": 112.0}
    assert report.stats["aspect_ratio"]["median"] == pytest.approx(112 / 96, abs=1e-3)
    assert report.stats["bits_stored"] == {"8": report.checked - 3}
    assert report.stats["unreadable"] == 2 and report.stats["missing"] == 1
    assert report.checked == report.total == len(planted.items) - 1
    assert not report.stopped
    assert [p.kind for p in run_checks(planted, workers=1)] == [p.kind for p in report.problems]


def test_progress_is_throttled_and_stop_ends_early(planted):
    calls = []
    check_dataset(planted, progress=lambda done, total: calls.append((done, total)), workers=2)
    total = len(planted.items) - 1
    assert calls[-1] == (total, total)
    assert len(calls) < total  # ~20 a second, not one per image
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 3

    report = check_dataset(planted, should_stop=stop, workers=2)
    assert report.stopped and report.checked < report.total


def test_imbalance_is_reported_per_split(tmp_path):
    for i in range(12):
        write_image(tmp_path / "train" / "normal" / f"n{i}.png", i)
    write_image(tmp_path / "train" / "ill" / "i0.png", 100)
    for i in range(2):
        write_image(tmp_path / "test" / "normal" / f"t{i}.png", 200 + i)
    spec = open_dataset(tmp_path, val_fraction=0.0)
    details = [p.detail for p in run_checks(spec) if p.kind == "imbalance"]
    assert any(d.startswith("train: normal 12, ill 1") and "12.0x" in d for d in details)
    assert "test: no images of ill" in details


def test_dicom_body_part_out_of_scope(tmp_path, testdata):
    folder = tmp_path / "normal"
    folder.mkdir()
    shutil.copy(testdata("RG1_UNCI.dcm"), folder / "chest1.dcm")
    shutil.copy(testdata("RG1_UNCI.dcm"), folder / "chest2")  # DICOM without a suffix
    shutil.copy(testdata("RG3_UNCI.dcm"), folder / "leg.dcm")
    write_image(tmp_path / "ill" / "x.png", 1)
    spec = open_dataset(tmp_path, test_fraction=0, val_fraction=0)
    report = check_dataset(spec)
    [scope] = [p for p in report.problems if p.kind == "scope"]
    assert scope.paths == ["normal/leg.dcm"]
    assert scope.detail == "body part EXTREMITY where the rest is CHEST"
    assert report.stats["bits_stored"]["15"] == 2
    assert report.stats["body_part"]["CHEST"] == 2


def test_hash_distances():
    base = smooth_pixels(5, (32, 32))
    same = perceptual_hash(base)
    other = perceptual_hash(smooth_pixels(6, (32, 32)))
    brighter = perceptual_hash(np.clip(base.astype(int) + 10, 0, 255).astype(np.uint8))
    assert len(same) * 8 == 256
    assert near_duplicate_pairs([same, other, brighter]) == [(0, 2)]
