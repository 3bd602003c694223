"""A model's results as DICOM objects in the input's own study, for PACS and DICOM viewers.

``write_results(source, prediction, cam, run, out_dir)`` writes, for one DICOM radiograph:

- a Comprehensive 3D SR holding a TID 1500 Measurement Report (``sr_report``): each class
  probability, the run's threshold, the predicted findings, the CAM peak as a point;
- a Secondary Capture of the CAM blended over the image (``overlay_sc``), when there is a map;
- a Grayscale Softcopy Presentation State (``overlay_pr``) with the CAM peak and the
  annotation shapes drawn over the original pixels, when there is a peak or a shape.

``write_annotation(source, shapes, out_dir)`` writes the presentation state alone. Every
object keeps the input's patient and study (same StudyInstanceUID) and goes into a new
series named after the model and run (one series per kind: a DICOM series has one
modality). Files are named ``<new SOPInstanceUID>_<kind>.dcm`` (never the input's UIDs, which
the app treats as identifiers), written atomically, and never into the input's folder or
below it. A PNG or JPEG has no study to join: ``NoStudyError``.

Coordinates: DICOM image coordinates (SR SCOORD, GSPS PIXEL units) put 0.0\\0.0 at the top
left corner of the top left pixel, so the centre of pixel (column x, row y) is
(x + 0.5, y + 0.5). The CAM peak, a pixel index, is written at its pixel's centre; annotation
shapes, drawn on a canvas whose pixel (x, y) covers [x, x + 1), are written as they are.
A multi-frame input is referenced as a whole (the app reads and shows its first frame).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from cxr_desktop import __version__
from cxr_desktop.core.atomic import atomic_write
from cxr_desktop.core.errors import FileError, first_line
from cxr_desktop.core.io import Radiograph, load_image
from cxr_desktop.core.io.warnings_capture import capture_warnings

if TYPE_CHECKING:
    from cxr_desktop.core.annotations import Shape
    from cxr_desktop.core.infer import CamResult, Prediction, Predictor

RESEARCH_NOTE = "FOR RESEARCH USE, NOT FOR DIAGNOSIS"
MANUFACTURER = "cxr-desktop"
#: Series numbers of the new series: high, so that they sort after the study's own series.
SERIES_NUMBERS = {"sr": 9101, "sc": 9102, "pr": 9103}
_KIND_WORDS = {"sr": "SR", "sc": "CAM", "pr": "PR"}
_REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_CHECKPOINT_NAMES = ("best.pt", "last.pt")


class NoStudyError(FileError):
    """The image is not a DICOM file: it has no study the results could be added to."""


@dataclass(frozen=True)
class RunInfo:
    """The model as the DICOM objects name it (observer device, algorithm, series).

    ``threshold_classes`` are the classes the run's threshold decides (binary: the positive
    class; multilabel: every class; multiclass: none, the top class is the finding).
    """

    model_name: str
    model_version: str
    run_id: str
    device_uid: str
    threshold_classes: tuple[str, ...] = ()
    app_version: str = __version__

    @classmethod
    def from_predictor(cls, predictor: Predictor) -> RunInfo:
        """The run of a loaded Predictor: its folder's name (or the weights file's stem) is
        the run id; the device UID is derived from the checkpoint's metadata, so it stays the
        same for every image and every session."""
        meta = predictor.metadata
        source = predictor.source or Path("model")
        run_id = source.parent.name if source.name in _CHECKPOINT_NAMES else source.stem
        arch = str(meta.get("arch") or "model")
        version = f"{source.name}, epoch {meta.get('epoch', '?')}"
        if meta.get("saved"):
            version += f", saved {meta['saved']}"
        entropy = ["cxr-desktop", arch, run_id, version, str(meta.get("dataset_fingerprint"))]
        thresholded = () if predictor.task == "multiclass" else tuple(predictor.output_names)
        return cls(arch, version, run_id, generate_uid(entropy_srcs=entropy), thresholded)

    @property
    def label(self) -> str:
        """The model and run in a few words (a run folder's name already holds the arch)."""
        return self.run_id if self.model_name in self.run_id else f"{self.model_name} {self.run_id}"


@dataclass(frozen=True)
class Placement:
    """Where one new instance goes: its series and its own identity."""

    series_uid: str
    series_number: int
    series_description: str
    sop_uid: str
    instance_number: int


@dataclass(frozen=True)
class DicomSource:
    """The radiograph as loaded and its DICOM header (without pixels), for references."""

    radiograph: Radiograph
    header: Dataset
    path: Path

    @property
    def grayscale(self) -> bool:
        """One sample per pixel: what a grayscale presentation state can be drawn on."""
        return int(self.header.get("SamplesPerPixel") or 1) == 1


def series_description(label: str, kind: str) -> str:
    """``<model and run> <kind>: research use, not for diagnosis``, within the 64 characters
    of a DICOM LO (the model and run shortened when they do not fit)."""
    tail = f" {_KIND_WORDS[kind]}: research use, not for diagnosis"
    return label[: 64 - len(tail)] + tail


def open_source(source: Radiograph | str | os.PathLike[str]) -> DicomSource:
    """The radiograph (loaded when a path is given) and its header; NoStudyError for a PNG
    or JPEG, FileError when the header lacks the UIDs that place results in the study."""
    radiograph = source if isinstance(source, Radiograph) else load_image(source)
    path = Path(radiograph.path)
    if radiograph.source_format != "DICOM":
        raise NoStudyError(path, "not a DICOM file, so there is no study to add the results "
                                 "to; DICOM output skipped")
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # pydicom raises many types on a file changed since it loaded
        raise FileError(path, f"cannot read the DICOM header again ({first_line(exc)})") \
            from None
    for keyword in _REQUIRED:
        if not str(header.get(keyword) or "").strip():
            raise FileError(path, f"has no {keyword}, so the results cannot be placed in its "
                                  "study")
    return DicomSource(radiograph, header, path)


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def check_out_dir(out_dir: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]
                  ) -> None:
    """FileError when ``out_dir`` is the folder of an input (a file's folder, or a folder
    given as input) or lies inside one: nothing is ever written beside the inputs."""
    for name in inputs:
        path = Path(name)
        folder = path if path.is_dir() else path.parent
        if _inside(Path(out_dir), folder):
            raise FileError(out_dir, "is the input's folder or inside it, where nothing is "
                                     "written; choose a folder elsewhere")


def save(dataset: Dataset, path: Path) -> Path:
    """Write one DICOM file (preamble and file meta) atomically; FileError naming it."""
    try:
        atomic_write(path, lambda handle: dataset.save_as(handle, enforce_file_format=True))
    except OSError as exc:
        raise FileError(path, f"cannot write the DICOM file ({exc.strerror or exc})") from None
    return path


@contextmanager
def building(path: Path, what: str) -> Iterator[None]:
    """Around highdicom's constructors. Their warnings quote the values they doubt (a
    referring physician's name copied from the input): they are dropped, never shown. Their
    errors become one FileError naming the file, the values a ValueError quotes cut out for
    the same reason."""
    try:
        with capture_warnings():
            yield
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        reason = first_line(exc)
        if isinstance(exc, ValueError):  # the kind that quotes values
            reason = _QUOTED.sub("'...'", reason)
        raise FileError(path, f"cannot build the {what} ({type(exc).__name__}: {reason})") \
            from None


class ResultWriter:
    """Writes DICOM results into ``out_dir``; what one writer writes for one study shares a
    series per kind and model (the CLI uses one writer for all its images)."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out_dir = Path(out_dir)
        self._series: dict[tuple[str, str, str], tuple[str, int]] = {}

    def place(self, study_uid: str, kind: str, label: str) -> Placement:
        """A new instance in this writer's series of ``kind`` for the study."""
        key = (study_uid, kind, label)
        uid, count = self._series.get(key, (generate_uid(), 0))
        self._series[key] = (uid, count + 1)
        return Placement(uid, SERIES_NUMBERS[kind], series_description(label, kind),
                         generate_uid(), count + 1)

    def _prepare(self, source: Radiograph | str | os.PathLike[str]) -> DicomSource:
        dicom = open_source(source)
        check_out_dir(self.out_dir, [dicom.path])
        return dicom

    def _write(self, dataset: Dataset, kind: str) -> Path:
        return save(dataset, self.out_dir / f"{dataset.SOPInstanceUID}_{kind}.dcm")

    def results(self, source: Radiograph | str | os.PathLike[str], prediction: Prediction,
                cam: CamResult | None, run: RunInfo, *, shapes: Sequence[Shape] = (),
                window: tuple[float, float] | None = None, opacity: float = 0.4,
                colormap: str = "jet") -> list[Path]:
        """The SR, and with a CAM the Secondary Capture, and with a peak or shapes the
        presentation state (grayscale images only), of one image; the paths written, in
        that order."""
        from cxr_desktop.core.dicom_out.overlay_pr import build_gsps
        from cxr_desktop.core.dicom_out.overlay_sc import build_sc
        from cxr_desktop.core.dicom_out.sr_report import build_sr

        dicom = self._prepare(source)
        study = str(dicom.header.StudyInstanceUID)
        built = []
        with building(dicom.path, "DICOM results"):
            built.append((build_sr(dicom, prediction, cam, run,
                                   self.place(study, "sr", run.label)), "sr"))
            if cam is not None:
                built.append((build_sc(dicom, cam, run, self.place(study, "sc", run.label),
                                       window, opacity, colormap), "sc"))
            marks = shapes or (cam is not None and cam.peak is not None)
            if marks and dicom.grayscale:
                built.append((build_gsps(dicom, shapes, cam, run,
                                         self.place(study, "pr", run.label)), "pr"))
        return [self._write(dataset, kind) for dataset, kind in built]

    def annotation(self, source: Radiograph | str | os.PathLike[str],
                   shapes: Sequence[Shape]) -> Path:
        """The shapes as a presentation state on the image; FileError when there are none."""
        from cxr_desktop.core.dicom_out.overlay_pr import build_gsps

        dicom = self._prepare(source)
        if not shapes:
            raise FileError(dicom.path, "has no annotation shapes to export")
        if not dicom.grayscale:
            raise FileError(dicom.path, "is a colour image: annotations are exported as a "
                                        "grayscale presentation state, which it cannot take")
        place = self.place(str(dicom.header.StudyInstanceUID), "pr", "annotations")
        with building(dicom.path, "presentation state"):
            dataset = build_gsps(dicom, shapes, None, None, place)
        return self._write(dataset, "pr")


def write_results(source: Radiograph | str | os.PathLike[str], prediction: Prediction,
                  cam: CamResult | None, run: RunInfo, out_dir: str | os.PathLike[str], *,
                  shapes: Sequence[Shape] = (), window: tuple[float, float] | None = None,
                  opacity: float = 0.4, colormap: str = "jet") -> list[Path]:
    """One image's results as DICOM files in ``out_dir`` (see the module's docstring).

    ``source`` is the Radiograph the prediction was made on (or its path); ``window`` the
    window the overlay is shown with (default the file's own); ``shapes`` are drawn in the
    presentation state beside the CAM peak. Raises NoStudyError for a PNG or JPEG and
    FileError naming the file for anything else that stops the writing.
    """
    return ResultWriter(out_dir).results(source, prediction, cam, run, shapes=shapes,
                                         window=window, opacity=opacity, colormap=colormap)


def write_annotation(source: Radiograph | str | os.PathLike[str], shapes: Sequence[Shape],
                     out_dir: str | os.PathLike[str]) -> Path:
    """Saved annotation shapes as a Grayscale Softcopy Presentation State on the image."""
    return ResultWriter(out_dir).annotation(source, shapes)
