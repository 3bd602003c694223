"""Two tiny trained runs on the blob dataset, trained once per test session.

The dataset has a test split that training never sees. Test modules in tests/cli and
tests/gui put this folder on ``sys.path`` to share the same two runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blobs import make_blob_dataset

from cxr_desktop.core.runs.registry import RunRegistry
from cxr_desktop.core.train import TrainConfig, fit


@dataclass(frozen=True)
class TinyRuns:
    dataset: Path  # a saved spec (JSON) with train, val and test splits
    runs: tuple[Path, Path]
    registry: Path


_trained: dict[str, TinyRuns] = {}


def trained_runs(base: Path) -> TinyRuns:
    """Train (once per process) two 2-epoch ``small_cnn`` runs at 64 px under ``base``."""
    if "runs" in _trained:
        return _trained["runs"]
    spec = make_blob_dataset(base / "ds", n_train=24, n_val=12, n_test=40, seed=3)
    dataset = spec.save(base / "ds.json")
    registry = RunRegistry(base / "runs.sqlite")
    runs = []
    for seed, lr in ((0, 3e-3), (1, 1e-3)):
        config = TrainConfig(dataset=str(dataset), arch="small_cnn", size=64, epochs=2,
                             batch_size=8, lr=lr, pretrained="none", workers=2, seed=seed,
                             out=str(base / f"run{seed}"), cache_dir=str(base / "cache"))
        result = fit(config, spec=spec, registry=registry)
        assert result.status == "done"
        runs.append(result.run_dir)
    _trained["runs"] = TinyRuns(dataset, (runs[0], runs[1]), base / "runs.sqlite")
    return _trained["runs"]
