"""``cxr-desktop inspect``: JSON and text reports; exit 0 with problems, 1 when unreadable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from cxr_desktop.cli import main
from cxr_desktop.core.data import DatasetSpec


def _dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                coarse = Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8))
                coarse.resize((80, 64), Image.Resampling.BICUBIC).save(folder / f"{i}.png")
    shutil.copy(root / "train/NORMAL/0.png", root / "test/NORMAL/copy.png")
    (root / "val/PNEUMONIA/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return root


def test_json_report_exits_0_with_problems(tmp_path, capsys):
    root = _dataset(tmp_path / "ds")
    spec_file = tmp_path / "out" / "spec.json"
    code = main(["inspect", str(root), "--json", "--save-spec", str(spec_file)])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)  # one JSON object, nothing else on stdout
    assert report["task"] == "binary" and report["classes"] == ["NORMAL", "PNEUMONIA"]
    # the checked counts are of the readable images (one PNEUMONIA file is broken)
    assert report["splits"]["val"] == {"images": 6, "unreadable": 1,
                                       "per_class": {"NORMAL": 3, "PNEUMONIA": 3}}
    kinds = {p["kind"]: p for p in report["problems"]}
    assert set(kinds) >= {"duplicate", "unreadable"}
    assert "across splits train, test" in kinds["duplicate"]["detail"]
    assert kinds["unreadable"]["paths"] == ["val/PNEUMONIA/broken.png"]
    assert report["stats"]["width"]["max"] == 80
    reloaded = DatasetSpec.load(spec_file)
    assert len(reloaded.items) == 20
    code = main(["inspect", str(spec_file), "--json", "--no-checks"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["problems"] == []
    # unchecked, the counts are of every listed image, the broken one included
    assert {k: v["images"] for k, v in again["splits"].items()} == \
        {"train": 6, "val": 7, "test": 7}


def test_text_report(tmp_path, capsys):
    root = _dataset(tmp_path / "ds")
    assert main(["inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "task binary, 19 images (+1 unreadable)" in out
    assert "duplicate (1)" in out and "unreadable (1)" in out


def test_unreadable_dataset_exits_1_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "no-such-dataset"
    assert main(["inspect", str(missing), "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"cxr-desktop: {missing}: not found"
    bad = tmp_path / "labels.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["inspect", str(bad)]) == 1
    assert "labels.csv: cannot tell which column holds the image paths" in \
        capsys.readouterr().err


def test_csv_mapping_flags(tmp_path, capsys):
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "meta.csv").write_text(
        "img,score,view\n0.png,0,PA\n1.png,2,PA\n2.png,5,AP\n3.png,0,PA\n")
    code = main(["inspect", str(tmp_path / "meta.csv"), "--json", "--no-checks",
                 "--image-column", "img", "--label-column", "score", "--binarize", "nonzero",
                 "--filter", "view == PA"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["classes"] == ["no_score", "score"] and report["images"] == 3

