"""``cxr-desktop predict MODEL FILE_OR_DIR...``: probabilities, scope and CAM peaks per image.

MODEL is a run folder, a checkpoint, or a bare weights file with ``--arch`` and
``--classes``. Folders are walked for PNG, JPEG and DICOM files. Every file is processed
even when some fail; the exit status is 1 when any did. Without ``--cam-out`` images are
decoded at the smallest resolution that gives the model's input (see
``cxr_desktop.core.io.reduced``); with it, in full, for the overlay PNGs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from cxr_desktop.core.atomic import atomic_write
from cxr_desktop.core.data.importers.paths import walk_images
from cxr_desktop.core.errors import CxrError, FileError
from cxr_desktop.core.infer.methods import CAM_METHODS
from cxr_desktop.core.io import load_image, to_display

if TYPE_CHECKING:
    from cxr_desktop.core.infer import CamExplainer, Predictor

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


def image_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The files named, and the image files under the folders named, in order, each once
    (by its resolved path: a file named and also in a folder named is listed the first
    time); and one message per folder that could not be listed (its images are missing)."""
    found: list[Path] = []
    unreadable: list[str] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            found.append(path)

    for name in paths:
        path = Path(name)
        if path.is_dir():
            files, problems = walk_images(path)
            for rel in files:
                add(path / rel)
            unreadable += [f"{path / p.paths[0]}: {p.detail}" for p in problems]
        else:
            add(path)
    return found, unreadable


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
            args: argparse.Namespace, out_name: Path | None) -> dict[str, Any]:
    """One file's JSON record; raises CxrError when the file or its CAM fails."""
    from cxr_desktop.core.io.reduced import ModelImage, load_image_for_model

    start = time.perf_counter()
    if out_name is not None:
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
    record["ms"] = round((time.perf_counter() - start) * 1000.0, 1)
    record["error"] = None
    return record


def describe(record: dict[str, Any]) -> str:
    if record["error"]:
        error = record["error"]
        return error if error.startswith(record["path"]) else f"{record['path']}: {error}"
    top = record["top_class"]
    text = f"{record['path']}: {top} {record['probabilities'][top]:.3f}"
    if not record["in_scope"]:
        text += f" [out of scope: {record['scope_reason']}]"
    if record["cam_peak"]:
        x, y = record["cam_peak"]
        text += f" {record['cam']} peak ({x}, {y})"
    return text


def run(args: argparse.Namespace) -> int:
    from cxr_desktop.core.runs.folder import make_dirs, remove_empty_dirs

    # Made first, so a path that cannot be a folder fails before the model loads; removed
    # again when no overlay went into it.
    created = make_dirs(args.cam_out, "overlay folder") if args.cam_out else []
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
    if args.cam_out and not args.cam:
        args.cam = "cam" if predictor.model.cam_exact else "gradcam"
    explainer = None
    if args.cam:
        from cxr_desktop.core.infer.cam import CamExplainer

        explainer = CamExplainer(predictor)
    out_dir = Path(args.cam_out) if args.cam_out else None
    files, unreadable = image_files(args.paths)
    for message in unreadable:
        print(f"cxr-desktop: {message}", file=sys.stderr)
    if not files:
        print("cxr-desktop: no image files found", file=sys.stderr)
        return 1
    failed, used = 0, set()
    for path in files:
        out_name = overlay_name(out_dir, path, args.cam, used) if out_dir else None
        try:
            record = process(path, predictor, explainer, args, out_name)
        except CxrError as exc:
            failed += 1
            record = {"path": str(path), "probabilities": None, "top_class": None,
                      "in_scope": None, "scope_reason": None, "cam_peak": None, "ms": None,
                      "error": str(exc)}
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            print(describe(record), flush=True)
    if failed and not args.json:
        print(f"cxr-desktop: {failed} of {len(files)} file(s) failed", file=sys.stderr)
    return 1 if failed or unreadable else 0
