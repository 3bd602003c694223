"""Annotations drawn through the viewer's canvas with real mouse events, saved and exchanged."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QInputDialog

from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.annotations.objectcxr import read_objectcxr_csv

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def viewer(main_window, qtbot, testdata, tmp_path):
    view = main_window.viewer_tab
    view.annotations.set_project_dir(tmp_path / "project")
    main_window.open_image(str(testdata("RG1_UNCI.dcm")))
    qtbot.waitUntil(lambda: view.radiograph is not None, timeout=20_000)
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)
    view.canvas.fit()
    return view


def widget_point(viewer, x: float, y: float):
    return viewer.canvas.from_image(x, y)


def image_point(viewer, x: float, y: float) -> tuple[float, float]:
    """Where the canvas puts a click aimed at ``(x, y)``: screen pixels are whole numbers."""
    return viewer.canvas.to_image(widget_point(viewer, x, y))


def drag(qtbot, viewer, *points) -> None:
    viewport = viewer.canvas.view_widget.viewport()
    qtbot.mousePress(viewport, LEFT, pos=widget_point(viewer, *points[0]))
    for point in points[1:]:
        qtbot.mouseMove(viewport, pos=widget_point(viewer, *point))
    qtbot.mouseRelease(viewport, LEFT, pos=widget_point(viewer, *points[-1]))


def click(qtbot, viewer, x: float, y: float) -> None:
    qtbot.mouseClick(viewer.canvas.view_widget.viewport(), LEFT, pos=widget_point(viewer, x, y))


def draw_three(qtbot, viewer) -> list[Shape]:
    """A rectangle, an ellipse and a polygon, drawn with the mouse; the shapes expected."""
    panel = viewer.annotations
    panel.set_labels(["nodule", "effusion"])
    panel.set_tool("rectangle")
    drag(qtbot, viewer, (300, 400), (500, 600), (700, 900))
    panel.toolbar.label_combo.setCurrentText("effusion")
    panel.toolbar.label_combo.textActivated.emit("effusion")
    panel.set_tool("ellipse")
    drag(qtbot, viewer, (1500, 1200), (1200, 1000), (1000, 800))
    panel.set_tool("polygon")
    vertices = [(200, 1300), (800, 1250), (700, 1700)]
    for vertex in vertices:
        click(qtbot, viewer, *vertex)
    qtbot.mouseDClick(viewer.canvas.view_widget.viewport(), LEFT,
                      pos=widget_point(viewer, 300, 1750))
    corners = [image_point(viewer, *p) for p in [(300, 400), (700, 900), (1000, 800), (1500, 1200)]]
    polygon = tuple(image_point(viewer, *p) for p in [*vertices, (300, 1750)])
    return [Shape("nodule", "rectangle", (corners[0], corners[1])),
            Shape("effusion", "ellipse", (corners[2], corners[3])),
            Shape("effusion", "polygon", polygon)]


def test_draw_save_reopen_export_import(viewer, main_window, qtbot, testdata, tmp_path):
    panel = viewer.annotations
    expected = draw_three(qtbot, viewer)
    doc = panel.document
    assert doc.shapes == tuple(expected) and doc.dirty
    assert len(panel.layer.items()) >= 3 and panel.shape_list.count() == 3
    # Zoom in on the rectangle and change the window: the shapes keep their image coordinates,
    # the drawn items follow the image, and a drag still moves by image pixels.
    before = widget_point(viewer, 300, 400)
    viewer.canvas.view_box.setRange(xRange=(250, 750), yRange=(350, 950), padding=0)
    viewer.preset.setCurrentIndex(3)
    assert widget_point(viewer, 300, 400) != before
    assert doc.shapes == tuple(expected)
    rect_item = next(i for i in panel.layer.items() if isinstance(i, QGraphicsRectItem)
                     and not i.flags() & QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    assert rect_item.rect().topLeft().toTuple() == pytest.approx(expected[0].points[0])
    panel.set_tool("select")
    drag(qtbot, viewer, (500, 650), (520, 670), (540, 690))
    moved = doc.shapes[0]
    assert moved.label == "nodule" and doc.selected == 0
    step = viewer.canvas.pixel_size()
    assert step < 1.0  # zoomed in: less than an image pixel per screen pixel
    for (x, y), (x0, y0) in zip(moved.points, expected[0].points, strict=True):
        assert (x - x0, y - y0) == pytest.approx((40, 40), abs=2 * step)
    panel.toolbar.undo_action.trigger()
    assert doc.shapes == tuple(expected)
    panel.toolbar.save_action.trigger()
    assert not doc.dirty
    saved = panel.project.json_path(testdata("RG1_UNCI.dcm"))
    assert saved.parent == tmp_path / "project"
    assert json.loads(saved.read_text())["imageHeight"] == 1955
    # Another image, then the first again: the shapes come back from the project.
    main_window.open_image(str(testdata("MR_small.dcm")))
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)
    assert doc.shapes == ()
    main_window.open_image(str(testdata("RG1_UNCI.dcm")))
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)
    assert doc.shapes == tuple(expected) and not doc.dirty
    # Object-CXR CSV and back: unchanged.
    csv_path = tmp_path / "train.csv"
    panel.export_csv(csv_path)
    qtbot.waitUntil(lambda: panel.last_report is not None, timeout=20_000)
    assert (panel.last_report.images, panel.last_report.shapes) == (1, 3)
    assert main_window.statusBar().currentMessage().startswith("Exported ")
    table = read_objectcxr_csv(csv_path)
    assert [(s.shape_type, s.points) for s in table["RG1_UNCI.dcm"]] == [
        (s.shape_type, s.points) for s in expected]
    panel.last_report = None
    panel.import_csv(csv_path, testdata("RG1_UNCI.dcm").parent)
    qtbot.waitUntil(lambda: panel.last_report is not None, timeout=20_000)
    assert doc.shapes == tuple(expected) and not panel.last_report.failed


def test_unsaved_shapes_are_autosaved_when_another_image_opens(viewer, main_window, qtbot,
                                                               testdata):
    panel = viewer.annotations
    panel.set_tool("arrow")
    drag(qtbot, viewer, (100, 100), (400, 300))
    panel.set_tool("freehand")
    drag(qtbot, viewer, *[(600 + 10 * i, 600 + (i % 2) * 40) for i in range(30)])
    assert [s.shape_type for s in panel.document.shapes] == ["arrow", "freehand"]
    main_window.open_image(str(testdata("MR_small.dcm")))
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)
    assert [s.shape_type for s in panel.project.load_for(testdata("RG1_UNCI.dcm"))] == [
        "arrow", "freehand"]


def test_select_tool_leaves_empty_space_to_pan_and_keys_switch_tools(viewer, qtbot):
    panel = viewer.annotations
    before = viewer.canvas.view_box.viewRect()
    drag(qtbot, viewer, (900, 900), (1000, 1000), (1100, 1100))
    assert viewer.canvas.view_box.viewRect() != before  # panned, nothing drawn
    assert panel.document.shapes == ()
    viewer.canvas.view_widget.setFocus()
    qtbot.keyClick(viewer.canvas.view_widget, Qt.Key.Key_R)
    assert panel.editor.tool_name == "rectangle"
    assert panel.toolbar.tool_actions["rectangle"].isChecked()


def test_text_note_polygon_keys_and_delete(viewer, qtbot, monkeypatch):
    panel = viewer.annotations
    view = viewer.canvas.view_widget
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kw: ("drain tip", True))
    panel.set_tool("text")
    click(qtbot, viewer, 900, 500)
    assert [(s.shape_type, s.text) for s in panel.document.shapes] == [("text", "drain tip")]
    panel.set_tool("polygon")
    for vertex in [(100, 100), (400, 120), (300, 400), (150, 380)]:
        click(qtbot, viewer, *vertex)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Backspace)  # drops the last vertex
    qtbot.keyClick(view, Qt.Key.Key_Return)
    polygon = panel.document.shapes[1]
    assert polygon.shape_type == "polygon" and len(polygon.points) == 3
    panel.set_tool("select")
    click(qtbot, viewer, 250, 200)
    assert panel.document.selected == 1 and panel.toolbar.delete_action.isEnabled()
    panel.toolbar.delete_action.trigger()
    assert [s.shape_type for s in panel.document.shapes] == ["text"]
    panel.toolbar.undo_action.trigger()
    assert [s.shape_type for s in panel.document.shapes] == ["text", "polygon"]


def test_an_image_of_the_open_dataset_shows_the_dataset_s_own_shapes(main_window, qtbot,
                                                                    tmp_path):
    from cxr_desktop.core.data.demo import make_demo_dataset

    make_demo_dataset(tmp_path / "demo", n_images=30, size=96, seed=4)
    viewer = main_window.viewer_tab
    viewer.annotations.set_project_dir(tmp_path / "project")
    with qtbot.waitSignal(main_window.dataset_tab.dataset_opened, timeout=60_000):
        main_window.dataset_tab.open_dataset(tmp_path / "demo")
    spec = main_window.dataset_tab.spec
    boxed = next(item for item in spec.items if item.shapes)
    main_window.open_image(str(spec.abspath(boxed)))
    qtbot.waitUntil(lambda: viewer.radiograph is not None and not main_window.runner.busy(),
                    timeout=20_000)
    doc = viewer.annotations.document
    assert doc.shapes == tuple(boxed.shapes) and not doc.dirty  # ground truth, not an edit
    assert not viewer.annotations.project.has(spec.abspath(boxed))
    # Once the project holds this image's own shapes (here: none), they win.
    viewer.annotations.project.save(spec.abspath(boxed), [], (96, 96))
    main_window.open_image(str(spec.abspath(next(i for i in spec.items if not i.shapes))))
    qtbot.waitUntil(lambda: not main_window.runner.busy(), timeout=20_000)
    main_window.open_image(str(spec.abspath(boxed)))
    qtbot.waitUntil(lambda: viewer.radiograph.path == str(spec.abspath(boxed))
                    and not main_window.runner.busy(), timeout=20_000)
    assert doc.shapes == ()
