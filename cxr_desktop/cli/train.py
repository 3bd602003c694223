"""``cxr-desktop train``, ``lr-find`` and ``resume``: the training engine from a terminal.

``--json`` prints one JSON object per epoch on stdout and a last one with ``best_epoch``,
``best_val_auc``, ``run_dir`` and ``world_size``; messages and cache progress go to stderr.
Ctrl-C stops at the next batch and saves ``last.pt`` (exit status 130); a second Ctrl-C
aborts at once.

Data-parallel: ``--nproc N`` prepares the run folder and its image cache, then starts N
ranks through ``torch.distributed.run`` that ``resume`` it; ``torchrun ... -m cxr_desktop
train ...`` works as is (each process is a rank; only rank 0 prints). ``--export-job DIR``
writes the prepared run folder and a SLURM script that trains it with torchrun on a cluster.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxr_desktop.cli._dataset_options import add_dataset_arguments, dataset_options
from cxr_desktop.core.train.config import (
    AUTO_BATCH,
    AUTO_FREEZE,
    CLASS_BALANCE,
    DEVICES,
    SCHEDULES,
    TrainConfig,
    parse_lr,
)

if TYPE_CHECKING:
    from cxr_desktop.core.train.engine import RunResult

EXIT_STOPPED = 130


def _dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET",
                        help="folder, CSV file or spec .json (anything `inspect` accepts)")
    add_dataset_arguments(parser)


def _lr(text: str) -> float | str:
    from cxr_desktop.core.errors import CxrError

    try:
        return parse_lr(text)
    except CxrError:
        raise argparse.ArgumentTypeError(f"'auto' or a positive number, not {text!r}") \
            from None


def _auto_int(auto: int) -> Callable[[str], int]:
    """``auto`` or a whole number: the config's value for auto, or the number."""
    def parse(text: str) -> int:
        if text.strip().lower() == "auto":
            return auto
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'auto' or a whole number, not {text!r}") \
                from None
    return parse


def _model_args(parser: argparse.ArgumentParser, epochs: bool) -> None:
    defaults = TrainConfig()
    parser.add_argument("--arch", default=defaults.arch,
                        help="e.g. resnet18, densenet121, efficientnet_lite0, small_cnn")
    parser.add_argument("--size", type=int, default=0,
                        help="training size in pixels (default: the architecture's own)")
    if epochs:
        parser.add_argument("--epochs", type=int, default=defaults.epochs,
                            help="all epochs, the frozen ones included")
        parser.add_argument("--out", metavar="RUN_DIR", default="",
                            help="run folder (default: a new one under the runs folder)")
        parser.add_argument("--early-stop", type=int, default=0, metavar="EPOCHS",
                            help="stop after this many epochs without a better val AUC")
        parser.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    parser.add_argument("--batch-size", type=_auto_int(AUTO_BATCH), default=AUTO_BATCH,
                        metavar="N|auto", help="default auto: from the dataset size")
    parser.add_argument("--accumulate", type=int, default=1, help="batches per optimizer step")
    parser.add_argument("--lr", type=_lr, default=defaults.lr, metavar="LR|auto",
                        help="peak LR of the head; default auto: the LR finder's suggestion "
                             "on a short probe at the start")
    parser.add_argument("--freeze-epochs", type=_auto_int(AUTO_FREEZE), default=AUTO_FREEZE,
                        metavar="N|auto", help="first epochs with the pretrained backbone "
                        "frozen (the head trains on features computed once); default auto: "
                        "none in a short run")
    if epochs:
        parser.add_argument("--progressive", action="store_true",
                            help="first epochs at a lower size, rising to --size (faster; "
                                 "it can cost AUC)")
    parser.add_argument("--pretrained", default="auto", metavar="auto|none|PATH",
                        help="ImageNet weights when found (auto), none, or a weights file")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--class-balance", choices=CLASS_BALANCE, default="none")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0,
                        help="threads building the image cache (default: one per core, max 8)")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")


def _nproc_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train with N processes on this machine (torch.distributed: "
                             "one per GPU, or gloo with the CPU cores split between them)")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train a classifier on a dataset",
        description="Train a classifier; every epoch is saved in the run folder "
                    "(config.json, metrics.jsonl, last.pt, best.pt by validation AUC).")
    _dataset_args(train)
    _model_args(train, epochs=True)
    _nproc_arg(train)
    cluster = train.add_argument_group(
        "cluster job", "--export-job DIR writes DIR/run (config.json, dataset.json: the run, "
        "not started) and DIR/train.sbatch (SLURM: torchrun on the nodes) instead of training")
    cluster.add_argument("--export-job", metavar="DIR", default="")
    cluster.add_argument("--nodes", type=int, default=1, help="nodes of the job (default 1)")
    cluster.add_argument("--gpus-per-node", type=int, default=1, metavar="G",
                         help="GPUs, one process each, per node (default 1)")
    train.set_defaults(func=run_train)

    finder = subparsers.add_parser(
        "lr-find", help="suggest a learning rate (exponential LR sweep)",
        description="Sweep the learning rate over training batches and suggest one.")
    _dataset_args(finder)
    _model_args(finder, epochs=False)
    finder.add_argument("--start-lr", type=float, default=1e-7)
    finder.add_argument("--end-lr", type=float, default=10.0)
    finder.add_argument("--num-iter", type=int, default=100)
    finder.set_defaults(func=run_lr_find)

    again = subparsers.add_parser(
        "resume", help="continue a stopped or killed training run",
        description="Continue a run from its last checkpoint to its planned epochs.")
    again.add_argument("run_dir", metavar="RUN_DIR")
    again.add_argument("--json", action="store_true", help="JSON lines on stdout")
    _nproc_arg(again)
    again.set_defaults(func=run_resume)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = TrainConfig(
        dataset=args.dataset,
        dataset_options=dataset_options(args),
        arch=args.arch, size=args.size, batch_size=args.batch_size, lr=args.lr,
        accumulate=args.accumulate, freeze_epochs=args.freeze_epochs,
        pretrained=args.pretrained, device=args.device, class_balance=args.class_balance,
        amp=not args.no_amp, seed=args.seed, workers=args.workers,
    )
    if args.no_augment:
        config.augment = config.augment.none()
    if hasattr(args, "epochs"):
        config.epochs, config.out = args.epochs, args.out
        config.early_stop_patience, config.schedule = args.early_stop, args.schedule
        config.progressive = args.progressive
    return config.validate()


#: Logs the note on missing ImageNet weights, which training also sends as a message event.
WEIGHTS_LOGGER = "cxr_desktop.core.models.weights"


@contextmanager
def weights_log_quiet() -> Iterator[None]:
    """The weights module's log records go nowhere while a command runs: its note reaches
    the terminal once, as the engine's message (Python prints an unhandled warning too)."""
    logger = logging.getLogger(WEIGHTS_LOGGER)
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@contextmanager
def ctrl_c_stops() -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C sets a flag the engine checks; the second interrupts at once."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr,
              flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class Printer:
    """Turns engine events into terminal output."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._cache_shown: int | tuple[int, int] = -1

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "message":
            print(event["text"], file=sys.stderr, flush=True)
        elif kind == "cache":
            self._cache(event["done"], event["total"])
        elif kind == "epoch" and self.as_json:
            from cxr_desktop.core.runs.folder import jsonable

            record = {k: v for k, v in event.items() if k != "type"}
            print(json.dumps(jsonable(record), sort_keys=True), flush=True)
        elif kind == "epoch":
            print(self.epoch_line(event), flush=True)

    def _cache(self, done: int, total: int) -> None:
        """A progress line updated in place on a terminal; only the last one otherwise.

        The cache reports its end more than once (after the last image and when it is
        saved): the final line is printed once."""
        percent = 100 * done // max(total, 1)
        if done >= total:
            if self._cache_shown != (done, total):
                self._cache_shown = (done, total)
                print(f"\rpreparing images {done}/{total}", file=sys.stderr, flush=True)
        elif percent != self._cache_shown and sys.stderr.isatty():
            self._cache_shown = percent
            print(f"\rpreparing images {done}/{total}", end="", file=sys.stderr, flush=True)

    @staticmethod
    def epoch_line(event: dict[str, Any]) -> str:
        def num(key: str, fmt: str) -> str:
            value = event.get(key)
            return "-" if value is None else format(value, fmt)

        return (f"epoch {event['epoch']}/{event['epochs']}  train loss {num('train_loss', '.4f')}"
                f"  val loss {num('val_loss', '.4f')}  val AUC {num('val_auc', '.4f')}"
                f"  lr {num('lr', '.2e')}  {num('epoch_s', '.1f')} s"
                f"  {num('images_per_s', '.0f')} img/s" + ("  *best" if event.get("best") else ""))


def _finish(result: RunResult, as_json: bool, quiet: bool = False) -> int:
    """The last line and the exit status; ``quiet`` (ranks other than 0) prints nothing."""
    summary = result.to_dict()
    if quiet:
        return EXIT_STOPPED if result.status == "stopped" else 0
    if as_json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    else:
        auc = summary["best_val_auc"]
        print(f"{result.status}: {result.epochs_done}/{result.epochs} epochs, best epoch "
              f"{summary['best_epoch']} (val AUC {'-' if auc is None else f'{auc:.4f}'}), "
              f"run folder {result.run_dir}")
    if result.status == "stopped":
        print(f"stopped: continue with `cxr-desktop resume {result.run_dir}`", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def run_train(args: argparse.Namespace) -> int:
    from cxr_desktop.core.train.distributed import joined, launched_by_torchrun
    from cxr_desktop.core.train.engine import fit

    config = config_from_args(args)
    if args.export_job:
        return _export_job(config, args)
    if args.nproc > 1 and not launched_by_torchrun():
        return _launch_new(config, args.nproc, args.json)
    with joined(config.device) as world, weights_log_quiet(), \
            ctrl_c_stops() as should_stop:
        result = fit(config, Printer(args.json), should_stop)
    return _finish(result, args.json, quiet=not world.is_main)


def run_resume(args: argparse.Namespace) -> int:
    from cxr_desktop.core.runs.folder import RunFolder
    from cxr_desktop.core.train.distributed import joined, launched_by_torchrun
    from cxr_desktop.core.train.engine import resume

    config = RunFolder(args.run_dir).read_config()
    if args.nproc > 1 and not launched_by_torchrun():
        return _launch(config, Path(args.run_dir), args.nproc, args.json)
    with joined(config.device) as world, weights_log_quiet(), \
            ctrl_c_stops() as should_stop:
        result = resume(args.run_dir, Printer(args.json), should_stop)
    return _finish(result, args.json, quiet=not world.is_main)


def _launch(config: TrainConfig, run_dir: Path, nproc: int, as_json: bool) -> int:
    """Cache the images here, then ``resume`` the run as ``nproc`` ranks."""
    from cxr_desktop.core.train.launch import cache_images, check_nproc, launch_local

    check_nproc(config, nproc)
    with weights_log_quiet(), ctrl_c_stops() as should_stop:
        complete = cache_images(run_dir, Printer(as_json), should_stop)
    if not complete:
        print(f"stopped while preparing images: continue with `cxr-desktop resume {run_dir} "
              f"--nproc {nproc}`", file=sys.stderr)
        return EXIT_STOPPED
    return launch_local(nproc, ["resume", str(run_dir), *(["--json"] if as_json else [])])


def _launch_new(config: TrainConfig, nproc: int, as_json: bool) -> int:
    """``train --nproc N``: the run folder prepared here, trained by N ranks; removed again
    when they end before its first checkpoint."""
    from cxr_desktop.core.train.engine import discard_unstarted, prepare_run
    from cxr_desktop.core.train.launch import check_nproc

    check_nproc(config, nproc)
    config, folder, created = prepare_run(config)
    code = 1
    try:
        code = _launch(config, folder.path, nproc, as_json)
    finally:
        if code != 0:
            discard_unstarted(folder, created)
    return code


def _export_job(config: TrainConfig, args: argparse.Namespace) -> int:
    """``--export-job DIR``: the run folder (``DIR/run`` unless ``--out``) prepared, not
    trained, and ``DIR/train.sbatch`` that trains it on a cluster."""
    from cxr_desktop.core.errors import FileError
    from cxr_desktop.core.train.engine import prepare_run
    from cxr_desktop.core.train.launch import slurm_script, write_job

    job = Path(args.export_job).resolve()
    if job.exists() and (not job.is_dir() or any(job.iterdir())):
        raise FileError(job, "the job folder must be new or empty")
    config.out = config.out or str(job / "run")
    script = slurm_script(Path(config.out).resolve(), nodes=args.nodes,
                          gpus_per_node=args.gpus_per_node, arch=config.arch, log_dir=job)
    config, folder, _ = prepare_run(config)
    path = write_job(job, script)
    if args.json:
        print(json.dumps({"run_dir": str(folder.path), "job_script": str(path),
                          "nodes": args.nodes, "gpus_per_node": args.gpus_per_node}))
    else:
        print(f"run folder {folder.path} (not started) and SLURM script {path}: submit it "
              f"with `sbatch {path}`")
    return 0


def run_lr_find(args: argparse.Namespace) -> int:
    from cxr_desktop.core.train.lr_finder import find_lr

    config = config_from_args(args)
    with weights_log_quiet(), ctrl_c_stops() as should_stop:
        result = find_lr(config, Printer(args.json), should_stop, start_lr=args.start_lr,
                         end_lr=args.end_lr, num_iter=args.num_iter)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(f"suggested learning rate {result.suggested_lr:.2e} (valley; steepest descent "
              f"at {result.steepest_lr:.2e}; {len(result.lrs)} points)")
    return 0
