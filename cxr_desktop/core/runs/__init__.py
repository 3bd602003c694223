"""Run folders, checkpoints and the run registry (``resume`` is in ``core.train``)."""

from cxr_desktop.core.runs.checkpoint import load_checkpoint, save_checkpoint
from cxr_desktop.core.runs.folder import RunFolder, new_run_dir
from cxr_desktop.core.runs.load import LoadedRun, load_run
from cxr_desktop.core.runs.registry import RunRecord, RunRegistry

__all__ = ["LoadedRun", "RunFolder", "RunRecord", "RunRegistry", "load_checkpoint",
           "load_run", "new_run_dir", "save_checkpoint"]
