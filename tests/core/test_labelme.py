"""labelme JSON: every shape type comes back as it was; labelme's own fields are there."""

from __future__ import annotations

import json

import pytest

from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.annotations.labelme import load_labelme, save_labelme
from cxr_desktop.core.errors import FileError

SHAPES = [
    Shape("nodule", "rectangle", ((10, 20), (30, 40))),
    Shape("effusion", "ellipse", ((5, 5), (50, 25))),
    Shape("drain", "polygon", ((1, 1), (9, 1), (5, 8))),
    Shape("drain", "freehand", ((1, 1), (2, 3), (4, 4))),
    Shape("marker", "arrow", ((0, 0), (10, 10))),
    Shape("marker", "text", ((7, 7),), text="lead marker?"),
]


def test_round_trip_and_labelme_fields(tmp_path):
    path = save_labelme(tmp_path / "img.json", SHAPES, "img.dcm", (100, 80))
    shapes, image_path, size = load_labelme(path)
    assert shapes == SHAPES and image_path == "img.dcm" and size == (100, 80)
    data = json.loads(path.read_text())
    assert {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight",
            "imageWidth"} <= set(data)
    assert data["imageData"] is None
    assert {s["shape_type"] for s in data["shapes"]} <= {
        "rectangle", "polygon", "linestrip", "line", "point", "circle"}


def test_a_plain_labelme_file_loads(tmp_path):
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({
        "version": "5.4.1", "flags": {}, "imagePath": "x.png", "imageData": None,
        "imageHeight": 50, "imageWidth": 60,
        "shapes": [{"label": "a", "points": [[1, 2], [3, 4]], "group_id": None,
                    "shape_type": "rectangle", "flags": {}}]}))
    shapes, _, size = load_labelme(path)
    assert shapes == [Shape("a", "rectangle", ((1, 2), (3, 4)))] and size == (50, 60)


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(FileError) as info:
        load_labelme(path)
    assert str(path) in str(info.value)
