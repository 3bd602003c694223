"""``train`` and ``predict`` on a public layout, and the import options on every command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from public_layouts import chest_pixels, make_siim

from cxr_desktop.cli import main
from cxr_desktop.core.data.spec import DatasetSpec


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.slow
def test_train_and_predict_with_gradcam_on_the_siim_layout(tmp_path, capsys):
    root = make_siim(tmp_path / "siim-acr")
    run = tmp_path / "run"
    code = main(["train", str(root), "--arch", "small_cnn", "--size", "64", "--epochs", "1",
                 "--val", "0.25", "--out", str(run), "--json"])
    assert code == 0
    result = last_json(capsys.readouterr().out)
    assert result["status"] == "done" and result["excluded"] == []
    spec = DatasetSpec.load(run / "dataset.json")
    assert len(spec.items) == 12 and spec.source["mapping"]["preset"] == "siim"
    nested = sorted(root.glob("dicom-images-train/*/*/*.dcm"))
    code = main(["predict", str(run), str(nested[0]), str(nested[1]), "--cam", "gradcam",
                 "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["error"] for line in lines] == [None, None]
    assert all(line["cam"] == "gradcam" and len(line["cam_peak"]) == 2 for line in lines)
    assert set(lines[0]["probabilities"]) == {"no_pneumothorax", "pneumothorax"}


def test_every_dataset_command_takes_the_import_options(tmp_path, capsys):
    """The Kaggle pediatric pneumonia folder, three classes from the file names, given to
    ``train`` and ``evaluate`` directly, without a spec saved first."""
    for split in ("train", "test"):
        for seed, name in enumerate(("IM-0001-0001.jpeg", "person1_bacteria_1.jpeg",
                                     "person2_virus_3.jpeg", "IM-0002-0001.jpeg",
                                     "person3_bacteria_2.jpeg", "person4_virus_7.jpeg")):
            folder = tmp_path / "chest_xray" / split / ("NORMAL" if "IM" in name
                                                        else "PNEUMONIA")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(chest_pixels(seed + 10 * (split == "test"), 64)).save(
                folder / name)
    dataset = str(tmp_path / "chest_xray")
    run = tmp_path / "run"
    code = main(["train", dataset, "--class-from-name", "bacteria,virus", "--arch",
                 "small_cnn", "--size", "32", "--epochs", "1", "--out", str(run), "--json"])
    assert code == 0, capsys.readouterr().err
    spec = DatasetSpec.load(run / "dataset.json")
    assert spec.task == "multiclass" and spec.classes == ["bacteria", "NORMAL", "virus"]
    capsys.readouterr()
    code = main(["evaluate", str(run), dataset, "--class-from-name", "bacteria,virus",
                 "--json", "--bootstrap", "0"])
    assert code == 0, capsys.readouterr().err
    assert main(["evaluate", str(run), dataset, "--positive-if", "x == 1"]) == 1
    assert "--positive-if only apply to a CSV dataset" in capsys.readouterr().err
