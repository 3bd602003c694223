"""An annotation project folder: per-image labelme files and Object-CXR CSV exchange."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_desktop.core import paths
from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.annotations.objectcxr import read_objectcxr_csv
from cxr_desktop.core.annotations.project import AnnotationProject, image_size
from cxr_desktop.core.errors import FileError

SHAPES = [
    Shape("nodule", "rectangle", ((10.5, 20), (50, 80.25))),
    Shape("effusion", "ellipse", ((100, 100), (200, 150))),
    Shape("drain", "polygon", ((5, 5), (60, 7.5), (30, 90))),
]
EXTRAS = [
    Shape("drain", "freehand", ((0, 0), (10, 0), (10, 10), (0, 12))),
    Shape("marker", "arrow", ((1, 1), (20, 20))),
    Shape("note", "text", ((30, 30),), "lead marker"),
    Shape("line", "freehand", ((0, 50), (90, 50))),
]


def write_png(path: Path, size=(120, 240)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(size, dtype=np.uint8)).save(path)
    return path


def test_default_folder_is_in_the_data_dir_and_names_are_stable_and_distinct(tmp_path):
    project = AnnotationProject()
    assert project.root == paths.data_dir() / "annotations"
    a, b = tmp_path / "a" / "image.dcm", tmp_path / "b" / "image.dcm"
    assert project.json_path(a) != project.json_path(b)
    assert project.json_path(a) == project.json_path(tmp_path / "a" / ".." / "a" / "image.dcm")
    assert project.json_path(a).parent == project.root
    assert project.json_path(a).name.startswith("image-")


def test_save_and_load_per_image_never_beside_the_image(tmp_path):
    image = tmp_path / "images" / "chest.dcm"
    image.parent.mkdir()
    project = AnnotationProject(tmp_path / "project")
    assert project.load_for(image) == [] and not project.has(image)
    saved = project.save(image, SHAPES + EXTRAS, (120, 240))
    assert saved.parent == tmp_path / "project" and os.listdir(image.parent) == []
    assert project.load_for(image) == SHAPES + EXTRAS
    doc = json.loads(saved.read_text())
    assert doc["imagePath"] == os.path.join("..", "images", "chest.dcm")
    assert (doc["imageHeight"], doc["imageWidth"]) == (120, 240)
    assert project.annotated_images() == [image]


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    image = tmp_path / "chest.png"
    project = AnnotationProject(tmp_path / "project")
    project.save(image, SHAPES, (120, 240))

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        project.save(image, SHAPES[:1], (120, 240))
    assert project.load_for(image) == SHAPES
    assert sorted(p.name for p in project.root.iterdir()) == [project.json_path(image).name]


def test_a_broken_json_is_an_error_naming_the_file(tmp_path):
    project = AnnotationProject(tmp_path)
    project.json_path("x.png").write_text("{")
    with pytest.raises(FileError, match="x-.*json: not valid JSON"):
        project.load_for("x.png")


def test_export_then_import_changes_nothing(tmp_path):
    root = tmp_path / "images"
    first, second = write_png(root / "a" / "1.png"), write_png(root / "b" / "2.png")
    third = write_png(root / "b" / "3.png")
    project = AnnotationProject(tmp_path / "project")
    project.save(first, SHAPES + EXTRAS, (120, 240))
    project.save(second, SHAPES[:1], (120, 240))
    csv_path = tmp_path / "out" / "train.csv"
    report = project.export_objectcxr(csv_path, [first, second, third])
    assert (report.images, report.shapes) == (3, 5)
    assert report.skipped == {"arrow": 1, "text": 1, "freehand": 1}
    table = read_objectcxr_csv(csv_path)
    assert list(table) == ["a/1.png", "b/2.png", "b/3.png"]
    assert [s.shape_type for s in table["a/1.png"]] == [
        "rectangle", "ellipse", "polygon", "polygon"]  # the closed stroke as a polygon
    assert [s.points for s in table["a/1.png"][:3]] == [s.points for s in SHAPES]
    assert table["b/3.png"] == []
    before = {p: project.load_for(p) for p in (first, second, third)}
    report = project.import_objectcxr(csv_path, root)
    assert report.images == 3 and not report.failed
    assert {p: project.load_for(p) for p in (first, second, third)} == {
        **before, third: []}
    assert [s.shape_type for s in project.load_for(first)] == [
        "rectangle", "ellipse", "polygon", "freehand", "arrow", "text", "freehand"]


def test_import_into_an_empty_project_reads_sizes_and_reports_missing_images(tmp_path):
    root = tmp_path / "images"
    write_png(root / "08001.png", size=(64, 48))
    csv_path = tmp_path / "dev.csv"
    csv_path.write_text('image_name,annotation\n08001.png,"0 1 2 30 40;2 1 1 9 1 5 9"\n'
                        'missing.png,"1 1 1 5 5"\n')
    project = AnnotationProject(tmp_path / "project")
    report = project.import_objectcxr(csv_path, root, label="foreign object")
    assert (report.images, report.shapes) == (1, 2)
    assert len(report.failed) == 1 and "missing.png: file not found" in report.failed[0]
    assert project.load_for(root / "08001.png") == [
        Shape("foreign object", "rectangle", ((1, 2), (30, 40))),
        Shape("foreign object", "polygon", ((1, 1), (9, 1), (5, 9))),
    ]
    doc = json.loads(project.json_path(root / "08001.png").read_text())
    assert (doc["imageHeight"], doc["imageWidth"]) == (64, 48)
    assert "2 images" not in report.summary() and "1 images failed" in report.summary()


def test_export_names_are_relative_to_the_root_and_duplicates_are_written_once(tmp_path):
    project = AnnotationProject(tmp_path / "project")
    project.save(tmp_path / "a/x.png", SHAPES[:1], (120, 240))
    images = [tmp_path / "a/x.png", tmp_path / "b/x.png", tmp_path / "a/../a/x.png"]
    report = project.export_objectcxr(tmp_path / "o.csv", images, image_root=tmp_path / "a")
    assert report.images == 2
    table = read_objectcxr_csv(tmp_path / "o.csv")
    assert list(table) == ["x.png", "../b/x.png"] and table["../b/x.png"] == []
    assert table["x.png"] == [Shape("object", "rectangle", SHAPES[0].points)]  # no labels


def test_image_size_reads_the_dicom_header(testdata):
    assert image_size(testdata("RG1_UNCI.dcm")) == (1955, 1841)


def test_an_unreadable_json_is_reported_not_silently_left_out(tmp_path):
    root = tmp_path / "images"
    first, second = write_png(root / "1.png"), write_png(root / "2.png")
    project = AnnotationProject(tmp_path / "project")
    project.save(first, SHAPES, (120, 240))
    broken = project.save(second, SHAPES[:1], (120, 240))
    broken.write_text("{")
    with pytest.raises(FileError, match=r"2-\w+\.json: not valid JSON"):
        project.annotated_images()
    failed: list[str] = []
    assert project.annotated_images(failed) == [first]
    assert len(failed) == 1 and failed[0].startswith(f"{broken}: not valid JSON")
    report = project.export_objectcxr(tmp_path / "all.csv")  # every annotated image
    assert (report.images, report.shapes) == (1, 3) and report.failed == failed
    assert "1 images failed" in report.summary()
    assert list(read_objectcxr_csv(tmp_path / "all.csv")) == ["1.png"]
