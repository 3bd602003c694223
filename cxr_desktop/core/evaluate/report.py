"""``--report DIR``: the per-image predictions as CSV, the summary as JSON, the plots as PNG.

``predictions.csv`` has one row per image: ``path``, the targets, the headline's
probabilities and calls, its per-image loss, and for an ensemble every method's and every
member's probabilities with the source as a prefix (``vote/prob``, ``member2/prob_blob``).
Binary columns are ``target`` (1 = positive class), ``prob`` and ``predicted``; multi-class
``target`` and ``predicted`` are class names with ``prob_<class>`` columns; multi-label has
``target_<f>`` (blank when masked), ``prob_<f>`` and ``predicted_<f>`` per finding.
Plots are drawn on bare matplotlib ``Figure`` objects (the Agg renderer, no pyplot: no
display, no global state, safe in a worker thread); every file is written atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cxr_desktop.core.atomic import atomic_write_bytes, atomic_write_text
from cxr_desktop.core.errors import FileError
from cxr_desktop.core.evaluate import metrics as m
from cxr_desktop.core.evaluate.evaluation import Evaluation
from cxr_desktop.core.evaluate.predictions import Predictions
from cxr_desktop.core.evaluate.suite import EvaluationSet
from cxr_desktop.core.runs.folder import make_dirs, os_reason

PNG_DPI = 110


def _prob_columns(preds: Predictions, prefix: str = "") -> dict[str, np.ndarray]:
    if preds.task == "binary":
        return {f"{prefix}prob": np.asarray(preds.probs, dtype=np.float64)}
    return {f"{prefix}prob_{name}": np.asarray(preds.probs[:, c], dtype=np.float64)
            for c, name in enumerate(preds.classes)}


def _loss(preds: Predictions) -> np.ndarray:
    if preds.task == "multiclass":
        return m.multiclass_log_loss(preds.targets, preds.probs)
    losses = m.binary_log_loss(preds.targets, preds.probs).reshape(len(preds), -1)
    known = ~np.isnan(losses)
    with np.errstate(invalid="ignore"):
        return np.where(known, losses, 0).sum(axis=1) / known.sum(axis=1)


def predictions_table(result: EvaluationSet) -> pd.DataFrame:
    """One row per image of the headline evaluation (see the module docstring)."""
    headline = result.headline
    preds = headline.predictions
    columns: dict[str, object] = {"path": preds.paths}
    if preds.task == "binary":
        columns["target"] = preds.targets.astype(np.int64)
        columns.update(_prob_columns(preds))
        columns["predicted"] = (preds.probs >= float(headline.threshold)).astype(np.int64)
    elif preds.task == "multiclass":
        columns["target"] = [preds.classes[i] for i in preds.targets]
        columns.update(_prob_columns(preds))
        columns["predicted"] = [preds.classes[i] for i in preds.probs.argmax(axis=1)]
    else:
        for c, name in enumerate(preds.classes):
            columns[f"target_{name}"] = pd.array(preds.targets[:, c], dtype="Int64")
        columns.update(_prob_columns(preds))
        for item in headline.per_class:
            c = preds.classes.index(item.name)
            columns[f"predicted_{item.name}"] = (preds.probs[:, c] >= item.threshold).astype(
                np.int64)
    columns["loss"] = _loss(preds)
    if result.ensembles:
        rows = {path: i for i, path in enumerate(preds.paths)}
        others = [(name, e.predictions) for name, e in result.ensembles.items()]
        others += [(f"member{i}", e.predictions) for i, e in enumerate(result.members, 1)]
        for name, other in others:
            order = [rows[p] for p in other.paths]
            for key, values in _prob_columns(other, f"{name}/").items():
                full = np.full(len(preds), np.nan)
                full[order] = values
                columns[key] = full
    return pd.DataFrame(columns)


def _save_figure(figure: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _label(name: str, item_auc: float, ci: tuple[float, float]) -> str:
    if not np.isfinite(item_auc):
        return f"{name} (AUC undefined)"
    return f"{name} AUC {item_auc:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def roc_figure(result: EvaluationSet) -> Figure:
    """Every output's ROC with its operating point; for a binary ensemble, every source."""
    headline = result.headline
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1)
    curves: list[tuple[str, Evaluation, int]] = [
        (item.name, headline, i) for i, item in enumerate(headline.per_class)]
    if headline.predictions.task == "binary" and result.ensembles:
        curves = [(Path(name).name, e, 0) for name, e in result.sources().items()]
    for name, evaluation, index in curves:
        item = evaluation.per_class[index]
        fpr, tpr, _ = item.roc
        if fpr.size == 0:
            continue
        line, = axes.plot(fpr, tpr, linewidth=1.5, label=_label(name, item.auc, item.auc_ci))
        if item.threshold is not None and evaluation is headline:
            axes.plot(1 - item.counts.specificity, item.counts.sensitivity, "o",
                      color=line.get_color(), markersize=7)
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity (false positive rate)",
             ylabel="sensitivity (true positive rate)",
             title=f"ROC, {headline.predictions.split} split (n={headline.n})")
    axes.legend(loc="lower right", fontsize=7)
    return figure


def _draw_matrix(axes: Axes, matrix: np.ndarray, labels: list[str], title: str) -> None:
    axes.imshow(matrix, cmap="Blues")
    high = matrix.max() if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        axes.text(col, row, str(int(value)), ha="center", va="center",
                  color="white" if value > high / 2 else "black")
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=30, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set(xlabel="predicted", ylabel="true", title=title)


def confusion_figure(evaluation: Evaluation) -> Figure:
    """The confusion matrix; one 2x2 panel per finding for a multi-label task."""
    preds = evaluation.predictions
    if preds.task == "multilabel":
        count = len(evaluation.per_class)
        figure = Figure(figsize=(3.2 * count, 3.4))
        grid = figure.subplots(1, count, squeeze=False)
        for axes, item in zip(grid[0], evaluation.per_class, strict=True):
            _draw_matrix(axes, item.counts.matrix(), ["absent", "present"],
                         f"{item.name} @ {item.threshold:.3f}")
        return figure
    figure = Figure(figsize=(4.5, 4))
    axes = figure.subplots()
    if preds.task == "binary":
        negative = next(c for c in preds.classes if c != preds.positive_class)
        _draw_matrix(axes, evaluation.confusion, [negative, str(preds.positive_class)],
                     f"threshold {float(evaluation.threshold):.3f}")
    else:
        _draw_matrix(axes, evaluation.confusion, list(preds.classes), "arg-max class")
    return figure


def write_report(directory: str | Path, result: EvaluationSet) -> list[Path]:
    """Write ``predictions.csv``, ``summary.json``, ``roc.png`` and ``confusion.png``.

    FileError naming the folder or the file when it cannot be made or written."""
    directory = Path(directory)
    make_dirs(directory, "report folder")
    table = predictions_table(result)
    summary = json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n"
    writes = [
        ("predictions.csv", lambda path: atomic_write_text(path, table.to_csv(index=False))),
        ("summary.json", lambda path: atomic_write_text(path, summary)),
        ("roc.png", lambda path: _save_figure(roc_figure(result), path)),
        ("confusion.png", lambda path: _save_figure(confusion_figure(result.headline), path)),
    ]
    written = []
    for name, write in writes:
        try:
            written.append(write(directory / name))
        except OSError as exc:
            raise FileError(directory / name, f"cannot write ({os_reason(exc)})") from None
    return written
