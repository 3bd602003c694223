"""One rank of ``core.train.parallel``'s run, started by ``torch.distributed.run``:
``python -m cxr_desktop.core.train.parallel_rank RUN_DIR --stop-file PATH``.

Each rank resumes the prepared run folder (from its first epoch when it has no checkpoint);
rank 0's engine events go to stdout as JSON lines after ``EVENT_PREFIX`` (NaN kept as NaN,
so the parent gets the same values as a one-process run). The run stops, with a checkpoint,
when the stop file appears or on SIGINT. A rank that fails writes one ``error`` event with
its one-line message (the traceback to stderr) and exits 1; torchrun ends the others.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from cxr_desktop.core.errors import CxrError, first_line

#: What starts a line of stdout that carries an event (other output is ignored).
EVENT_PREFIX = "cxr-event "


def _plain(value: Any) -> Any:
    """JSON for what ``json`` does not know: numpy scalars and arrays, paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write_event(event: dict[str, Any]) -> None:
    """One event as one line on stdout, written at once."""
    sys.stdout.write(EVENT_PREFIX + json.dumps(event, default=_plain) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=__name__)
    parser.add_argument("run_dir")
    parser.add_argument("--stop-file", required=True)
    args = parser.parse_args(argv)
    stop_file = Path(args.stop_file)
    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())

    def should_stop() -> bool:
        return interrupted.is_set() or stop_file.exists()

    rank = int(os.environ.get("RANK", "0"))
    try:
        from cxr_desktop.core.runs.folder import RunFolder
        from cxr_desktop.core.train.distributed import joined
        from cxr_desktop.core.train.engine import resume

        config = RunFolder(args.run_dir).read_config()
        with joined(config.device):
            resume(args.run_dir, write_event, should_stop)  # events from rank 0 only
    except Exception as exc:  # noqa: BLE001 - told to the parent in one line
        text = str(exc) if isinstance(exc, CxrError) else \
            f"training process {rank}: {type(exc).__name__}: {first_line(exc)}"
        traceback.print_exc()
        with contextlib.suppress(OSError):  # the parent may have gone
            write_event({"type": "error", "rank": rank, "text": text})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
