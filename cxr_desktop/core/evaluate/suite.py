"""``evaluate_runs``: one or more runs on one split, each alone and ensembled.

This is what the CLI and the GUI call: predictions per run (computed or read back from the
run folders), every member evaluated, and with two runs or more the ensemble methods asked
for. The *headline* is the first ensemble method, or the single run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.evaluate.ensemble import auc_weights, combine
from cxr_desktop.core.evaluate.evaluation import Evaluation, evaluate
from cxr_desktop.core.evaluate.options import DEFAULT_TEMPERATURE, METHODS
from cxr_desktop.core.evaluate.predictions import Predictions, predict
from cxr_desktop.core.runs.folder import RunFolder, jsonable
from cxr_desktop.core.train.engine import DATASET_SNAPSHOT, open_spec

SUMMARY_KEYS = ("n", "auc", "auc_ci", "accuracy", "sensitivity", "specificity", "threshold",
                "ece", "per_class")

Progress = Callable[[str, int, int], None]


@dataclass
class EvaluationSet:
    """Each member's evaluation and, for two runs or more, each ensemble method's."""

    members: list[Evaluation]
    ensembles: dict[str, Evaluation] = field(default_factory=dict)
    weights: list[float] = field(default_factory=list)

    @property
    def headline_name(self) -> str:
        return next(iter(self.ensembles), "") or self.members[0].predictions.source

    @property
    def headline(self) -> Evaluation:
        return next(iter(self.ensembles.values()), None) or self.members[0]

    def sources(self) -> dict[str, Evaluation]:
        """Every evaluation by name: the ensemble methods, then the run folders."""
        return {**self.ensembles, **{e.predictions.source: e for e in self.members}}

    def to_dict(self) -> dict[str, Any]:
        """The headline's numbers at the top level, plus ``members`` and ``ensemble``."""
        out = self.headline.to_dict()
        if self.ensembles:
            out["method"] = self.headline_name
            out["ensemble"] = {name: {k: v for k, v in e.to_dict().items() if k in SUMMARY_KEYS}
                               for name, e in self.ensembles.items()}
            out["members"] = [
                {"run_dir": e.predictions.source, "val_auc": e.predictions.val_auc,
                 "auc_weight": weight, **{k: v for k, v in e.to_dict().items()
                                     if k in SUMMARY_KEYS and k != "per_class"}}
                for e, weight in zip(self.members, self.weights, strict=True)]
        return jsonable(out)


def evaluate_runs(
    run_dirs: Sequence[str | Path],
    spec: DatasetSpec,
    split: str = "test",
    *,
    methods: Sequence[str] | None = None,
    threshold: str | float = "run",
    temperature: float = DEFAULT_TEMPERATURE,
    n_boot: int = 1000,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
) -> EvaluationSet:
    """Evaluate every run on ``split`` of ``spec`` and, with 2+ runs, ensemble them.

    ``methods`` defaults to all three for 2+ runs; ``progress(run_dir, done, total)``.
    """
    members: list[Predictions] = []
    for run_dir in run_dirs:
        report = None if progress is None else _bind(progress, str(run_dir))
        members.append(predict(run_dir, spec, split, device=device, progress=report))
    options = {"n_boot": n_boot, "seed": seed}
    result = EvaluationSet([evaluate(p, threshold, **options) for p in members])
    if len(members) > 1:
        for method in METHODS if methods is None else methods:
            combined = combine(members, method, temperature)
            result.ensembles[method] = evaluate(combined, threshold, **options)
        result.weights = [float(w) for w in auc_weights([p.val_auc for p in members],
                                                        temperature)]
    else:
        result.weights = [1.0]
    return result


def _bind(progress: Progress, run_dir: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        progress(run_dir, done, total)

    return report


def run_dataset(run_dir: str | Path) -> DatasetSpec:
    """The dataset a run was trained on, with its splits: the ``dataset.json`` snapshot in
    the run folder, else the dataset its ``config.json`` names."""
    folder = RunFolder(run_dir)
    snapshot = folder.path / DATASET_SNAPSHOT
    return DatasetSpec.load(snapshot) if snapshot.is_file() else open_spec(folder.read_config())
