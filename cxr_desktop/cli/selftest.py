"""``cxr-desktop self-test [--json]``: prove that this installation (or bundle) works offline.

Checks, each timed: Qt starts (offscreen when there is no display) and the main window opens
and closes; pydicom finds a decoder for every compressed transfer syntax the app promises;
the JPEG 2000 DICOM and the PNG in ``resources/samples/`` load through the app's chain (the
DICOM once more through pylibjpeg itself, the plugin found by entry points, which is what a
bundle without package metadata loses); a small CNN, and EfficientNet-Lite0 when its ImageNet
weights are on this machine, predict and explain (CAM, Grad-CAM) on the compute device.
Exit status 0 when every check passed, 1 otherwise. It never touches the network.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from cxr_desktop import __version__
from cxr_desktop.core.errors import first_line
from cxr_desktop.core.paths import resources_dir

SAMPLE_DICOM = "chest_j2k.dcm"
SAMPLE_PNG = "chest.png"
#: The transfer syntaxes reported, by the name the report gives them.
DECODER_SYNTAXES = {
    "JPEG 2000": "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "JPEG lossless": "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "JPEG-LS": "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "RLE": "1.2.840.10008.1.2.5",  # RLE Lossless
}
LITE0 = "efficientnet_lite0"


@dataclass
class CheckResult:
    """One check: ``ok`` is None when it was skipped (which is not a failure)."""

    name: str
    ok: bool | None
    ms: float
    detail: str


def use_offscreen_without_display() -> bool:
    """Set ``QT_QPA_PLATFORM=offscreen`` on X11/Wayland systems with no display; say if set."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return False
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return False
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return True


def check_qt() -> str:
    """Create the QApplication and the main window, show it, close it."""
    use_offscreen_without_display()
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from cxr_desktop.gui.app import create_app
    from cxr_desktop.gui.main_window import MainWindow

    app = create_app()
    window = MainWindow()
    window.show()
    QApplication.processEvents()
    shown = window.isVisible()
    window.close()  # waits for its start-up work (the device probe, imports) to end
    deadline = time.monotonic() + 120
    while window.isVisible() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    closed = not window.isVisible()
    window.deleteLater()  # here, on the GUI thread, not by a collection in some other thread
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    if not shown:
        raise RuntimeError("the main window did not become visible")
    if not closed:
        raise RuntimeError("the main window did not close within 120 s")
    return f"main window shown and closed on the {app.platformName()} platform"


def decoders() -> dict[str, list[str]]:
    """The pixel-data plugins pydicom finds usable here, per transfer syntax."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    return {name: sorted(get_decoder(UID(uid)).available_plugins)
            for name, uid in DECODER_SYNTAXES.items()}


def check_decoders() -> str:
    found = decoders()
    missing = [name for name, plugins in found.items() if not plugins]
    if missing:
        raise RuntimeError(f"no decoder for {', '.join(missing)}")
    return "; ".join(f"{name}: {', '.join(plugins)}" for name, plugins in found.items())


def check_dicom() -> str:
    """The JPEG 2000 sample through the app's chain, and through pylibjpeg explicitly."""
    import numpy as np
    from pydicom import dcmread
    from pydicom.pixels import pixel_array

    from cxr_desktop.core.io import load_image, to_display

    path = resources_dir() / "samples" / SAMPLE_DICOM
    syntax = dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if "JPEG 2000" not in syntax.name:
        raise RuntimeError(f"{path.name} is {syntax.name}, not JPEG 2000")
    radiograph = load_image(path)
    display = to_display(radiograph)
    direct = pixel_array(path, decoding_plugin="pylibjpeg")
    if direct.shape != display.shape or not np.ptp(display):
        raise RuntimeError(f"decoded {direct.shape} by pylibjpeg but {display.shape} by the app")
    return (f"{path.name}: {syntax.name}, {radiograph.columns}x{radiograph.rows} "
            f"{radiograph.photometric}, {radiograph.bits_stored} bits; pylibjpeg decodes it")


def check_png() -> str:
    import numpy as np

    from cxr_desktop.core.io import load_image, to_display

    path = resources_dir() / "samples" / SAMPLE_PNG
    radiograph = load_image(path)
    if not np.ptp(to_display(radiograph)):
        raise RuntimeError(f"{path.name} decoded to a flat image")
    return f"{path.name}: {radiograph.columns}x{radiograph.rows}, {radiograph.bits_stored} bits"


def run_model(arch: str, device: str, pretrained: str, methods: tuple[str, ...]) -> str:
    """Build ``arch`` for two classes, predict on the DICOM sample, one map per CAM method."""
    import numpy as np
    import torch

    from cxr_desktop.core.infer import CamExplainer, Predictor
    from cxr_desktop.core.io import INTENSITY_CHAIN, load_image
    from cxr_desktop.core.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # a repeatable random init (small_cnn has no pretrained weights)
        model = build_model(arch, 1, pretrained=pretrained)
    metadata = {"arch": arch, "task": "binary", "classes": ["normal", "abnormal"],
                "output_names": ["abnormal"], "input_size": model.input_size,
                "threshold": 0.5, "intensity_chain": INTENSITY_CHAIN, "training_scope": None}
    predictor = Predictor(model, metadata, device=device)
    radiograph = load_image(resources_dir() / "samples" / SAMPLE_DICOM)
    prediction = predictor.predict(radiograph)
    if not np.isfinite(list(prediction.probabilities.values())).all():
        raise RuntimeError(f"{arch} predicted {prediction.probabilities}")
    explainer = CamExplainer(predictor)
    for method in methods:
        cam = explainer.explain(radiograph, method, prediction=prediction)
        # A random model's Grad-CAM may be flat (no positive gradient): only the machinery
        # is checked here, a map on the original grid with finite values.
        if (cam.map.shape != (radiograph.rows, radiograph.columns)
                or not np.isfinite(cam.map).all()):
            raise RuntimeError(f"{arch} {method}: a map of {cam.map.shape} with "
                               f"{int((~np.isfinite(cam.map)).sum())} non-finite values")
    weights = "ImageNet weights" if model.pretrained_source else "random init"
    return (f"{arch} ({weights}) on {predictor.device.type}: p(abnormal)="
            f"{prediction.probabilities['abnormal']:.3f}, {' and '.join(methods)} "
            f"{radiograph.columns}x{radiograph.rows}")


def lite0_weights() -> str | None:
    """The EfficientNet-Lite0 ImageNet weights file found offline, or None."""
    from cxr_desktop.core.models import get_arch
    from cxr_desktop.core.models.weights import find_weights

    path = find_weights(get_arch(LITE0))
    return None if path is None else str(path)


def timed(name: str, check: Callable[[], str]) -> CheckResult:
    start = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # a self-test reports every failure and goes on to the next
        detail, ok = f"{type(exc).__name__}: {first_line(exc)}", False
    return CheckResult(name, ok, (time.perf_counter() - start) * 1000.0, detail)


def run_checks(device: str = "auto", gui: bool = True) -> list[CheckResult]:
    """Every check in order; ``gui=False`` leaves Qt out (for a machine without Qt libs)."""
    results = []
    if gui:
        results.append(timed("qt", check_qt))
    results += [timed("decoders", check_decoders), timed("dicom_j2k", check_dicom),
                timed("png", check_png),
                timed("model_small_cnn", lambda: run_model("small_cnn", device, "none",
                                                           ("cam", "gradcam")))]
    weights = lite0_weights()
    if weights is None:
        results.append(CheckResult(f"model_{LITE0}", None, 0.0,
                                   "skipped: no ImageNet weights found offline"))
    else:
        results.append(timed(f"model_{LITE0}", lambda: run_model(LITE0, device, weights,
                                                                 ("cam",))))
    return results


def distribution_version(*names: str) -> str | None:
    """The version of the first of ``names`` installed, from package metadata (which imports
    nothing: the report names PySide6 without loading Qt); None when none is."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def environment(device: str = "auto") -> dict[str, object]:
    """Versions, the compute device and the decoders: the head of the report."""
    import pydicom
    import torch

    from cxr_desktop.core.device import describe_device

    try:
        device_label = describe_device(device).label
    except Exception as exc:  # reported, and the model checks fail with the same reason
        device_label = f"unavailable ({first_line(exc)})"
    return {"app": __version__, "python": platform.python_version(),
            "platform": platform.platform(), "frozen": bool(getattr(sys, "frozen", False)),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "pydicom": pydicom.__version__,
            "pyside6": distribution_version("PySide6-Essentials", "PySide6"),
            "device": device_label,
            "resources": str(resources_dir()), "decoders": decoders()}


def report_lines(env: dict[str, object], results: list[CheckResult]) -> list[str]:
    cuda = f"CUDA {env['cuda']}" if env["cuda"] else "CPU-only build"
    lines = [f"cxr-desktop {env['app']} self-test{' (bundle)' if env['frozen'] else ''}",
             f"  Python {env['python']} on {env['platform']}",
             f"  torch {env['torch']} ({cuda}), pydicom {env['pydicom']}, "
             f"PySide6 {env['pyside6']}",
             f"  device: {env['device']}",
             f"  resources: {env['resources']}"]
    for name, plugins in env["decoders"].items():  # type: ignore[union-attr]
        lines.append(f"  decoders {name}: {', '.join(plugins) or 'NONE'}")
    for result in results:
        status = {True: "ok  ", False: "FAIL", None: "skip"}[result.ok]
        lines.append(f"{status} {result.name:<24} {result.ms:8.0f} ms  {result.detail}")
    failed = sum(result.ok is False for result in results)
    lines.append("self-test passed" if not failed else f"self-test FAILED ({failed} check(s))")
    return lines


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "self-test", help="check that Qt, the DICOM decoders and the models work here",
        description="Start Qt (offscreen without a display), decode the bundled JPEG 2000 "
        "DICOM and PNG, predict and compute a CAM on the compute device; print versions, the "
        "device and the decoders found. Exit status 0 when every check passed, else 1.")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="compute device for the model checks (default: auto)")
    parser.add_argument("--no-gui", action="store_true", help="leave out the Qt check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    results = run_checks(args.device, gui=not args.no_gui)
    env = environment(args.device)
    passed = not any(result.ok is False for result in results)
    total_ms = (time.perf_counter() - start) * 1000.0
    if args.json:
        print(json.dumps({**env, "checks": [{**asdict(r), "ms": round(r.ms, 1)} for r in results],
                          "passed": passed,
                          "total_ms": round(total_ms, 1)}))
    else:
        print("\n".join(report_lines(env, results)))
        print(f"total {total_ms / 1000.0:.1f} s")
    return 0 if passed else 1
