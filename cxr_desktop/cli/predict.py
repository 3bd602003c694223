"""``cxr-desktop predict MODEL FILE_OR_DIR...``: probabilities, scope and CAM peaks per image.

MODEL is a run folder, a checkpoint, or a bare weights file with ``--arch`` and
``--classes``. Folders are walked for PNG, JPEG and DICOM files. Every file is processed
even when some fail; the exit status is 1 when any did. Without ``--cam-out`` images are
decoded at the smallest resolution that gives the model's input (see
``cxr_desktop.core.io.reduced``); with it, in full, for the overlay PNGs. ``--dicom-out``
(also in full) adds each DICOM input's results to its study as DICOM objects
(``cxr_desktop.core.dicom_out``); a PNG or JPEG gets a note and none.

Scope, in ``--json``: ``scope_image`` (``score``, ``threshold``, ``false_alarm_rate``,
``method``, ``in_scope``; null when the run has no scope.npz) and ``scope_tags``
(``in_scope``, ``reason``) are the two signals apart; ``in_scope`` and ``scope_reason``
combine them (out when either says out).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from cxr_desktop.core.atomic import atomic_write
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.infer.methods import CAM_METHODS
from cxr_desktop.core.io import load_image, to_display
from cxr_desktop.core.io.fileset import expand_inputs

if TYPE_CHECKING:
    from cxr_desktop.core.dicom_out import ResultWriter, RunInfo
    from cxr_desktop.core.infer import CamExplainer, CamResult, Prediction, Predictor
    from cxr_desktop.core.io import Radiograph

DEFAULT_COLORMAP = "jet"


def _opacity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _colormap(text: str) -> str:
    """A matplotlib colour map's name (matplotlib is imported only for a name given)."""
    if text == DEFAULT_COLORMAP:
        return text
    import matplotlib

    if text not in matplotlib.colormaps:
        known = ", ".join(sorted(n for n in matplotlib.colormaps if not n.endswith("_r"))[:12])
        raise argparse.ArgumentTypeError(f"unknown matplotlib colour map {text!r} (e.g. "
                                         f"{known}, ...)")
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict on images with a trained model",
        description="Class probabilities, an out-of-scope check and (with --cam) the peak "
        "of a class activation map for each image. Exit status 1 if any file failed or a "
        "folder could not be listed.")
    parser.add_argument("model", metavar="MODEL",
                        help="run folder, checkpoint (.pt) or weights file (with --arch)")
    parser.add_argument("paths", metavar="FILE_OR_DIR", nargs="+",
                        help="images, or folders searched for images")
    parser.add_argument("--cam", choices=CAM_METHODS, help="compute a CAM map")
    parser.add_argument("--cam-layer", metavar="NAME", help="block for the CAM (default last)")
    parser.add_argument("--cam-class", metavar="NAME",
                        help="class of the CAM (default: the positive class of a binary "
                        "task, else the most probable one)")
    parser.add_argument("--cam-out", metavar="DIR",
                        help="write a PNG of each image with its CAM overlay here")
    parser.add_argument("--opacity", type=_opacity, default=0.4, help="overlay opacity (0-1)")
    parser.add_argument("--colormap", type=_colormap, default=DEFAULT_COLORMAP,
                        help="matplotlib colour map (default jet)")
    parser.add_argument("--dicom-out", metavar="DIR",
                        help="write each DICOM input's results here as DICOM in its study: an "
                        "SR, the CAM as a Secondary Capture and its peak as a presentation "
                        "state (new series; never the input's folder)")
    parser.add_argument("--json", action="store_true", help="one JSON line per file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--which", choices=("best", "last"), default="best",
                        help="checkpoint of a run folder")
    bare = parser.add_argument_group("bare weights files")
    bare.add_argument("--arch", help="architecture of the weights")
    bare.add_argument("--classes", help="class names in output order, comma separated")
    bare.add_argument("--task", choices=("binary", "multiclass", "multilabel"))
    bare.add_argument("--size", type=int, help="input size (default: the architecture's)")
    parser.set_defaults(func=run)


def overlay_name(out_dir: Path, path: Path, method: str, used: set[str]) -> Path:
    """``<stem>_<method>.png``, numbered when two inputs share a stem."""
    stem, number = f"{path.stem}_{method}", 1
    name = f"{stem}.png"
    while name in used:
        number += 1
        name = f"{stem}-{number}.png"
    used.add(name)
    return out_dir / name


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an overlay atomically; FileError naming it when it cannot be written."""
    try:
        atomic_write(path, lambda handle: Image.fromarray(rgb).save(handle, format="PNG"))
    except OSError as exc:
        raise FileError(path, f"cannot write the overlay ({exc.strerror or exc})") from None


def process(path: Path, predictor: Predictor, explainer: CamExplainer | None,
            args: argparse.Namespace, out_name: Path | None,
            dicom: tuple[ResultWriter, RunInfo] | None = None) -> dict[str, Any]:
    """One file's JSON record; raises CxrError when the file or its CAM fails."""
    from cxr_desktop.core.io.reduced import ModelImage, load_image_for_model

    start = time.perf_counter()
    cam = None
    if out_name is not None or dicom is not None:
        radiograph = load_image(path)
        image = ModelImage(radiograph, radiograph.rows, radiograph.columns, 1)
    else:
        image = load_image_for_model(path, predictor.input_size)
    prediction = predictor.predict(image.radiograph)
    record: dict[str, Any] = {"path": str(path), **prediction.to_dict(), "cam": None,
                              "cam_class": None, "cam_layer": None, "cam_peak": None}
    if explainer is not None:
        # ScoreCAM reports its progress through tqdm on stderr: keep the console clean.
        with contextlib.redirect_stderr(io.StringIO()):
            cam = explainer.explain(image.radiograph, args.cam, args.cam_class, args.cam_layer,
                                    prediction=prediction, shape=image.shape)
        record.update(cam=cam.method, cam_class=cam.target_class, cam_layer=cam.layer,
                      cam_peak=list(cam.peak) if cam.peak else None)
        if out_name is not None:
            from cxr_desktop.core.infer.cam import overlay_rgb

            rgb = overlay_rgb(to_display(image.radiograph), cam.map, args.opacity,
                              args.colormap)
            write_png(out_name, rgb)
            record["overlay"] = str(out_name)
    if dicom is not None:
        record["dicom_out"] = write_dicom(dicom, image.radiograph, prediction, cam, args)
    record["ms"] = round((time.perf_counter() - start) * 1000.0, 1)
    record["error"] = None
    return record


def write_dicom(dicom: tuple[ResultWriter, RunInfo], radiograph: Radiograph,
                prediction: Prediction, cam: CamResult | None,
                args: argparse.Namespace) -> list[str]:
    """The DICOM files written for one image; a PNG or JPEG has no study: a note, none."""
    from cxr_desktop.core.dicom_out import NoStudyError

    writer, run = dicom
    try:
        paths = writer.results(radiograph, prediction, cam, run, opacity=args.opacity,
                               colormap=args.colormap)
    except NoStudyError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return []
    return [str(path) for path in paths]


def describe(record: dict[str, Any]) -> str:
    if record["error"]:
        error = record["error"]
        return error if error.startswith(record["path"]) else f"{record['path']}: {error}"
    top = record["top_class"]
    text = f"{record['path']}: {top} {record['probabilities'][top]:.3f}"
    image = record.get("scope_image")
    if not record["in_scope"]:
        text += f" [out of scope: {record['scope_reason']}]"
    elif image:
        text += (f", scope score {image['score']:.1f} (threshold {image['threshold']:.1f} "
                 f"at {image['false_alarm_rate']:.0%} false alarms)")
    if record["cam_peak"]:
        x, y = record["cam_peak"]
        text += f" {record['cam']} peak ({x}, {y})"
    if record.get("dicom_out"):
        text += f", {len(record['dicom_out'])} DICOM file(s) written"
    return text


def run(args: argparse.Namespace) -> int:
    from cxr_desktop.core.runs.folder import make_dirs, remove_empty_dirs

    if args.dicom_out:
        from cxr_desktop.core.dicom_out import check_out_dir

        check_out_dir(args.dicom_out, args.paths)
    # Made first, so a path that cannot be a folder fails before the model loads; removed
    # again when no overlay went into it.
    created = make_dirs(args.cam_out, "overlay folder") if args.cam_out else []
    created += make_dirs(args.dicom_out, "DICOM folder") if args.dicom_out else []
    try:
        return _predict(args)
    finally:
        remove_empty_dirs(created)


def _predict(args: argparse.Namespace) -> int:
    # The CAM module (grad-cam, seconds to import) only when a CAM is asked for.
    from cxr_desktop.core.infer.predictor import Predictor

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    predictor = Predictor.load(args.model, arch=args.arch, classes=classes, task=args.task,
                               size=args.size, which=args.which, device=args.device)
    for warning in predictor.warnings:
        print(f"cxr-desktop: warning: {warning}", file=sys.stderr)
    if (args.cam_out or args.dicom_out) and not args.cam:
        args.cam = "cam" if predictor.model.cam_exact else "gradcam"
    explainer = None
    if args.cam:
        from cxr_desktop.core.infer.cam import CamExplainer

        explainer = CamExplainer(predictor)
    out_dir = Path(args.cam_out) if args.cam_out else None
    dicom = None
    if args.dicom_out:
        from cxr_desktop.core.dicom_out import ResultWriter, RunInfo

        dicom = (ResultWriter(args.dicom_out), RunInfo.from_predictor(predictor))
    inputs = expand_inputs(args.paths)
    files, unreadable = inputs.files, inputs.unreadable
    for message in inputs.skipped:
        print(f"note: {message}", file=sys.stderr)
    for message in unreadable:
        print(f"cxr-desktop: {message}", file=sys.stderr)
    if not files:
        print("cxr-desktop: no image files found", file=sys.stderr)
        return 1
    failed, used = 0, set()
    for path in files:
        out_name = overlay_name(out_dir, path, args.cam, used) if out_dir else None
        try:
            record = process(path, predictor, explainer, args, out_name, dicom)
        except CxrError as exc:
            failed += 1
            record = {"path": str(path), "probabilities": None, "top_class": None,
                      "in_scope": None, "scope_reason": None, "scope_image": None,
                      "scope_tags": None, "cam_peak": None, "ms": None, "error": str(exc)}
        if path in inputs.groups:
            record["group"] = inputs.groups[path]
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            print(describe(record), flush=True)
    if failed and not args.json:
        print(f"cxr-desktop: {failed} of {len(files)} file(s) failed", file=sys.stderr)
    return 1 if failed or unreadable else 0
