"""An annotation project: a folder with one labelme JSON per image, and Object-CXR exchange.

The JSON of an image is ``<stem>-<hash>.json``, the hash taken from the image's absolute
path, so two ``image.dcm`` in different folders never share a file and the same image always
finds its own. Files go only into the project folder (by default
``paths.data_dir() / "annotations"``), never beside a DICOM, and every save is atomic.

Object-CXR (:mod:`objectcxr`) holds rectangles, ellipses and polygons without labels. On
export a freehand stroke of three points or more becomes the polygon it outlines; arrows,
text notes and two-point strokes are skipped and counted in the report. On import the CSV
replaces the shapes Object-CXR can hold and keeps the others (arrows, text), so
exporting and importing again changes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from PIL import Image

from cxr_desktop.core import paths
from cxr_desktop.core.annotations.labelme import load_labelme, save_labelme
from cxr_desktop.core.annotations.objectcxr import (
    format_objectcxr,
    parse_objectcxr,
    read_objectcxr_csv,
    write_objectcxr_csv,
)
from cxr_desktop.core.annotations.shapes import Shape
from cxr_desktop.core.errors import CxrError, ImageLoadError, first_line
from cxr_desktop.core.io.loader import sniff_format

HASH_CHARS = 10


def default_project_dir() -> Path:
    return paths.data_dir() / "annotations"


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file header, without decoding the pixels."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
        if sniff_format(path, head) == "dicom":
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            return int(ds.Rows), int(ds.Columns)
        with Image.open(path) as image:
            return image.height, image.width
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except (OSError, AttributeError, ValueError, TypeError) as exc:
        raise ImageLoadError(path, f"cannot read the image size ({first_line(exc)})") from None


def writes_to_objectcxr(shape: Shape) -> bool:
    """True for the shapes an Object-CXR string can hold (see the module docstring)."""
    return bool(format_objectcxr([shape]))


@dataclass
class ExchangeReport:
    """What an export or import did; ``skipped`` counts shapes by type, ``failed`` names
    images (with the reason) that could not be read or found."""

    images: int = 0
    shapes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.images} images, {self.shapes} shapes"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{n} {kind}" for kind, n in
                                            sorted(self.skipped.items()))
        if self.failed:
            text += f"; {len(self.failed)} images failed"
        return text


class AnnotationProject:
    """The annotation files of many images, in one folder."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_project_dir()

    def json_path(self, image_path: str | Path) -> Path:
        absolute = Path(os.path.abspath(image_path))
        digest = hashlib.sha1(str(absolute).encode("utf-8")).hexdigest()[:HASH_CHARS]
        return self.root / f"{absolute.stem}-{digest}.json"

    def has(self, image_path: str | Path) -> bool:
        return self.json_path(image_path).is_file()

    def save(self, image_path: str | Path, shapes: Iterable[Shape],
             image_size: tuple[int, int]) -> Path:
        """Write the shapes of ``image_path`` (``(height, width)``) atomically; returns the JSON.

        ``imagePath`` is relative to the project folder when it can be (labelme's
        convention), absolute otherwise (another drive on Windows).
        """
        target = self.json_path(image_path)
        absolute = os.path.abspath(image_path)
        try:
            reference = os.path.relpath(absolute, os.path.abspath(self.root))
        except ValueError:
            reference = absolute
        return save_labelme(target, list(shapes), reference, image_size)

    def load_for(self, image_path: str | Path) -> list[Shape]:
        """The saved shapes of ``image_path``; ``[]`` when it has none yet.

        Raises FileError (naming the JSON) when the file exists but cannot be read.
        """
        target = self.json_path(image_path)
        if not target.is_file():
            return []
        return load_labelme(target)[0]

    def annotated_images(self, failed: list[str] | None = None) -> list[Path]:
        """The images that have a JSON in the project, sorted. A JSON that cannot be read
        raises its FileError or, when ``failed`` is given, is named there with the reason."""
        images = []
        for json_file in sorted(self.root.glob("*.json")):
            try:
                _shapes, reference, _size = load_labelme(json_file)
            except CxrError as exc:
                if failed is None:
                    raise
                failed.append(str(exc))
                continue
            image = Path(os.path.normpath(self.root / reference))
            if self.json_path(image) == json_file:
                images.append(image)
        return sorted(images)

    def export_objectcxr(self, csv_path: str | Path,
                         image_paths: Sequence[str | Path] | None = None,
                         image_root: str | Path | None = None) -> ExchangeReport:
        """Write an Object-CXR CSV with one row per image (no shapes: an empty annotation).

        ``image_paths`` defaults to every annotated image of the project, the JSONs that
        cannot be read listed in ``failed``. ``image_name`` is the path relative to
        ``image_root`` (default: the folder all the images share); an image listed twice is
        written once.
        """
        report = ExchangeReport()
        if image_paths is None:
            image_paths = self.annotated_images(report.failed)
        absolute = list(dict.fromkeys(Path(os.path.abspath(p)) for p in image_paths))
        if image_root is None:
            image_root = (os.path.commonpath([str(p.parent) for p in absolute])
                          if absolute else ".")
        rows: dict[str, list[Shape]] = {}
        for image in absolute:
            name = Path(os.path.relpath(image, os.path.abspath(image_root))).as_posix()
            shapes = self.load_for(image)
            kept = [s for s in shapes if writes_to_objectcxr(s)]
            report.skipped.update(s.shape_type for s in shapes if not writes_to_objectcxr(s))
            rows[name] = kept
            report.images += 1
            report.shapes += len(kept)
        write_objectcxr_csv(csv_path, rows)
        return report

    def import_objectcxr(self, csv_path: str | Path, image_root: str | Path,
                         label: str = "object") -> ExchangeReport:
        """Read an Object-CXR CSV whose ``image_name`` are relative to ``image_root``.

        Each listed image gets the CSV's shapes in place of its rectangles, ellipses,
        polygons and long strokes; its arrows and text notes stay. A CSV shape with the
        geometry of a shape already there keeps that shape (its label, type and text), so an
        export imported back changes nothing; the other CSV shapes are labelled ``label``.
        Images that are missing or unreadable are listed in ``failed``; the others go on.
        """
        table = read_objectcxr_csv(csv_path)
        report = ExchangeReport()
        for name, parsed in table.items():
            image = Path(image_root) / name
            try:
                existing, size = self._shapes_and_size(image)
            except CxrError as exc:
                report.failed.append(str(exc))
                continue
            known = {_geometry(s): s for s in reversed(existing) if writes_to_objectcxr(s)}
            shapes = [known.get(_geometry(s)) or Shape(label, s.shape_type, s.points)
                      for s in parsed]
            kept = [s for s in existing if not writes_to_objectcxr(s)]
            self.save(image, shapes + kept, size)
            report.images += 1
            report.shapes += len(shapes)
        return report

    def _shapes_and_size(self, image: Path) -> tuple[list[Shape], tuple[int, int]]:
        target = self.json_path(image)
        if target.is_file():
            shapes, _reference, size = load_labelme(target)
            return shapes, size
        return [], image_size(image)


def _geometry(shape: Shape) -> tuple[str, tuple[tuple[float, float], ...]]:
    """The type and points ``shape`` has once written to Object-CXR and read back."""
    canonical = parse_objectcxr(format_objectcxr([shape]))[0]
    return canonical.shape_type, canonical.points
