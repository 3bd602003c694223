"""``cxr-desktop evaluate RUN_DIR [RUN_DIR ...] DATASET``: runs on a held-out split.

The last positional argument is the dataset (anything ``inspect`` accepts, with the split
options of ``train``); the others are run folders. On the dataset a run was trained on, the
run's own splits are used (its ``dataset.json``), whatever the split options say, so its test
split holds no training image; on another dataset, training images it holds are warned of.
With two runs or more the ensembles are evaluated too (all three methods unless
``--ensemble`` names one). ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cxr_desktop.cli._dataset_options import add_dataset_arguments, dataset_options
from cxr_desktop.core.errors import CxrError
from cxr_desktop.core.evaluate.options import DEFAULT_TEMPERATURE, METHODS, parse_threshold
from cxr_desktop.core.infer.methods import CAM_METHODS
from cxr_desktop.core.train.config import DEVICES

if TYPE_CHECKING:
    from cxr_desktop.core.data.spec import DatasetSpec
    from cxr_desktop.core.evaluate.evaluation import Evaluation
    from cxr_desktop.core.evaluate.localize import Localization
    from cxr_desktop.core.evaluate.suite import EvaluationSet


def _threshold(text: str) -> str | float:
    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    """A whole number, 0 or more (0: no bootstrap interval)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate runs (and their ensembles) on a held-out split",
        usage="cxr-desktop evaluate [options] RUN_DIR [RUN_DIR ...] DATASET",
        description="ROC AUC with a 95% bootstrap interval, sensitivity, specificity, "
                    "confusion matrix and the most confidently wrong images of one or more "
                    "runs on a split of a dataset. The last argument is the dataset.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="run folders (with best.pt or last.pt), then the dataset")
    parser.add_argument("--split", default="test",
                        help="train, val, test or all (default: test)")
    parser.add_argument("--ensemble", choices=(*METHODS, "all"), default="all",
                        help="ensemble method for 2+ runs (default: all three)")
    parser.add_argument("--temperature", type=_positive, default=DEFAULT_TEMPERATURE,
                        help="softmax temperature of the AUC-weighted ensemble")
    parser.add_argument("--threshold", type=_threshold, default="run",
                        metavar="run|youden|sens:0.9|FLOAT",
                        help="operating point: the run's, Youden's J, a target sensitivity "
                             "or a number (default: run)")
    parser.add_argument("--bootstrap", type=_count, default=1000, metavar="N",
                        help="bootstrap resamples of the AUC interval (default 1000; 0: no "
                             "interval)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", metavar="DIR",
                        help="write predictions.csv, summary.json, roc.png, confusion.png "
                             "(with --localization also localization.csv and misses/*.png)")
    parser.add_argument("--localization", action="store_true",
                        help="also score where the maps point on the annotated positives "
                             "(pointing game, energy in boxes, FROC)")
    parser.add_argument("--cam", choices=CAM_METHODS, default="gradcam",
                        help="the map scored by --localization (default gradcam)")
    parser.add_argument("--layer", metavar="NAME",
                        help="the block the map is taken from (default: the last)")
    parser.set_defaults(dataset=None)
    add_dataset_arguments(parser)
    parser.set_defaults(func=run)


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)


def _line(name: str, evaluation: Evaluation) -> str:
    low, high = evaluation.auc_ci
    threshold = evaluation.threshold
    shown = (_num(threshold, ".3f") if isinstance(threshold, float)
             else "arg-max" if threshold is None else "per finding")
    return (f"{name}: n={evaluation.n}  AUC {_num(evaluation.auc)} "
            f"[{_num(low)}, {_num(high)}]  accuracy {_num(evaluation.accuracy)}  "
            f"sensitivity {_num(evaluation.sensitivity)}  specificity "
            f"{_num(evaluation.specificity)}  threshold {shown}")


def _print_text(result: EvaluationSet) -> None:
    for evaluation in result.members:
        print(_line(evaluation.predictions.source, evaluation))
    for name, evaluation in result.ensembles.items():
        print(_line(f"ensemble {name}", evaluation))
    headline = result.headline
    if len(headline.per_class) > 1:
        for item in headline.per_class:
            print(f"  {item.name}: AUC {_num(item.auc)} [{_num(item.auc_ci[0])}, "
                  f"{_num(item.auc_ci[1])}]  sensitivity {_num(item.counts.sensitivity)}  "
                  f"specificity {_num(item.counts.specificity)}  n={item.n}")
    for loss in headline.top_losses[:5]:
        print(f"  wrong: {loss.path}  truth {loss.truth}, said {loss.predicted} "
              f"(p={loss.probability:.3f})")


def run(args: argparse.Namespace) -> int:
    if len(args.paths) < 2:
        raise CxrError(f"{args.paths[0]}: give one or more RUN_DIRs and then the DATASET")
    # Imported here: torch and scikit-learn take seconds to import, and every subcommand's
    # module is imported to build the parser; the report (matplotlib) only with --report.
    from cxr_desktop.core.data import open_dataset
    from cxr_desktop.core.evaluate.suite import evaluate_runs
    from cxr_desktop.core.runs.folder import make_dirs, remove_empty_dirs

    *run_dirs, args.dataset = args.paths
    options = dataset_options(args)
    # The report folder is made first: a path that cannot be one fails before the work.
    created = make_dirs(args.report, "report folder") if args.report else []
    try:
        spec = open_dataset(args.dataset, **options)
        methods = METHODS if args.ensemble == "all" else (args.ensemble,)
        result = evaluate_runs(run_dirs, spec, args.split, methods=methods,
                               threshold=args.threshold, temperature=args.temperature,
                               n_boot=args.bootstrap, seed=args.seed, device=args.device)
        localized = _localize(args, run_dirs, spec) if args.localization else []
        if args.report:
            from cxr_desktop.core.evaluate.report import write_report

            written = write_report(args.report, result)
            written += _localization_reports(args.report, localized, spec)
    except BaseException:
        remove_empty_dirs(created)
        raise
    for note in result.headline.predictions.notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in result.headline.predictions.warnings:
        print(f"cxr-desktop: warning: {warning}", file=sys.stderr)
    if result.headline.predictions.excluded:
        excluded = result.headline.predictions.excluded
        print(f"{len(excluded)} unreadable image(s) left out, first: {excluded[0]}",
              file=sys.stderr)
    if args.report:
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    for localization, member in zip(localized, result.members, strict=False):
        warning = localization.shortcut_warning(member.auc)
        if warning:
            print(f"cxr-desktop: warning: {localization.run_dir}: {warning}", file=sys.stderr)
        for note in localization.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.json:
        out = result.to_dict()
        if localized:
            out["localization"] = localized[0].to_dict()
        if len(localized) > 1:
            out["localization_runs"] = [loc.to_dict() for loc in localized]
        print(json.dumps(out, sort_keys=True))
    else:
        _print_text(result)
        for localization in localized:
            print(_localization_line(localization))
    return 0


def _localize(args: argparse.Namespace, run_dirs: list[str],
              spec: DatasetSpec) -> list[Localization]:
    from cxr_desktop.core.evaluate.localize import localize

    return [localize(run_dir, spec, args.split, method=args.cam, layer=args.layer,
                     device=args.device, n_boot=args.bootstrap, seed=args.seed)
            for run_dir in run_dirs]


def _localization_reports(directory: str, localized: list[Localization],
                          spec: DatasetSpec) -> list[Path]:
    from cxr_desktop.core.evaluate.localization_report import write_localization_report

    written: list[Path] = []
    for number, localization in enumerate(localized):
        target = Path(directory) if number == 0 else Path(directory) / f"run{number + 1}"
        written += write_localization_report(target, localization, spec)
    return written


def _localization_line(loc: Localization) -> str:
    low, high = loc.pointing_game_ci
    return (f"localization {loc.run_dir} ({loc.method}, {loc.layer}): pointing game "
            f"{_num(loc.pointing_game, '.3f')} [{_num(low, '.3f')}, {_num(high, '.3f')}] on "
            f"{loc.n} annotated positives, energy in boxes {_num(loc.energy_in_boxes, '.3f')},"
            f" FROC score {_num(loc.froc.score, '.3f')}")
