"""Data-parallel training for a caller that wants the engine's events live (the Training
tab's "GPUs" choice): ``fit_parallel`` and ``resume_parallel`` take the same ``on_event``
and ``should_stop`` as ``fit`` and ``resume`` and return the same :class:`RunResult`.

They do what ``train --nproc N`` does: prepare the run folder, build the image cache here
(its ``cache`` events come from this process), then start N ranks through
``torch.distributed.run`` that train the folder (``core.train.parallel_rank``). Rank 0 writes
each engine event as one JSON line on its stdout, which the ranks share with the launcher; a
thread here reads the pipe and the caller's thread passes the events on, so ``on_event`` is
called from the caller's thread as with one process. Stop is a file the ranks look for before
every batch (the engine's agreed stop: every rank stops at the same batch and rank 0 saves
``last.pt``), which works the same on every platform; a launcher still running long after it
gets SIGINT, which torchrun passes on to the ranks, then is ended.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.runs.folder import DATASET_NAME, RunFolder
from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.data import EventSink
from cxr_desktop.core.train.distributed import cpu_cores
from cxr_desktop.core.train.engine import RunResult, discard_unstarted, prepare_run
from cxr_desktop.core.train.launch import cache_images, check_nproc
from cxr_desktop.core.train.parallel_rank import EVENT_PREFIX

RANK_MODULE = "cxr_desktop.core.train.parallel_rank"
#: After a Stop, how long the ranks have to reach their next batch and save before the
#: launcher gets SIGINT, and how long after that before it is ended.
STOP_GRACE_S = 120.0
KILL_GRACE_S = 60.0
_END = object()


def _never() -> bool:
    return False


def _ignore(event: dict[str, Any]) -> None:
    pass


def fit_parallel(config: TrainConfig, nproc: int, on_event: EventSink | None = None,
                 should_stop: Callable[[], bool] | None = None, *,
                 spec: DatasetSpec | None = None) -> RunResult:
    """``fit`` as ``nproc`` data-parallel processes on this machine (one per GPU, or gloo
    on CPUs). A run that fails before its first checkpoint is removed again, as ``fit``
    removes it."""
    check_nproc(config, nproc)
    config, folder, created = prepare_run(config, spec)
    try:
        return _train_folder(folder.path, config, nproc, on_event, should_stop)
    except BaseException:
        discard_unstarted(folder, created)
        raise


def resume_parallel(run_dir: str | Path, nproc: int, on_event: EventSink | None = None,
                    should_stop: Callable[[], bool] | None = None) -> RunResult:
    """``resume`` as ``nproc`` data-parallel processes (any earlier world size)."""
    folder = RunFolder(run_dir)
    config = folder.read_config()
    check_nproc(config, nproc)
    return _train_folder(folder.path, config, nproc, on_event, should_stop)


def _train_folder(run_dir: Path, config: TrainConfig, nproc: int,
                  on_event: EventSink | None,
                  should_stop: Callable[[], bool] | None) -> RunResult:
    """Register the run (so the history shows it while its images are cached), cache them
    here, then train the folder with ``nproc`` ranks."""
    said: set[str] = set()

    def sink(event: dict[str, Any]) -> None:
        if event.get("type") == "message":
            said.add(event["text"])
        if on_event is not None:
            on_event(event)

    should_stop = should_stop or _never
    registry = RunRegistry()
    task = DatasetSpec.load(run_dir / DATASET_NAME).task
    registry.start(run_dir, arch=config.arch, dataset=config.dataset, task=task,
                   epochs=config.epochs)
    try:
        if not cache_images(run_dir, sink, should_stop):
            registry.update(run_dir, status="stopped")
            done = RunFolder(run_dir).read_metrics()
            return RunResult(run_dir, "stopped", config.epochs, len(done), None, None, done,
                             world_size=nproc)
        return run_ranks(run_dir, nproc, on_event or _ignore, should_stop, said)
    except BaseException:
        registry.update(run_dir, status="failed")  # rank 0 may have been ended before it could
        raise


def rank_command(run_dir: Path, nproc: int, stop_file: Path) -> list[str]:
    """The launcher's command line: torchrun on a free local port, ``nproc`` ranks."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", RANK_MODULE, str(run_dir),
            "--stop-file", str(stop_file)]


def run_ranks(run_dir: Path, nproc: int, on_event: EventSink,
              should_stop: Callable[[], bool], said: Iterable[str] = ()) -> RunResult:
    """Train the prepared, cached ``run_dir`` with ``nproc`` ranks and wait for them,
    passing rank 0's events to ``on_event``; CxrError with the failing rank's message.
    Messages in ``said`` (told while the images were cached here, which rank 0 tells again
    when it opens the cache) are passed on once only."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", str(max(1, cpu_cores() // nproc)))
    scratch = Path(tempfile.mkdtemp(prefix="cxr-ranks-"))
    stop_file = scratch / "stop"
    try:
        process = subprocess.Popen(
            rank_command(run_dir, nproc, stop_file), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
            start_new_session=True)  # a Ctrl-C meant for the app does not reach the ranks
        events: queue.Queue[Any] = queue.Queue()
        tail: collections.deque[str] = collections.deque(maxlen=60)
        readers = [threading.Thread(target=_read_events, args=(process.stdout, events),
                                    daemon=True),
                   threading.Thread(target=_read_tail, args=(process.stderr, tail),
                                    daemon=True)]
        for reader in readers:
            reader.start()
        try:
            done, errors = _relay(process, events, on_event, should_stop, stop_file,
                                 set(said))
        finally:
            if process.poll() is None:  # the caller's thread was interrupted: end the run
                _end(process)
            for reader in readers:
                reader.join(timeout=10)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if done is None:
        raise CxrError(launcher_failure(tail, process.returncode, errors))
    return RunResult(Path(done["run_dir"]), done["status"], int(done["epochs"]),
                     int(done["epochs_done"]), done.get("best_epoch"), done.get("best_val_auc"),
                     RunFolder(done["run_dir"]).read_metrics(), list(done.get("excluded", [])),
                     int(done.get("world_size", nproc)))


def _relay(process: subprocess.Popen, events: queue.Queue[Any], on_event: EventSink,
           should_stop: Callable[[], bool], stop_file: Path, said: set[str],
           ) -> tuple[dict[str, Any] | None, dict[int, str]]:
    """Pass the events on until the ranks' stdout closes; the ``done`` event and each
    failed rank's message. A Stop touches the stop file, then SIGINT, then ends the
    launcher, each after its grace."""
    done: dict[str, Any] | None = None
    errors: dict[int, str] = {}
    stopped_at: float | None = None
    interrupted = False
    while True:
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            event = None
        if event is _END:
            break
        if isinstance(event, dict):
            if event.get("type") == "error":
                errors.setdefault(int(event.get("rank", -1)),
                                  str(event.get("text") or "a training process failed"))
            elif event.get("type") == "message" and event.get("text") in said:
                said.discard(event["text"])  # said once already
            else:
                if event.get("type") == "done":
                    done = event
                on_event(event)
        if stopped_at is None and should_stop():
            stop_file.touch()
            stopped_at = time.monotonic()
        elif stopped_at is not None:
            waited = time.monotonic() - stopped_at
            if not interrupted and waited > STOP_GRACE_S:
                interrupted = True
                if os.name != "nt":  # Windows has no SIGINT for a child: ended below
                    process.send_signal(signal.SIGINT)
            elif waited > STOP_GRACE_S + KILL_GRACE_S:
                _end(process)
    process.wait()
    return done, errors


def _end(process: subprocess.Popen) -> None:
    """End the launcher: SIGTERM (torchrun ends its ranks), then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_events(stream: IO[str] | None, events: queue.Queue[Any]) -> None:
    """Each event line of ``stream`` as a dict on ``events``; ``_END`` when it closes."""
    try:
        for line in stream or ():
            start = line.find(EVENT_PREFIX)
            if start < 0:
                continue
            try:
                events.put(json.loads(line[start + len(EVENT_PREFIX):]))
            except ValueError:
                continue
    finally:
        events.put(_END)


def _read_tail(stream: IO[str] | None, tail: collections.deque[str]) -> None:
    for line in stream or ():
        if line.strip():
            tail.append(line.rstrip())


def _failures(text: str) -> list[tuple[int | None, str | None, str | None]]:
    """(rank, signal, exit status) of each failure in torchrun's report, root cause first."""
    found = []
    for block in re.split(r"^\s*\[\d+\]:\s*$", text, flags=re.M)[1:]:
        rank = re.search(r"^\s*rank\s*:\s*(\d+)", block, flags=re.M)
        cause = re.search(r"^\s*traceback\s*:\s*(Signal \d+ \(\w+\))", block, flags=re.M)
        status = re.search(r"^\s*exitcode\s*:\s*(-?\d+)", block, flags=re.M)
        found.append((int(rank.group(1)) if rank else None, cause and cause.group(1),
                      status and status.group(1)))
    return found[-1:] + found[:-1]  # the report lists the root cause last


def launcher_failure(stderr: Iterable[str], code: int | None,
                     errors: dict[int, str] | None = None) -> str:
    """One line for ranks that ended without finishing. A rank killed by a signal (other
    than the SIGTERM torchrun ends the others with) is the cause: the errors of the others
    are its consequence (a peer gone). Else the message of the rank torchrun reports as the
    root cause (it says why itself), else how that rank ended."""
    errors = errors or {}
    lines = list(stderr)
    failures = _failures("\n".join(lines))
    for rank, cause, _ in failures:
        if cause and "SIGTERM" not in cause:
            return f"training process {rank} was ended by {cause}; the others were ended too"
    rank, cause, status = failures[0] if failures else (None, None, None)
    if errors:
        return errors.get(rank if rank is not None else -1, next(iter(errors.values())))
    who = "a training process" if rank is None else f"training process {rank}"
    if cause:
        how = f"was ended by {cause}"
    elif status:
        how = f"failed (exit status {status})"
    else:
        how = f"failed (exit status {code})" + (f": {lines[-1]}" if lines else "")
    return f"{who} {how}; the others were ended too"
