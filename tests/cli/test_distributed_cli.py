"""Data-parallel training from the command line: ``train --nproc 2``, ``torchrun -m
cxr_desktop train`` as is, one rank killed mid-epoch, and the exported SLURM job (its
script parsed, then run with stand-ins for ``srun`` and ``scontrol``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_desktop.cli import main
from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.runs import RunFolder, load_checkpoint

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["--arch", "small_cnn", "--size", "48", "--batch-size", "8", "--lr", "3e-3",
         "--pretrained", "none", "--workers", "2"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A saved spec of 120 PNGs (96 train, 24 val); positives carry a bright blob."""
    rng = np.random.default_rng(0)
    base = tmp_path_factory.mktemp("distds")
    root = base / "ds"
    root.mkdir()
    items = []
    for index in range(120):
        positive = index % 2 == 1
        image = rng.normal(90, 15, (64, 64))
        if positive:
            y, x = rng.integers(12, 52, 2)
            image[y - 7:y + 7, x - 7:x + 7] += 120
        name = f"{index:03d}.png"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / name)
        items.append(ImageItem(name, "train" if index < 96 else "val", f"p{index}",
                               "blob" if positive else "clear"))
    spec = DatasetSpec(root, "binary", ["clear", "blob"], "blob", items)
    return spec.save(base / "spec.json")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env or os.environ.copy())


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def epochs_in(run_dir: Path) -> list[int]:
    return [record["epoch"] for record in RunFolder(run_dir).read_metrics()]


def test_nproc_2_and_torchrun_match_one_process(tmp_path, dataset, capsys):
    one, two, rdzv = tmp_path / "one", tmp_path / "two", tmp_path / "torchrun"
    # float32 (no bf16 autocast on CPUs that have it): the scope then comes from the stage
    # statistics each rank recorded for its share of the validation images, gathered.
    common = [str(dataset), *TRAIN, "--epochs", "2", "--json", "--no-amp"]
    single = cli("cxr_desktop", "train", *common, "--out", str(one))
    assert single.returncode == 0, single.stderr
    launched = cli("cxr_desktop", "train", *common, "--out", str(two), "--nproc", "2")
    assert launched.returncode == 0, launched.stderr
    plain = cli("torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                "cxr_desktop", "train", *common, "--out", str(rdzv))
    assert plain.returncode == 0, plain.stderr
    base = lines(single.stdout)
    assert base[-1]["world_size"] == 1
    for run_dir, done in ((two, launched), (rdzv, plain)):
        out = lines(done.stdout)  # rank 0 alone prints: two epochs and one last line
        assert [e["epoch"] for e in out[:-1]] == [1, 2] and len(out) == 3
        assert out[-1]["world_size"] == 2 and out[-1]["status"] == "done"
        assert out[-1]["run_dir"] == str(run_dir.resolve())
        assert epochs_in(run_dir) == [1, 2]
        assert abs(out[-1]["best_val_auc"] - base[-1]["best_val_auc"]) <= 0.05
        assert load_checkpoint(RunFolder(run_dir).last_path)["world_size"] == 2
        assert main(["predict", str(run_dir), str(dataset.parent / "ds" / "001.png"),
                     "--json"]) == 0
        predicted = json.loads(capsys.readouterr().out.splitlines()[0])
        assert predicted["probabilities"]
        assert predicted["scope_image"]["method"].startswith("layers")
    # The two launches are the same training: same split, same schedule, same weights.
    same = ("train_loss", "val_loss", "val_auc", "lr")
    assert [[e[k] for k in same] for e in lines(launched.stdout)[:-1]] == \
        [[e[k] for k in same] for e in lines(plain.stdout)[:-1]]


def _ranks_of(parent: int) -> dict[int, int]:
    """{rank: pid} of the processes whose parent is ``parent`` (torchrun's workers)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
            continue
        env = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        if b"RANK" in env:
            found[int(env[b"RANK"])] = int(entry.name)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_rank_killed_mid_epoch_ends_all_and_resume_continues(tmp_path, dataset):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "cxr_desktop", "train", str(dataset), *TRAIN,
               "--epochs", "40", "--out", str(run_dir), "--json", "--nproc", "2"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=os.environ.copy()) as process:
        try:
            first = json.loads(process.stdout.readline())
            assert first["epoch"] == 1
            ranks = _ranks_of(process.pid)
            assert sorted(ranks) == [0, 1]
            time.sleep(0.1)  # into the next epoch
            os.kill(ranks[1], signal.SIGKILL)
            process.wait(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
        err = process.stderr.read()
    assert process.returncode == 1 and "rank 1 was ended by signal SIGKILL" in err
    deadline = time.monotonic() + 10
    while _alive(ranks[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(ranks[0]) and not _alive(ranks[1])
    done_before = load_checkpoint(RunFolder(run_dir).last_path)["epoch"]
    assert 1 <= done_before < 40
    resumed = cli("cxr_desktop", "resume", str(run_dir), "--json", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    out = lines(resumed.stdout)
    assert out[0]["epoch"] == done_before + 1 and out[-1]["world_size"] == 2
    assert out[-1]["status"] == "done" and out[-1]["epochs_done"] == 40
    assert epochs_in(run_dir) == list(range(1, 41))


def test_ctrl_c_stops_every_rank_with_a_checkpoint(tmp_path, dataset):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "cxr_desktop", "train", str(dataset), *TRAIN,
               "--epochs", "40", "--out", str(run_dir), "--json", "--nproc", "2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert json.loads(process.stdout.readline())["epoch"] == 1
        process.send_signal(signal.SIGINT)  # torchrun passes it on to the ranks
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    last = lines(out)[-1]
    assert last["status"] == "stopped" and last["world_size"] == 2
    checkpoint = load_checkpoint(RunFolder(run_dir).last_path)
    assert checkpoint["epoch"] == last["epochs_done"] < 40
    assert epochs_in(run_dir) == list(range(1, last["epochs_done"] + 1))


def _sbatch_values(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", script, flags=re.M))


def _srun_command(script: str) -> list[str]:
    joined = script.replace("\\\n", " ")
    line = next(row for row in joined.splitlines() if row.startswith("srun "))
    return shlex.split(line)


def test_export_job_writes_a_slurm_script_for_the_nodes_and_gpus(tmp_path, dataset):
    job = tmp_path / "job"
    done = cli("cxr_desktop", "train", str(dataset), *TRAIN, "--epochs", "3",
               "--export-job", str(job), "--nodes", "2", "--gpus-per-node", "4", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    script_path, run_dir = Path(summary["job_script"]), Path(summary["run_dir"])
    assert script_path == job / "train.sbatch" and run_dir == job / "run"
    script = script_path.read_text()
    assert subprocess.run(["bash", "-n", str(script_path)]).returncode == 0
    assert script.startswith("#!/bin/bash\n") and os.access(script_path, os.X_OK)
    sbatch = _sbatch_values(script)
    assert sbatch["nodes"] == "2" and sbatch["gpus-per-node"] == "4"
    assert sbatch["ntasks-per-node"] == "1"
    srun = _srun_command(script)
    assert srun[:2] == ["srun", "torchrun"]
    assert srun[srun.index("--nnodes") + 1] == "$SLURM_NNODES"
    assert srun[srun.index("--nproc_per_node") + 1] == "4"
    assert srun[srun.index("--rdzv-backend") + 1] == "c10d"
    assert srun[srun.index("--rdzv-endpoint") + 1].startswith("$head:")
    assert srun[-4:] == ["cxr_desktop", "resume", str(run_dir), "--json"]
    # The run folder is prepared, not started: its settings and its exact splits.
    folder = RunFolder(run_dir)
    assert folder.read_config().epochs == 3 and not folder.last_path.exists()
    assert DatasetSpec.load(run_dir / "dataset.json").split_indices("val").size == 24
    again = cli("cxr_desktop", "train", str(dataset), *TRAIN, "--export-job", str(job))
    assert again.returncode == 1 and "new or empty" in again.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_exported_job_trains_under_srun(tmp_path, dataset):
    """The script itself, run as SLURM would on one node (``srun`` and ``scontrol`` stand-
    ins, torchrun for real): two CPU ranks train the run folder to its end."""
    job = tmp_path / "job"
    done = cli("cxr_desktop", "train", str(dataset), *TRAIN, "--epochs", "2",
               "--export-job", str(job), "--gpus-per-node", "2")
    assert done.returncode == 0, done.stderr
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "srun").write_text('#!/bin/sh\nexec "$@"\n')
    (shims / "scontrol").write_text("#!/bin/sh\necho localhost\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}:{Path(sys.executable).parent}:{os.environ['PATH']}",
           "SLURM_NNODES": "1", "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node1",
           "CXR_RDZV_PORT": str(_free_port())}
    ran = subprocess.run(["bash", str(job / "train.sbatch")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    last = lines(ran.stdout)[-1]
    assert last["world_size"] == 2 and last["status"] == "done"
    assert epochs_in(job / "run") == [1, 2]
