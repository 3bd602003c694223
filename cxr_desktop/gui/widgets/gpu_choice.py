"""The Training tab's "GPUs" choice: on a machine where PyTorch sees more than one CUDA
device, Start and Resume can train data-parallel, one process per GPU
(``core.train.parallel``: rank 0's events reach the tab as a one-process run's do, and Stop
stops every process with a checkpoint). With one GPU or none the row is hidden and the tab
trains in its worker thread as before.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFormLayout, QSpinBox, QWidget

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.train import TrainConfig, fit, resume
from cxr_desktop.core.train.parallel import fit_parallel, resume_parallel
from cxr_desktop.gui.engine_worker import Job


def visible_gpus() -> int:
    """The CUDA devices PyTorch sees (tests replace this function)."""
    import torch

    return torch.cuda.device_count()


class GpuChoice(QSpinBox):
    """How many GPUs a run trains on; 1 (one process) unless more are chosen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        count = visible_gpus()
        self.available = count > 1
        self.setRange(1, max(count, 1))
        self.setValue(1)
        self.setToolTip(f"Train on this many of the {count} GPUs at once: one process each, "
                        "data-parallel (torch.distributed); each takes its share of every "
                        "batch. 1: one process, as usual. Not used when the preferred "
                        "device is the CPU.")

    def add_to(self, form: QFormLayout) -> None:
        """Add the row to ``form``, shown only when there is more than one GPU."""
        form.addRow("GPUs:", self)
        form.setRowVisible(self, self.available)

    def processes(self, device: str) -> int:
        """The processes a run on ``device`` (the preference) trains with."""
        return self.value() if self.available and device != "cpu" else 1

    def describe(self, device: str) -> str:
        nproc = self.processes(device)
        return f" on {nproc} GPUs" if nproc > 1 else ""

    def fit_job(self, config: TrainConfig, spec: DatasetSpec) -> Job:
        nproc = self.processes(config.device)
        if nproc > 1:
            return lambda emit, stop: fit_parallel(config, nproc, emit, stop, spec=spec)
        return lambda emit, stop: fit(config, emit, stop, spec=spec)

    def resume_job(self, run_dir: str | Path, device: str) -> Job:
        nproc = self.processes(device)
        if nproc > 1:
            return lambda emit, stop: resume_parallel(run_dir, nproc, emit, stop)
        return lambda emit, stop: resume(run_dir, emit, stop)
