"""The Qt-free annotation tools, driven by made-up press/drag/release coordinates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxr_desktop.core.annotations import Shape
from cxr_desktop.core.annotations.editing import DEFAULT_LABEL, AnnotationDocument
from cxr_desktop.core.annotations.geometry import handles, hits, simplify
from cxr_desktop.core.annotations.tools import Editor

SIZE = (400, 600)  # height, width


def make_editor(shapes=(), texts=None) -> Editor:
    doc = AnnotationDocument(shapes, SIZE, labels=["nodule", "effusion"])
    answers = iter(texts or [])
    return Editor(doc, ask_text=lambda x, y: next(answers))


def drag(editor: Editor, *points) -> bool:
    used = editor.press(*points[0])
    for point in points[1:]:
        editor.drag(*point)
    editor.release(*points[-1])
    return used


def test_labels_come_from_the_caller_with_a_default():
    assert AnnotationDocument().label == DEFAULT_LABEL
    doc = AnnotationDocument(labels=["nodule", "effusion", "nodule"])
    assert doc.labels == ["nodule", "effusion"] and doc.label == "nodule"
    doc.set_labels(["a", "b"], default="b")
    assert doc.label == "b"


def test_rectangle_and_ellipse_store_normalised_corners_of_the_drag():
    editor = make_editor()
    editor.set_tool("rectangle")
    assert drag(editor, (50, 80), (30, 40), (10, 20))
    editor.set_tool("ellipse")
    drag(editor, (100, 100), (200, 150))
    doc = editor.document
    assert doc.shapes == (
        Shape("nodule", "rectangle", ((10, 20), (50, 80))),
        Shape("nodule", "ellipse", ((100, 100), (200, 150))),
    )
    assert doc.selected is None and doc.draft is None and doc.dirty


def test_draft_is_shown_while_dragging_and_a_click_draws_nothing():
    editor = make_editor()
    editor.set_tool("rectangle")
    editor.press(10, 10)
    editor.drag(40, 30)
    assert editor.document.draft == Shape("nodule", "rectangle", ((10, 10), (40, 30)))
    editor.release(40, 30)
    editor.press(100, 100)
    editor.release(101, 100)  # a jitter, not a drag
    assert len(editor.document.shapes) == 1 and editor.document.draft is None


def test_points_are_clamped_to_the_image():
    editor = make_editor()
    editor.set_tool("rectangle")
    drag(editor, (-20, 350), (700, 500))
    assert editor.document.shapes[0].points == ((0, 350), (600, 400))


def test_polygon_closes_by_double_click_enter_or_first_vertex():
    editor = make_editor()
    editor.set_tool("polygon")
    for point in [(10, 10), (100, 10), (100, 100)]:
        editor.press(*point)
        editor.release(*point)
    editor.hover(50, 150)
    assert editor.document.draft.points[-1] == (50, 150)  # rubber band to the cursor
    editor.press(10, 100)
    editor.release(10, 100)
    assert editor.double_click(10, 100)
    first = Shape("nodule", "polygon", ((10, 10), (100, 10), (100, 100), (10, 100)))
    assert editor.document.shapes == (first,)
    for point in [(200, 200), (300, 200), (300, 300), (201, 201)]:  # last: on the first vertex
        editor.press(*point)
    for point in [(400, 10), (500, 10), (500, 90), (450, 95)]:
        editor.press(*point)
    assert editor.key("Backspace")
    assert editor.key("Enter")
    doc = editor.document
    assert [s.points for s in doc.shapes[1:]] == [
        ((200, 200), (300, 200), (300, 300)), ((400, 10), (500, 10), (500, 90))]
    editor.press(1, 1)
    editor.press(5, 5)
    assert editor.key("Escape") and doc.draft is None and len(doc.shapes) == 3


def test_too_short_polygon_is_not_closed_and_switching_tool_keeps_a_long_one():
    editor = make_editor()
    editor.set_tool("polygon")
    editor.press(10, 10)
    editor.press(20, 10)
    editor.key("Enter")
    assert editor.document.shapes == ()
    editor.press(20, 30)
    editor.set_tool("select")
    assert editor.document.shapes[0].shape_type == "polygon"


def test_freehand_is_simplified_and_arrow_goes_tail_to_head():
    editor = make_editor()
    editor.set_tool("freehand")
    stroke = [(10 + i, 50.0) for i in range(0, 101)] + [(110.0, 50 + i) for i in range(1, 51)]
    drag(editor, *stroke)
    editor.set_tool("arrow")
    drag(editor, (300, 300), (250, 260), (200, 200))
    doc = editor.document
    assert doc.shapes[0] == Shape("nodule", "freehand", ((10, 50), (110, 50), (110, 100)))
    assert doc.shapes[1] == Shape("nodule", "arrow", ((300, 300), (200, 200)))


def test_simplify_keeps_corners_and_ends():
    assert simplify([(0, 0), (1, 0.1), (2, 0), (3, 5)], 0.5) == [(0, 0), (2, 0), (3, 5)]
    assert simplify([(0, 0), (5, 5)], 1.0) == [(0, 0), (5, 5)]


def test_text_takes_the_callers_words_and_a_cancel_adds_nothing():
    editor = make_editor(texts=["chest drain", None])
    editor.set_tool("text")
    assert editor.press(30, 40)
    editor.press(60, 70)
    assert editor.document.shapes == (Shape("nodule", "text", ((30, 40),), "chest drain"),)


def test_select_picks_the_topmost_and_empty_space_is_left_to_the_view():
    rect = Shape("a", "rectangle", ((10, 10), (100, 100)))
    ellipse = Shape("b", "ellipse", ((50, 50), (150, 150)))
    editor = make_editor([rect, ellipse])
    assert editor.press(80, 80) and editor.document.selected == 1
    editor.release(80, 80)
    assert editor.press(20, 20) and editor.document.selected == 0
    editor.release(20, 20)
    assert not editor.press(300, 300) and editor.document.selected is None
    assert not editor.document.can_undo  # selecting is not an edit


def test_hit_tests_follow_the_outline():
    polygon = Shape("p", "polygon", ((0, 0), (100, 0), (0, 100)))
    assert hits(polygon, 10, 10, 2) and not hits(polygon, 80, 80, 2)
    assert hits(polygon, 51, 51, 2)  # near the hypotenuse
    arrow = Shape("a", "arrow", ((0, 0), (100, 0)))
    assert hits(arrow, 50, 3, 4) and not hits(arrow, 50, 10, 4)
    ellipse = Shape("e", "ellipse", ((0, 0), (100, 50)))
    assert hits(ellipse, 50, 25, 1) and not hits(ellipse, 2, 2, 1)
    note = Shape("t", "text", ((10, 10),), "drain")
    assert hits(note, 20, 15, 4) and not hits(note, 10, 40, 4)


def test_move_is_one_undo_step_and_stays_inside_the_image():
    rect = Shape("a", "rectangle", ((10, 10), (100, 100)))
    editor = make_editor([rect])
    drag(editor, (50, 50), (60, 55), (70, 60), (80, 70))
    doc = editor.document
    assert doc.shapes[0].points == ((40, 30), (130, 120))
    drag(editor, (50, 50), (-500, -500))
    assert doc.shapes[0].points == ((0, 0), (90, 90))
    assert doc.undo() and doc.shapes[0].points == ((40, 30), (130, 120))
    assert doc.undo() and doc.shapes == (rect,) and not doc.can_undo and not doc.dirty


def test_vertex_edit_moves_a_box_corner_or_a_polygon_vertex():
    rect = Shape("a", "rectangle", ((10, 10), (100, 100)))
    polygon = Shape("p", "polygon", ((200, 200), (300, 200), (250, 300)))
    editor = make_editor([rect, polygon])
    doc = editor.document
    doc.select(0)
    assert handles(rect) == [(10, 10), (100, 10), (100, 100), (10, 100)]
    drag(editor, (101, 11), (120, 5))  # the upper-right corner
    assert doc.shapes[0].points == ((10, 5), (120, 100))
    drag(editor, (10, 5), (150, 150))  # dragged across the opposite corner: the box flips
    assert doc.shapes[0].points == ((120, 100), (150, 150))
    doc.select(1)
    drag(editor, (250, 299), (260, 350))
    assert doc.shapes[1].points == ((200, 200), (300, 200), (260, 350))
    assert doc.shapes[0].points == ((120, 100), (150, 150))


def test_delete_set_label_undo_redo_sequence():
    editor = make_editor()
    doc = editor.document
    editor.set_tool("rectangle")
    drag(editor, (10, 10), (50, 50))
    doc.set_label("effusion")  # while drawing: the label of the next shape
    drag(editor, (100, 100), (150, 150))
    editor.set_tool("select")
    editor.press(120, 120)
    editor.release(120, 120)
    doc.set_label("drain")  # with a selection: relabels it, one undo step
    assert [s.label for s in doc.shapes] == ["nodule", "drain"]
    editor.undo()
    assert [s.label for s in doc.shapes] == ["nodule", "effusion"]
    editor.press(20, 20)
    editor.release(20, 20)
    assert editor.key("Delete") and [s.label for s in doc.shapes] == ["effusion"]
    assert not editor.key("Delete")  # nothing selected any more
    assert editor.undo() and [s.label for s in doc.shapes] == ["nodule", "effusion"]
    assert doc.selected == 0  # the selection the deleted shape had
    assert editor.undo() and [s.label for s in doc.shapes] == ["nodule"]
    assert editor.redo() and editor.redo() and [s.label for s in doc.shapes] == ["effusion"]
    assert not editor.redo()
    editor.undo()
    drag(editor, (120, 120), (130, 130))  # a new edit (a move) forgets the redo
    assert not doc.can_redo


def test_listeners_hear_every_change():
    editor = make_editor()
    calls = []
    editor.document.subscribe(lambda: calls.append(1))
    editor.set_tool("ellipse")
    drag(editor, (10, 10), (20, 30), (40, 50))
    assert len(calls) >= 4  # the draft three times and the add
    heard = len(calls)
    editor.document.unsubscribe(editor.document._listeners[0])
    editor.undo()
    assert len(calls) == heard
    with pytest.raises(ValueError, match="unknown tool"):
        editor.set_tool("lasso")


# -- any sequence of operations, undone, returns the document it started from -----------------
coords = st.floats(-50, 650, allow_nan=False)
point = st.tuples(coords, coords)
operation = st.one_of(
    st.tuples(st.sampled_from(["rectangle", "ellipse", "arrow", "freehand"]),
              st.lists(point, min_size=2, max_size=6)),
    st.tuples(st.just("polygon"), st.lists(point, min_size=1, max_size=6)),
    st.tuples(st.just("text"), st.lists(point, min_size=1, max_size=1)),
    st.tuples(st.just("select-drag"), st.lists(point, min_size=1, max_size=4)),
    st.tuples(st.sampled_from(["delete", "undo", "redo"]), st.just([])),
    st.tuples(st.sampled_from(["nodule", "effusion", "drain"]), st.just([])),
)


def apply(editor: Editor, op: str, points: list) -> None:
    if op in ("rectangle", "ellipse", "arrow", "freehand", "text"):
        editor.set_tool(op)
        drag(editor, *points)
    elif op == "polygon":
        editor.set_tool("polygon")
        for p in points:
            editor.press(*p)
        editor.key("Enter")
    elif op == "select-drag":
        editor.set_tool("select")
        drag(editor, *points)
    elif op == "delete":
        editor.delete()
    elif op == "undo":
        editor.undo()
    elif op == "redo":
        editor.redo()
    else:
        editor.document.set_label(op)


@settings(max_examples=60, deadline=None)
@given(st.lists(operation, max_size=25))
def test_undo_all_returns_the_initial_document_and_redo_all_the_newest(ops):
    start = (Shape("nodule", "rectangle", ((10, 10), (100, 100))),
             Shape("drain", "polygon", ((200, 200), (300, 220), (250, 330))))
    editor = make_editor(start, texts=iter(lambda: "note", None))
    for op, points in ops:
        apply(editor, op, points)
    editor.set_tool("select")
    doc = editor.document
    while doc.redo():
        pass
    newest = doc.shapes
    while doc.undo():
        pass
    assert doc.shapes == start and not doc.dirty
    while doc.redo():
        pass
    assert doc.shapes == newest
    assert all(s.inside(SIZE[1], SIZE[0]) for s in doc.shapes)
