"""Starting the ranks of a data-parallel run: N processes on this machine through
``torch.distributed.run`` (what ``torchrun`` is), or a SLURM job that runs torchrun on a
cluster's nodes. Both train a run folder prepared beforehand (``engine.prepare_run``:
``config.json`` and ``dataset.json``, nothing trained yet) with ``cxr_desktop resume``, which
trains a folder without a checkpoint from its first epoch and a stopped, killed or requeued
one from its last checkpoint.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cxr_desktop import __version__
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.data import EventSink
from cxr_desktop.core.train.distributed import cpu_cores

#: The exit status of a stopped run (as the CLI's).
EXIT_STOPPED = 130
RDZV_PORT = 29500
JOB_SCRIPT = "train.sbatch"


def cache_images(run_dir: Path, on_event: EventSink | None = None,
                 should_stop: Callable[[], bool] | None = None) -> bool:
    """Build the image cache of a prepared run before its ranks start, so it is built once
    and not by rank 0 while the others wait; False when stopped."""
    from cxr_desktop.core.data.spec import DatasetSpec
    from cxr_desktop.core.models import get_arch
    from cxr_desktop.core.runs.folder import DATASET_NAME, RunFolder
    from cxr_desktop.core.train.data import prepare_data

    folder = RunFolder(run_dir)
    config = folder.read_config()
    spec = DatasetSpec.load(folder.path / DATASET_NAME)
    size = config.size or get_arch(config.arch).input_size
    data = prepare_data(spec, size, cache_root=config.cache_dir or None,
                        workers=config.workers, on_event=on_event, should_stop=should_stop)
    return data.cache.complete


def check_nproc(config: TrainConfig, nproc: int) -> None:
    """CxrError when ``nproc`` ranks cannot run here: one GPU each when they use CUDA."""
    import torch

    if nproc < 1:
        raise CxrError(f"--nproc must be at least 1, not {nproc}")
    gpus = torch.cuda.device_count() if config.device != "cpu" else 0
    if gpus and nproc > gpus:
        raise CxrError(f"--nproc {nproc} asks for one GPU per process, but PyTorch sees "
                       f"{gpus}: use --nproc {gpus} or less, or --device cpu")


def torchrun_args(nproc: int, command: list[str]) -> list[str]:
    """torchrun's arguments for ``python -m cxr_desktop COMMAND`` as ``nproc`` ranks on this
    machine (its rendezvous on a free local port)."""
    return ["--standalone", "--nproc-per-node", str(nproc), "-m", "cxr_desktop", *command]


def launch_local(nproc: int, command: list[str]) -> int:
    """Run ``cxr_desktop COMMAND`` as ``nproc`` ranks through ``torch.distributed.run`` and
    wait; the exit status: 0, 130 when stopped, else the first failed rank's (torchrun ends
    the other ranks when one fails). Each CPU rank gets its share of the cores."""
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cpu_cores() // nproc)))
    try:
        run.run(run.parse_args(torchrun_args(nproc, command)))
    except SignalException:  # Ctrl-C: torchrun passed it on and the ranks saved last.pt
        return EXIT_STOPPED
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode == EXIT_STOPPED:
            return EXIT_STOPPED
        how = (f"was ended by signal {failure.signal_name()}" if failure.exitcode < 0
               else f"failed (exit status {failure.exitcode})")
        print(f"cxr-desktop: rank {rank} {how}; torchrun ended the others", file=sys.stderr,
              flush=True)
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0


def slurm_script(run_dir: Path, *, nodes: int, gpus_per_node: int, arch: str,
                 cpus_per_task: int = 8, log_dir: Path | None = None) -> str:
    """A SLURM batch script training ``run_dir`` with torchrun on ``nodes`` nodes of
    ``gpus_per_node`` GPUs: one torchrun per node (``srun``), its c10d rendezvous on the
    first node. Submitted again (or requeued) it goes on from the last checkpoint."""
    if nodes < 1 or gpus_per_node < 1:
        raise CxrError("a cluster job needs at least one node and one GPU per node")
    run = shlex.quote(str(run_dir))
    logs = shlex.quote(str((log_dir or run_dir.parent) / "slurm-%j.out"))
    return f"""#!/bin/bash
#SBATCH --job-name=cxr-{arch}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={gpus_per_node}
#SBATCH --cpus-per-task={cpus_per_task}
#SBATCH --output={logs}
#SBATCH --requeue
# Written by cxr-desktop {__version__} on {time.strftime('%Y-%m-%d %H:%M')}.
# Trains the run folder {run} with torchrun: {gpus_per_node} process(es), one per GPU, on
# each of {nodes} node(s). Submit it with sbatch from a shell where `python -m cxr_desktop`
# and torchrun work (srun keeps that environment); the dataset's images must be where
# {run}/dataset.json says (its root, or the same place relative to it). Submitted again it
# resumes from the run's last checkpoint. Open the run folder in the app afterwards.
set -euo pipefail
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun torchrun --nnodes "$SLURM_NNODES" --nproc_per_node {gpus_per_node} \\
    --rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d \\
    --rdzv-endpoint "$head:${{CXR_RDZV_PORT:-{RDZV_PORT}}}" \\
    -m cxr_desktop resume {run} --json
"""


def write_job(job_dir: Path, script: str) -> Path:
    """Write the job script into ``job_dir`` (made if needed), executable, atomically."""
    from cxr_desktop.core.atomic import atomic_write_text

    path = atomic_write_text(job_dir / JOB_SCRIPT, script)
    path.chmod(0o755)
    return path
