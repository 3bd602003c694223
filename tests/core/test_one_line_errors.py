"""Errors that wrap a library's exception stay one line naming the file (torch's are long)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cxr_desktop.core.errors import (
    MAX_REASON_CHARS,
    FileError,
    ImageLoadError,
    ModelError,
    first_line,
)
from cxr_desktop.core.io import header
from cxr_desktop.core.models import build_model
from cxr_desktop.core.models.state_dicts import read_state_dict
from cxr_desktop.core.runs import load_checkpoint, load_run, save_checkpoint


class Custom:
    """Pickled as a Python object, which ``torch.load(weights_only=True)`` refuses."""


def test_first_line_of_library_messages():
    assert first_line(ValueError("bad value\n  more detail")) == "bad value"
    assert first_line(RuntimeError("\x1b[1mWeights\x1b[0m only\nmore")) == "Weights only"
    torch_text = "Error(s) in loading state_dict for Net:\n\tsize mismatch for a.\n\tmore"
    assert first_line(RuntimeError(torch_text)) == \
        "Error(s) in loading state_dict for Net: size mismatch for a."
    assert first_line(KeyError()) == "KeyError"
    long = first_line(ValueError("x" * 1000))
    assert len(long) == MAX_REASON_CHARS and long.endswith("...")


def test_a_checkpoint_holding_a_python_object_is_a_one_line_error(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"model": Custom()}, path)
    with pytest.raises(FileError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert "\n" not in message and "\x1b" not in message
    assert message.startswith(f"{path}: it holds Python objects (")
    assert "Custom" in message and "weights_only" not in message


@pytest.mark.parametrize("data", [b"(hello", b".", b"G\x00", b"(", b"hello"])
def test_bytes_that_are_not_a_pickle_are_a_one_line_error(tmp_path, data):
    """Unpickling them raises KeyError, IndexError, struct.error or EOFError inside torch."""
    path = tmp_path / "junk.pt"
    path.write_bytes(data)
    with pytest.raises(FileError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not a readable checkpoint (") and "\n" not in message
    with pytest.raises(ModelError, match=r"^[^\n]*junk\.pt: cannot read weights \("):
        read_state_dict(path)


def test_weights_that_do_not_fit_the_run_are_a_one_line_error(tmp_path):
    path = tmp_path / "run" / "best.pt"
    wrong = build_model("small_cnn", 3, pretrained="none").state_dict()
    save_checkpoint(path, {"model": wrong,
                           "metadata": {"arch": "small_cnn", "num_outputs": 2}})
    with pytest.raises(FileError) as raised:
        load_run(path)
    message = str(raised.value)
    assert "\n" not in message and "\t" not in message
    assert message.startswith(f"{path}: weights do not fit small_cnn (Error(s) in loading")
    assert "size mismatch for head." in message


def test_an_unreadable_dicom_header_is_a_one_line_error(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("cannot parse element\nat offset 0x84\n(more)")

    monkeypatch.setattr(header.pydicom, "dcmread", fail)
    path = tmp_path / "broken.dcm"
    with pytest.raises(ImageLoadError) as raised:
        header.dicom_header(path)
    assert str(raised.value) == f"{path}: not a readable DICOM file (cannot parse element)"


class _Trap:
    """A pickle that would create a file when loaded unsafely."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


def test_a_booby_trapped_model_file_runs_nothing_and_says_why_in_one_line(tmp_path, capsys):
    from cxr_desktop.cli import main

    trap = tmp_path / "created-by-the-pickle"
    evil = tmp_path / "model.pt"
    torch.save({"model": _Trap(trap), "metadata": {}}, evil)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(evil.read_bytes())
    (run / "config.json").write_text('{"dataset": "x", "arch": "small_cnn"}')
    for index in range(8):
        folder = tmp_path / "ds" / ("ill" if index % 2 else "well")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32), index * 20, np.uint8)).save(folder / f"{index}.png")
    image = folder / "1.png"
    for argv in (["predict", str(evil), str(image)], ["resume", str(run)],
                 ["train", str(tmp_path / "ds"), "--pretrained", str(evil), "--arch",
                  "resnet18", "--out", str(tmp_path / "new")]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "could run code when loaded, so it was not loaded" in err, err
        assert "state dict" in err and "weights_only" not in err
    assert not trap.exists()
