"""What a new user trips on first (issue #17): splits made without a word, counts that are
not what trains, the images of test/ without a class."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from public_layouts import chest_pixels

from cxr_desktop.cli import main
from cxr_desktop.core.runs.load import load_run


def seed_folders(root: Path, broken: int = 0) -> Path:
    """The seeds' chest-vs-abdomen folders: train/ and val/ by class, two images in test/."""
    seed = 0
    for split, counts in (("train", {"abd": 32, "chst": 33}), ("val", {"abd": 5, "chst": 5})):
        for name, count in counts.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                Image.fromarray(chest_pixels(seed, 48)).save(folder / f"{name}{index}.png")
                seed += 1
    for index in range(broken):
        (root / "train" / "abd" / f"broken{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    (root / "test").mkdir()
    for index in range(2):
        Image.fromarray(chest_pixels(100 + index, 48)).save(root / "test" / f"t{index}.png")
    return root


def inspect(capsys, *args: str) -> dict:
    assert main(["inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_test_split_made_from_train_is_said_and_test_0_keeps_train_whole(tmp_path, capsys):
    root = str(seed_folders(tmp_path / "seed"))
    report = inspect(capsys, root, "--no-checks")
    moved = report["splits"]["test"]["images"]
    assert report["splits"]["train"]["images"] == 65 - moved and moved > 0
    notes = "\n".join(report["notes"])
    assert f"the data has no test split: {moved} of its 65 training images were moved" in notes
    assert "--test 0 keeps train whole" in notes
    assert "test/ holds 2 image(s) without a class" in notes
    assert f"cxr-desktop predict RUN {Path(root).resolve() / 'test'}" in notes
    whole = inspect(capsys, root, "--no-checks", "--test", "0")
    assert whole["splits"]["train"]["images"] == 65
    assert whole["splits"]["test"]["images"] == 0
    assert not any("no test split" in note for note in whole["notes"])
    assert main(["inspect", root, "--no-checks"]) == 0
    assert "note: the data has no test split" in capsys.readouterr().out


@pytest.mark.slow
def test_split_counts_are_the_images_training_uses(tmp_path, capsys):
    root = str(seed_folders(tmp_path / "seed", broken=3))
    report = inspect(capsys, root, "--test", "0")
    assert report["unreadable"] == 3
    assert report["splits"]["train"] == {"images": 65, "unreadable": 3,
                                         "per_class": {"abd": 32, "chst": 33}}
    assert report["images"] == 75
    run = tmp_path / "run"
    assert main(["train", root, "--test", "0", "--arch", "small_cnn", "--size", "32",
                 "--epochs", "1", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    meta = load_run(run).metadata
    assert meta["train_images"] == report["splits"]["train"]["images"]
    assert meta["val_images"] == report["splits"]["val"]["images"]
