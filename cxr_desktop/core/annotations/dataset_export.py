"""A dataset's own annotations (boxes, masks as polygons) written as labelme JSON files.

The files go to an annotation project folder (one JSON per image, as the Viewer saves
them), so the dataset's ground truth opens in labelme and in the Viewer's annotation
tools. The folder may not be inside the dataset: nothing is ever written there.
"""

from __future__ import annotations

import os
from pathlib import Path

from cxr_desktop.core.annotations.project import AnnotationProject
from cxr_desktop.core.data.importers.geometry import image_size
from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.errors import FileError


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def export_labelme(spec: DatasetSpec, folder: str | Path) -> tuple[list[Path], list[str]]:
    """Write one labelme JSON per annotated image of ``spec`` into ``folder``.

    Returns the files written and, per image whose size could not be read, a one-line
    reason (the image is skipped). Raises FileError for a folder inside the dataset.
    """
    folder = Path(folder)
    if _inside(folder, spec.root):
        raise FileError(folder, "is inside the dataset folder, which is never written to; "
                                "choose a folder elsewhere")
    project = AnnotationProject(folder)
    written, failed = [], []
    for item in spec.items:
        if not item.shapes:
            continue
        image = spec.abspath(item)
        size = image_size(image)
        if size is None:
            failed.append(f"{image}: size unreadable, annotations not exported")
            continue
        written.append(project.save(image, item.shapes, (size[1], size[0])))
    return written, failed
