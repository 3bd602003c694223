"""``cxr-desktop predict``: JSON lines for good and broken files, overlays, exit status."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cxr_desktop.cli import main
from cxr_desktop.core.io import INTENSITY_CHAIN
from cxr_desktop.core.models import build_model
from cxr_desktop.core.runs import save_checkpoint

KEYS = {"path", "probabilities", "top_class", "in_scope", "scope_reason", "cam_peak", "ms",
        "error"}


@pytest.fixture
def run_dir(tmp_path):
    """A chest model's run folder (untrained weights: the CLI, not the model, is tested)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", 1, "none")
    metadata = {"arch": "small_cnn", "task": "binary", "classes": ["normal", "abnormal"],
                "output_names": ["abnormal"], "num_outputs": 1, "input_size": 64,
                "threshold": 0.5, "intensity_chain": INTENSITY_CHAIN, "epoch": 1, "saved": "t",
                "training_scope": {"modalities": {"CR": 9}, "body_parts": {"CHEST": 9},
                                   "views": {}}}
    save_checkpoint(tmp_path / "run" / "best.pt", {"model": model.state_dict(),
                                                   "metadata": metadata})
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    return tmp_path / "run"


@pytest.fixture
def images(tmp_path, testdata):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(testdata("RG1_UNCI.dcm"), folder / "chest.dcm")
    shutil.copy(testdata("RG3_UNCI.dcm"), folder / "sub" / "tibia.dcm")
    (folder / "broken.dcm").write_bytes(b"DICM" * 10)
    return folder


@pytest.mark.filterwarnings("ignore:Expected implicit VR")
def test_predict_reports_every_file_writes_overlays_and_exits_1(run_dir, images, tmp_path,
                                                                capsys):
    out = tmp_path / "overlays"
    code = main(["predict", str(run_dir), str(images), "--json", "--cam", "gradcam",
                 "--cam-out", str(out), "--device", "cpu"])
    assert code == 1
    records = {r["path"].rsplit("/", 1)[-1]: r
               for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(records) == {"chest.dcm", "tibia.dcm", "broken.dcm"}
    assert all(set(r) >= KEYS for r in records.values())
    broken = records["broken.dcm"]
    assert broken["error"] and "broken.dcm" in broken["error"] and broken["probabilities"] is None
    chest, tibia = records["chest.dcm"], records["tibia.dcm"]
    for record, (rows, columns) in ((chest, (1955, 1841)), (tibia, (1760, 1760))):
        assert record["error"] is None and record["ms"] > 0
        assert sum(record["probabilities"].values()) == pytest.approx(1.0)
        x, y = record["cam_peak"]
        assert 0 <= x < columns and 0 <= y < rows
        overlay = np.asarray(Image.open(record["overlay"]))
        assert overlay.shape == (rows, columns, 3)
    assert chest["in_scope"] and not tibia["in_scope"] and "EXTREMITY" in tibia["scope_reason"]
    assert sorted(p.name for p in out.iterdir()) == ["chest_gradcam.png", "tibia_gradcam.png"]


def test_predict_without_cam_on_a_bare_weights_file(run_dir, images, capsys):
    weights = run_dir.parent / "weights.pth"
    assert main(["predict", str(weights), str(images / "chest.dcm")]) == 1
    assert "--arch" in capsys.readouterr().err
    code = main(["predict", str(weights), str(images / "chest.dcm"), "--arch", "small_cnn",
                 "--classes", "normal,abnormal", "--size", "64", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    record = json.loads(captured.out)
    assert record["cam_peak"] is None and record["error"] is None
    assert set(record["probabilities"]) == {"normal", "abnormal"}
    assert "intensity chain" in captured.err  # a bare file cannot say how it was trained


def test_a_folder_that_cannot_be_listed_is_reported_and_exits_1(run_dir, images, monkeypatch,
                                                                capsys):
    locked, real_scandir = images / "sub", os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code = main(["predict", str(run_dir), str(images / "chest.dcm"), str(locked), "--json",
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1  # chest.dcm went well: the folder alone makes it 1
    record = json.loads(captured.out)
    assert record["path"] == str(images / "chest.dcm") and record["error"] is None
    assert f"cxr-desktop: {locked}: cannot list the folder (Permission denied), so its " \
        "images are left out" in captured.err.splitlines()


@pytest.mark.parametrize(("option", "value", "reason"), [
    ("--colormap", "bogus", "unknown matplotlib colour map 'bogus'"),
    ("--opacity", "5", "must be between 0 and 1, not 5"),
    ("--opacity", "-0.1", "must be between 0 and 1, not -0.1"),
])
def test_bad_overlay_options_are_refused_when_parsing(tmp_path, capsys, option, value,
                                                      reason):
    # The model does not exist: the option is refused before it would be loaded.
    with pytest.raises(SystemExit) as caught:
        main(["predict", str(tmp_path / "no-model"), str(tmp_path / "x.png"), option, value])
    assert caught.value.code == 2
    assert f"argument {option}: {reason}" in capsys.readouterr().err


def test_another_colormap_is_used(run_dir, images, tmp_path, capsys):
    out = tmp_path / "overlays"
    assert main(["predict", str(run_dir), str(images / "chest.dcm"), "--cam", "cam",
                 "--cam-out", str(out), "--colormap", "viridis", "--opacity", "1",
                 "--device", "cpu"]) == 0
    assert [p.name for p in out.iterdir()] == ["chest_cam.png"]


@pytest.mark.parametrize("target", ["afile", "afile/x"])
def test_an_overlay_folder_that_cannot_be_made_is_one_line(run_dir, images, tmp_path, capsys,
                                                           target):
    (tmp_path / "afile").write_text("mine\n")
    code = main(["predict", str(run_dir), str(images / "chest.dcm"), "--cam-out",
                 str(tmp_path / target)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"cxr-desktop: {tmp_path / target}: cannot create the overlay folder")
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_a_file_named_and_inside_a_folder_named_is_predicted_once(run_dir, images, capsys):
    (images / "broken.dcm").unlink()
    code = main(["predict", str(run_dir), str(images / "chest.dcm"), str(images),
                 str(images / "sub" / ".." / "chest.dcm"), "--json", "--device", "cpu"])
    paths = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert paths == [str(images / "chest.dcm"), str(images / "sub" / "tibia.dcm")]
