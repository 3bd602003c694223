"""``cxr-desktop train``, ``resume`` and ``lr-find``: JSON lines, a SIGKILL, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_desktop.cli import main
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.runs import RunFolder, RunRegistry, load_checkpoint, load_run

REPO = Path(__file__).resolve().parents[2]
EPOCH_KEYS = {"epoch", "train_loss", "val_loss", "val_auc", "lr", "epoch_s", "images_per_s"}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DESKTOP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CXR_DESKTOP_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A saved spec of 40 PNGs; positives carry a bright blob."""
    rng = np.random.default_rng(0)
    root = tmp_path / "ds"
    items = []
    for index in range(40):
        positive = index % 2 == 1
        image = rng.normal(90, 15, (72, 72))
        if positive:
            y, x = rng.integers(15, 57, 2)
            image[y - 8:y + 8, x - 8:x + 8] += 140
        name = f"{index:02d}.png"
        root.mkdir(exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / name)
        split = "train" if index < 28 else "val"
        items.append(ImageItem(name, split, f"p{index}", "blob" if positive else "clear"))
    spec = DatasetSpec(root, "binary", ["clear", "blob"], "blob", items)
    return spec.save(tmp_path / "spec.json")


TRAIN = ["--arch", "small_cnn", "--size", "48", "--batch-size", "7", "--lr", "3e-3",
         "--pretrained", "none", "--workers", "2"]


def test_train_json_lines(tmp_path, dataset, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", str(dataset), *TRAIN, "--epochs", "2", "--out", str(run_dir),
                 "--json"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and len(out) == 3
    epochs = [json.loads(line) for line in out[:2]]
    assert all(set(e) >= EPOCH_KEYS for e in epochs) and [e["epoch"] for e in epochs] == [1, 2]
    last = json.loads(out[-1])
    assert last["run_dir"] == str(run_dir.resolve()) and last["best_epoch"] in (1, 2)
    assert last["best_val_auc"] == max(e["val_auc"] for e in epochs) > 0.7
    assert load_run(run_dir).metadata["epoch"] == last["best_epoch"]


def test_train_readable_output_and_resume_of_a_finished_run(tmp_path, dataset, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(dataset), *TRAIN, "--epochs", "1", "--out", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("epoch 1/1  train loss ")
    assert "val AUC" in captured.out and "done: 1/1 epochs" in captured.out
    assert "preparing images 40/40" in captured.err
    assert main(["resume", str(run_dir)]) == 0
    assert "already complete" in capsys.readouterr().err


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run folder" in err


def test_sigkill_mid_run_then_resume_completes(tmp_path, dataset, capsys):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "cxr_desktop", "train", str(dataset), *TRAIN,
               "--epochs", "6", "--out", str(run_dir), "--json"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, env=os.environ.copy()) as process:
        try:
            first = json.loads(process.stdout.readline())
            assert first["epoch"] == 1
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    folder = RunFolder(run_dir)
    done_before = load_checkpoint(folder.last_path)["epoch"]
    assert 1 <= done_before < 6
    assert RunRegistry().get(run_dir).status == "interrupted"  # its process is gone

    assert main(["resume", str(run_dir), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["epoch"] for line in lines[:-1]] == list(
        range(done_before + 1, 7))
    assert [r["epoch"] for r in folder.read_metrics()] == [1, 2, 3, 4, 5, 6]
    for line in folder.metrics_path.read_text().splitlines():
        json.loads(line)
    json.loads(folder.config_path.read_text())
    assert load_checkpoint(folder.last_path)["finished"]
    assert load_checkpoint(folder.best_path)["epoch"] == json.loads(lines[-1])["best_epoch"]
    assert not list(run_dir.glob(".*.tmp"))
    assert RunRegistry().get(run_dir).status == "done"


def test_ctrl_c_stops_with_a_checkpoint(tmp_path, dataset, capsys, monkeypatch):
    from cxr_desktop.cli import train as train_cli

    real_printer = train_cli.Printer

    class InterruptingPrinter(real_printer):
        def __call__(self, event):
            super().__call__(event)
            if event["type"] == "epoch" and event["epoch"] == 1:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(train_cli, "Printer", InterruptingPrinter)
    run_dir = tmp_path / "run"
    code = main(["train", str(dataset), *TRAIN, "--epochs", "3", "--out", str(run_dir)])
    assert code == 130
    assert "cxr-desktop resume" in capsys.readouterr().err
    checkpoint = load_checkpoint(run_dir / "last.pt")
    assert checkpoint["epoch"] == 1 and not checkpoint["finished"]
    assert RunRegistry().get(run_dir).status == "stopped"


def test_lr_find(tmp_path, dataset, capsys):
    assert main(["lr-find", str(dataset), *TRAIN, "--num-iter", "20"]) == 0
    assert capsys.readouterr().out.startswith("suggested learning rate ")
    assert main(["lr-find", str(dataset), *TRAIN, "--num-iter", "20", "--json"]) == 0
    curve = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert len(curve["lrs"]) == len(curve["losses"]) > 5
    assert curve["suggested_lr"] > 0


def one_line_error(capsys, *argv: str) -> str:
    """Run the command, expect exit status 1 and one line on stderr; return it."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cxr-desktop: "), err
    return err


def test_run_folders_that_cannot_be_made_are_one_line_errors(tmp_path, dataset, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    train = ["train", str(dataset), *TRAIN, "--epochs", "1", "--out"]
    assert "afile: cannot create the run folder: a file of that name exists" in \
        one_line_error(capsys, *train, str(afile))
    assert "afile/sub: cannot create the run folder (Not a directory)" in \
        one_line_error(capsys, *train, str(afile / "sub"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "photo.png").write_bytes(b"x")
    assert f"{mine}: not empty and not a run folder: choose an empty or new folder" in \
        one_line_error(capsys, *train, str(mine))
    assert [p.name for p in mine.iterdir()] == ["photo.png"]
    assert afile.read_text() == "mine\n"


def test_a_failed_start_leaves_no_folder_and_a_retry_works(tmp_path, dataset, capsys):
    run_dir = tmp_path / "run"
    text = tmp_path / "afile"
    text.write_text("just some text\n")
    base = ["train", str(dataset), "--size", "48", "--batch-size", "7", "--workers", "2",
            "--epochs", "1", "--out", str(run_dir)]
    for pretrained in (str(tmp_path / "nope.pt"), str(text)):
        err = one_line_error(capsys, *base, "--arch", "resnet18", "--pretrained", pretrained)
        assert pretrained in err and not run_dir.exists()
    assert main([*base, "--arch", "small_cnn", "--pretrained", "none"]) == 0
    assert (run_dir / "best.pt").is_file()


@pytest.mark.parametrize(("options", "reason"), [
    (["--start-lr", "-1"], "the start LR must be a positive number"),
    (["--num-iter", "0"], "the sweep needs 10 steps at least"),
    (["--start-lr", "1", "--end-lr", "0.001"], "the end LR (0.001) must be above the start"),
])
def test_lr_find_settings_are_one_line_errors(dataset, capsys, options, reason):
    assert reason in one_line_error(capsys, "lr-find", str(dataset), *TRAIN, *options)


def test_lr_find_suggests_inside_the_swept_range(dataset, capsys):
    assert main(["lr-find", str(dataset), *TRAIN, "--start-lr", "1e-4", "--end-lr", "1e-2",
                 "--num-iter", "10", "--json"]) == 0
    curve = json.loads(capsys.readouterr().out.splitlines()[-1])
    for key in ("suggested_lr", "steepest_lr", "valley_lr"):
        assert 1e-4 <= curve[key] <= 1e-2 * (1 + 1e-9), key


def test_the_cache_line_and_the_weights_note_are_printed_once(tmp_path, dataset):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"),
           "CXR_DESKTOP_CACHE": str(tmp_path / "fresh-cache")}
    command = [sys.executable, "-m", "cxr_desktop", "train", str(dataset), "--arch",
               "resnet18", "--size", "32", "--batch-size", "14", "--epochs", "1",
               "--workers", "2", "--out", str(tmp_path / "run")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.replace("\r", "\n").splitlines()
    assert lines.count("preparing images 40/40") == 1, done.stderr
    assert sum(line.startswith("no ImageNet weights for resnet18") for line in lines) == 1
