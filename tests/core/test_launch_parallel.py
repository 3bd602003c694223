"""``core.train.parallel``: a run's ranks failing reach the caller as one line, a failed run
that never reached a checkpoint is removed as ``fit`` removes it, a killed rank is named."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.runs import load_checkpoint
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.core.train import TrainConfig
from cxr_desktop.core.train.parallel import fit_parallel, launcher_failure, resume_parallel

pytestmark = pytest.mark.slow

TORCHRUN_REPORT = """\
[W1206 00:10:00.000000000 something.cpp:1] a warning
============================================================
cxr_desktop.core.train.parallel_rank FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-06_00:10:00
  host      : box
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
============================================================"""

KILLED_BLOCK = """[1]:
  time      : 2026-12-06_00:10:00
  host      : box
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242"""


def test_launcher_failure_names_the_rank_and_how_it_ended():
    assert launcher_failure(TORCHRUN_REPORT.splitlines(), 1) == \
        "training process 1 was ended by Signal 9 (SIGKILL); the others were ended too"
    exited = TORCHRUN_REPORT.replace("-9 (pid", "3 (pid").replace(
        "Signal 9 (SIGKILL) received by PID 4242", "<N/A>")
    assert launcher_failure(exited.splitlines(), 1).startswith(
        "training process 1 failed (exit status 3)")
    killed_second = TORCHRUN_REPORT.replace(
        """rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242""", """rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 4241)
  error_file: <N/A>
  traceback : To enable traceback see the docs""").replace("<NO_OTHER_FAILURES>", KILLED_BLOCK)
    assert "Signal 9" in killed_second.split("Root Cause")[0]
    peer = {0: "training process 0: RuntimeError: peer gone"}
    assert launcher_failure(killed_second.splitlines(), 1, peer).startswith(
        "training process 1 was ended by Signal 9 (SIGKILL)")  # the kill, not its echo
    said = {0: "training process 0: RuntimeError: peer gone", 1: "data.json: unreadable"}
    assert launcher_failure(exited.splitlines(), 1, said) == "data.json: unreadable"
    assert launcher_failure(TORCHRUN_REPORT.splitlines(), 1, said).startswith(
        "training process 1 was ended by Signal 9")
    assert launcher_failure(["torchrun: cannot start"], 2) == \
        "a training process failed (exit status 2): torchrun: cannot start; the others " \
        "were ended too"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, n_images=40, size=96, seed=3)
    return open_dataset(root)


def _config(spec, out: Path, epochs: int) -> TrainConfig:
    return TrainConfig(dataset=str(spec.root), arch="small_cnn", size=64, epochs=epochs,
                       batch_size=8, lr=1e-3, freeze_epochs=0, pretrained="none",
                       out=str(out), log_every_n_batches=2)


def test_a_failing_rank_fails_the_run_with_its_message(tmp_path, demo, monkeypatch):
    monkeypatch.setenv("CXR_DESKTOP_DIST_TIMEOUT_S", "soon")  # every rank fails to join
    out = tmp_path / "run"
    with pytest.raises(CxrError, match="CXR_DESKTOP_DIST_TIMEOUT_S must be a number"):
        fit_parallel(_config(demo, out, 2), 2, spec=demo)
    assert not out.exists() and RunRegistry().list() == []  # nothing trained: removed


def _rank_pids() -> dict[int, int]:
    """{rank: pid} of the ranks of the launcher this process started."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        if b"RANK" in env and b"LOCAL_WORLD_SIZE" in env and \
                env.get(b"CXR_TEST_OWNER") == str(os.getpid()).encode():
            found[int(env[b"RANK"])] = int(entry.name)
    return found


def test_a_killed_rank_is_named_and_the_run_can_resume(tmp_path, demo, monkeypatch):
    monkeypatch.setenv("CXR_TEST_OWNER", str(os.getpid()))
    out = tmp_path / "run"
    killed: list[int] = []

    def on_event(event: dict) -> None:
        if event["type"] == "epoch" and not killed:
            pid = _rank_pids()[1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with pytest.raises(CxrError) as failed:
        fit_parallel(_config(demo, out, 4), 2, on_event, spec=demo)
    assert killed
    assert "training process 1 was ended by Signal 9 (SIGKILL)" in str(failed.value)
    record = RunRegistry().get(out)
    assert record is not None and record.status == "failed"
    assert (out / "last.pt").is_file()  # kept, to resume
    before = load_checkpoint(out / "last.pt")["epoch"]
    epochs: list[int] = []
    result = resume_parallel(out, 2, lambda e: epochs.append(e["epoch"])
                             if e["type"] == "epoch" else None)
    assert result.status == "done" and result.world_size == 2 and result.epochs_done == 4
    assert epochs == list(range(before + 1, 5))
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert RunRegistry().get(out).status == "done"
