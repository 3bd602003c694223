"""``load_run``: a trained model from a run folder, ready for inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cxr_desktop.core.errors import FileError, ModelError, first_line
from cxr_desktop.core.io import INTENSITY_CHAIN
from cxr_desktop.core.models import CxrNet, build_model
from cxr_desktop.core.runs.checkpoint import load_checkpoint
from cxr_desktop.core.runs.folder import BEST_NAME, LAST_NAME, RunFolder


@dataclass
class LoadedRun:
    """A model in eval mode with its checkpoint's metadata (classes, task, input size,
    threshold, intensity chain, training scope) and the run's metrics per epoch."""

    model: CxrNet
    metadata: dict[str, Any]
    checkpoint_path: Path
    history: list[dict[str, Any]]

    @property
    def chain_matches(self) -> bool:
        """False when images are now preprocessed differently from how the model saw them."""
        return self.metadata.get("intensity_chain") == INTENSITY_CHAIN


def load_run(run_dir: str | Path, which: str = "best",
             device: str | torch.device = "cpu") -> LoadedRun:
    """Load ``best.pt`` (falling back to ``last.pt`` when there is no best yet) or, with
    ``which="last"``, ``last.pt``; or ``run_dir`` may be a checkpoint file itself."""
    target = Path(run_dir)
    if target.is_file():
        path, folder = target, RunFolder(target.parent)
    else:
        folder = RunFolder(target)
        names = {"best": (BEST_NAME, LAST_NAME), "last": (LAST_NAME,)}
        if which not in names:
            raise ValueError(f"which must be 'best' or 'last', not {which!r}")
        candidates = [folder.path / name for name in names[which]]
        path = next((p for p in candidates if p.is_file()), candidates[0])
        if not path.is_file():
            raise FileError(folder.path, "no checkpoint (best.pt or last.pt): the run has "
                            "not finished an epoch")
    checkpoint = load_checkpoint(path)
    metadata = dict(checkpoint.get("metadata", {}))
    try:
        model = build_model(metadata["arch"], int(metadata["num_outputs"]), pretrained="none")
        model.load_state_dict(checkpoint["model"])
    except KeyError as exc:
        raise FileError(path, f"checkpoint metadata lacks {exc}") from exc
    except (RuntimeError, ModelError) as exc:
        raise FileError(path, f"weights do not fit {metadata.get('arch')} "
                              f"({first_line(exc)})") from exc
    model.pretrained_source = None
    model.pretrained_note = metadata.get("pretrained_note", "")
    model.to(device).eval()
    return LoadedRun(model, metadata, path, folder.read_metrics())
