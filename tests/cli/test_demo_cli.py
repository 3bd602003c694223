"""``cxr-desktop demo-data``: writes the dataset, refuses a non-empty folder."""

from __future__ import annotations

import subprocess
import sys

from cxr_desktop.cli import main


def test_writes_then_refuses_then_forces(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--images", "20", "--size", "64"]) == 0
    assert "demo dataset in" in capsys.readouterr().out
    assert (out / "train.csv").is_file() and (out / "test").is_dir()
    assert main(["demo-data", str(out), "--images", "20"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["demo-data", str(out), "--images", "20", "--size", "64", "--force"]) == 0


def test_bad_size_is_one_line(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "x"), "--size", "8"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_as_a_subprocess(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cxr_desktop", "demo-data",
                             str(tmp_path / "d"), "--images", "10", "--size", "64"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "README.txt").is_file()
