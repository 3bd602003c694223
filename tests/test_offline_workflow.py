"""The offline guarantee: the whole workflow runs with every network access refused.

Sockets are blocked before the workflow starts: ``socket.socket.connect``/``connect_ex``,
``socket.create_connection`` and ``socket.getaddrinfo`` raise and record the attempt, and
the test fails on any recorded attempt, even one the code caught and ignored. Modules
imported earlier in the session could only bypass the guard at import time, so a fresh
interpreter with the guard installed before any import also builds EfficientNet-Lite0 with
``pretrained="auto"`` (the pretrained weights lookup).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent


class NetworkAccessAttempted(AssertionError):
    """Raised by the blocked socket functions."""


def block_network(setattr_: Callable[[object, str, object], None]) -> list[str]:
    """Replace the socket entry points with guards; return the list of recorded attempts."""
    attempts: list[str] = []

    def guard(name: str) -> Callable[..., object]:
        def refuse(*args: object, **kwargs: object) -> object:
            attempts.append(f"{name}{args!r}")
            raise NetworkAccessAttempted(f"network access attempted: {name}{args!r}")

        return refuse

    setattr_(socket.socket, "connect", guard("socket.connect"))
    setattr_(socket.socket, "connect_ex", guard("socket.connect_ex"))
    setattr_(socket, "create_connection", guard("socket.create_connection"))
    setattr_(socket, "getaddrinfo", guard("socket.getaddrinfo"))
    return attempts


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts = block_network(monkeypatch.setattr)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


def test_the_guard_records_and_refuses_a_connection(no_network: list[str]) -> None:
    with pytest.raises(NetworkAccessAttempted):
        socket.create_connection(("example.org", 443), timeout=1)
    with socket.socket() as sock, pytest.raises(NetworkAccessAttempted):
        sock.connect(("127.0.0.1", 9))
    assert len(no_network) == 2
    no_network.clear()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from cxr_desktop.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, f"cxr-desktop {' '.join(argv)} exited {code}: {err.strip()[-500:]}"
    return out


@pytest.mark.slow
def test_the_whole_workflow_runs_with_the_network_blocked(
        no_network: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset, run = tmp_path / "demo", tmp_path / "run"

    _cli(capsys, "demo-data", str(dataset), "--images", "60")
    assert (dataset / "train.csv").is_file() and (dataset / "test").is_dir()

    report = json.loads(_cli(capsys, "inspect", str(dataset), "--json"))
    assert report["format"] == "objectcxr" and report["classes"] == ["no_object", "object"]
    assert report["problem_counts"] == {"unreadable": 1, "duplicate": 1}  # the planted ones

    lines = _cli(capsys, "train", str(dataset), "--arch", "small_cnn", "--size", "64",
                 "--epochs", "1", "--batch-size", "8", "--pretrained", "none",
                 "--out", str(run), "--json").splitlines()
    summary = json.loads(lines[-1])
    assert summary["status"] == "done" and summary["epochs_done"] == 1
    assert (run / "best.pt").is_file()

    image = dataset / "test" / "00050.jpg"
    prediction = json.loads(_cli(capsys, "predict", str(run), str(image), "--cam", "cam",
                                 "--json"))
    assert prediction["error"] is None
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert prediction["cam"] == "cam" and len(prediction["cam_peak"]) == 2

    evaluation = json.loads(_cli(capsys, "evaluate", str(run), str(dataset), "--bootstrap",
                                 "200", "--json"))
    assert evaluation["split"] == "test" and evaluation["n"] == 13
    assert 0.0 <= evaluation["auc"] <= 1.0
    assert not no_network


_FRESH_INTERPRETER = """
import sys
sys.path.insert(0, {tests!r})
from test_offline_workflow import block_network
attempts = block_network(setattr)
from cxr_desktop.core.models import build_model
model = build_model("efficientnet_lite0", 2, pretrained="auto")
assert model.pretrained_source is not None, model.pretrained_note
print("weights:", model.pretrained_source.name)
sys.exit(3 if attempts else 0)
"""


def test_pretrained_weights_are_found_without_network_in_a_fresh_interpreter() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_INTERPRETER.format(tests=str(TESTS_DIR))],
        capture_output=True, text=True, timeout=300, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("weights:")
