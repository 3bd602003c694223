"""Drawing and editing tools as plain press/drag/release handlers in image pixel coordinates.

The view translates its mouse events into these calls (napari's pattern), and tests call
them with made-up coordinates. ``press`` and ``double_click`` return True when the tool used
the event; the select tool returns False for a press on empty space, so the view can pan.
``hover`` is a move with no button down (the polygon's rubber band); ``key`` takes Qt-free
key names: ``"Enter"``, ``"Escape"``, ``"Backspace"``, ``"Delete"``.

What each tool stores (see :mod:`shapes`): rectangle and ellipse the normalised corners of
the dragged box, polygon its clicked vertices, freehand the dragged stroke simplified to
within half the tolerance, arrow tail then head, text its anchor and the caller's words.
Points are clamped to the image when the document knows its size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from cxr_desktop.core.annotations.editing import AnnotationDocument
from cxr_desktop.core.annotations.geometry import (
    Point,
    move_handle,
    nearest_handle,
    normalized_box,
    simplify,
    topmost_hit,
)
from cxr_desktop.core.annotations.shapes import Shape

TOOLS = ("select", "rectangle", "ellipse", "polygon", "freehand", "arrow", "text")
DEFAULT_TOLERANCE = 4.0


class Tool:
    """Does nothing; subclasses override the handlers they need."""

    def __init__(self, document: AnnotationDocument) -> None:
        self.doc = document
        self.tolerance = DEFAULT_TOLERANCE

    def press(self, x: float, y: float) -> bool:
        return False

    def drag(self, x: float, y: float) -> None:
        return None

    def release(self, x: float, y: float) -> None:
        return None

    def hover(self, x: float, y: float) -> None:
        return None

    def double_click(self, x: float, y: float) -> bool:
        return False

    def key(self, name: str) -> bool:
        return False

    def finish(self) -> None:
        """Leave the tool: keep what can be kept of a shape in progress, drop the rest."""
        return None


class DragShapeTool(Tool):
    """Rectangle, ellipse and arrow: press at one end, drag, release at the other."""

    def __init__(self, document: AnnotationDocument, shape_type: str) -> None:
        super().__init__(document)
        self.shape_type = shape_type
        self._start: Point | None = None

    def _shape(self, end: Point) -> Shape:
        assert self._start is not None
        if self.shape_type == "arrow":
            points: tuple[Point, ...] = (self._start, end)
        else:
            points = normalized_box(self._start, end)
        return Shape(self.doc.label, self.shape_type, points)

    def press(self, x: float, y: float) -> bool:
        self._start = self.doc.clamp(x, y)
        self.doc.set_draft(self._shape(self._start))
        return True

    def drag(self, x: float, y: float) -> None:
        if self._start is not None:
            self.doc.set_draft(self._shape(self.doc.clamp(x, y)))

    def release(self, x: float, y: float) -> None:
        if self._start is None:
            return
        end = self.doc.clamp(x, y)
        shape = self._shape(end)
        self._start = None
        self.doc.set_draft(None)
        if self._big_enough(shape):
            self.doc.add(shape)

    def _big_enough(self, shape: Shape) -> bool:
        """A click without a drag (or a tiny jitter) draws nothing."""
        (x0, y0), (x1, y1) = shape.points
        if self.shape_type == "arrow":
            return math.hypot(x1 - x0, y1 - y0) >= self.tolerance
        return min(abs(x1 - x0), abs(y1 - y0)) >= 1.0 and max(abs(x1 - x0),
                                                                abs(y1 - y0)) >= self.tolerance

    def finish(self) -> None:
        self._start = None
        if self.doc.draft is not None:
            self.doc.set_draft(None)


class FreehandTool(Tool):
    """Drag a stroke; on release it is simplified (Ramer-Douglas-Peucker)."""

    def __init__(self, document: AnnotationDocument) -> None:
        super().__init__(document)
        self._points: list[Point] = []

    def press(self, x: float, y: float) -> bool:
        self._points = [self.doc.clamp(x, y)]
        return True

    def drag(self, x: float, y: float) -> None:
        if not self._points:
            return
        point = self.doc.clamp(x, y)
        last = self._points[-1]
        if math.hypot(point[0] - last[0], point[1] - last[1]) >= self.tolerance / 4:
            self._points.append(point)
            self.doc.set_draft(Shape(self.doc.label, "freehand", self._points))

    def release(self, x: float, y: float) -> None:
        if not self._points:
            return
        self.drag(x, y)
        points = simplify(self._points, self.tolerance / 2)
        self._points = []
        self.doc.set_draft(None)
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if len(points) >= 2 and max(max(xs) - min(xs), max(ys) - min(ys)) >= self.tolerance:
            self.doc.add(Shape(self.doc.label, "freehand", points))

    def finish(self) -> None:
        self._points = []
        if self.doc.draft is not None:
            self.doc.set_draft(None)


class PolygonTool(Tool):
    """Click the vertices; a double-click, Enter, or a click on the first vertex closes it.

    Backspace removes the last vertex, Escape drops the polygon. While drawing, the draft is
    the open outline with the cursor as its last point.
    """

    def __init__(self, document: AnnotationDocument) -> None:
        super().__init__(document)
        self._vertices: list[Point] = []

    @property
    def drawing(self) -> bool:
        return bool(self._vertices)

    def _show(self, cursor: Point | None = None) -> None:
        points = self._vertices + ([cursor] if cursor is not None else [])
        if len(points) >= 2:
            self.doc.set_draft(Shape(self.doc.label, "freehand", points))
        elif self.doc.draft is not None:
            self.doc.set_draft(None)

    def _near(self, a: Point, b: Point) -> bool:
        return math.hypot(a[0] - b[0], a[1] - b[1]) <= self.tolerance

    def press(self, x: float, y: float) -> bool:
        point = self.doc.clamp(x, y)
        if len(self._vertices) >= 3 and self._near(point, self._vertices[0]):
            self.close()
        elif not self._vertices or not self._near(point, self._vertices[-1]):
            self._vertices.append(point)
            self._show()
        return True

    def hover(self, x: float, y: float) -> None:
        if self._vertices:
            self._show(self.doc.clamp(x, y))

    drag = hover

    def double_click(self, x: float, y: float) -> bool:
        # The first click of a double-click has usually placed this vertex already.
        point = self.doc.clamp(x, y)
        if self._vertices and not self._near(point, self._vertices[-1]):
            self._vertices.append(point)
        self.close()
        return True

    def key(self, name: str) -> bool:
        if not self._vertices:
            return False
        if name == "Enter":
            self.close()
        elif name == "Escape":
            self._drop()
        elif name == "Backspace":
            self._vertices.pop()
            self._show()
        else:
            return False
        return True

    def close(self) -> bool:
        """Add the polygon when it has three vertices or more; True when one was added."""
        if len(self._vertices) < 3:
            return False
        shape = Shape(self.doc.label, "polygon", self._vertices)
        self._drop()
        self.doc.add(shape)
        return True

    def _drop(self) -> None:
        self._vertices = []
        self._show()

    def finish(self) -> None:
        if not self.close():
            self._drop()


class TextTool(Tool):
    """Click where the note goes; ``ask_text(x, y)`` supplies the words (None or "" cancels)."""

    def __init__(self, document: AnnotationDocument,
                 ask_text: Callable[[float, float], str | None]) -> None:
        super().__init__(document)
        self.ask_text = ask_text

    def press(self, x: float, y: float) -> bool:
        anchor = self.doc.clamp(x, y)
        text = self.ask_text(*anchor)
        if text:
            self.doc.add(Shape(self.doc.label, "text", (anchor,), text))
        return True


class SelectTool(Tool):
    """Click picks the topmost shape; dragging it moves it; dragging a handle of the selected
    shape moves that vertex (or box corner). Delete removes the selected shape."""

    def __init__(self, document: AnnotationDocument) -> None:
        super().__init__(document)
        self._index: int | None = None
        self._handle: int | None = None
        self._start: Point = (0.0, 0.0)
        self._original: Shape | None = None

    def press(self, x: float, y: float) -> bool:
        doc = self.doc
        selected = doc.selected_shape
        handle = None if selected is None else nearest_handle(selected, x, y, self.tolerance)
        if handle is not None:
            index = doc.selected
        else:
            index = topmost_hit(doc.shapes, x, y, self.tolerance)
            doc.select(index)
            if index is None:
                return False
        self._index, self._handle, self._start = index, handle, (x, y)
        self._original = doc.shapes[index]
        doc.begin_change()
        return True

    def drag(self, x: float, y: float) -> None:
        if self._index is None or self._original is None:
            return
        if self._handle is not None:
            shape = move_handle(self._original, self._handle, *self.doc.clamp(x, y))
        else:
            dx, dy = self._limited_shift(x - self._start[0], y - self._start[1])
            shape = self._original.translated(dx, dy)
        self.doc.preview(self._index, shape)

    def _limited_shift(self, dx: float, dy: float) -> Point:
        """Keep a shape that lies inside the image inside it while it is moved."""
        size = self.doc.image_size
        if size is None or not self._original.inside(size[1], size[0]):
            return dx, dy
        x0, y0, x1, y1 = self._original.bounds()
        return min(max(dx, -x0), size[1] - x1), min(max(dy, -y0), size[0] - y1)

    def release(self, x: float, y: float) -> None:
        if self._index is None:
            return
        self.drag(x, y)
        self.finish()

    def finish(self) -> None:
        if self._index is not None:
            self._index, self._handle, self._original = None, None, None
            self.doc.end_change()

    def key(self, name: str) -> bool:
        if name in ("Delete", "Backspace"):
            return self.doc.delete_selected()
        if name == "Escape" and self.doc.selected is not None:
            self.doc.select(None)
            return True
        return False


class Editor:
    """The current tool over one document; the view forwards every pointer event here.

    Drawn shapes are not selected: with a drawing tool nothing is selected, so choosing a
    label sets the label of the next shape; the select tool relabels the selected one.

    ``tolerance`` (image pixels) is set by the view from its zoom, so that a few screen
    pixels count as "on the outline" at every zoom.
    """

    def __init__(self, document: AnnotationDocument,
                 ask_text: Callable[[float, float], str | None] = lambda x, y: None) -> None:
        self.document = document
        self.tools: dict[str, Tool] = {
            "select": SelectTool(document),
            "rectangle": DragShapeTool(document, "rectangle"),
            "ellipse": DragShapeTool(document, "ellipse"),
            "polygon": PolygonTool(document),
            "freehand": FreehandTool(document),
            "arrow": DragShapeTool(document, "arrow"),
            "text": TextTool(document, ask_text),
        }
        self.tool_name = "select"
        self.tolerance = DEFAULT_TOLERANCE

    @property
    def tool(self) -> Tool:
        return self.tools[self.tool_name]

    @property
    def drawing(self) -> bool:
        """True for the drawing tools, which take every left-button event on the image."""
        return self.tool_name != "select"

    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            raise ValueError(f"unknown tool {name!r}; choose from {', '.join(TOOLS)}")
        if name != self.tool_name:
            self.tool.finish()
            self.tool_name = name
        if self.drawing:
            # While drawing, the label box is the label of the next shape, not a relabel.
            self.document.select(None)

    def set_tolerance(self, tolerance: float) -> None:
        self.tolerance = float(tolerance)
        for tool in self.tools.values():
            tool.tolerance = self.tolerance

    def press(self, x: float, y: float) -> bool:
        return self.tool.press(x, y)

    def drag(self, x: float, y: float) -> None:
        self.tool.drag(x, y)

    def release(self, x: float, y: float) -> None:
        self.tool.release(x, y)

    def hover(self, x: float, y: float) -> None:
        self.tool.hover(x, y)

    def double_click(self, x: float, y: float) -> bool:
        return self.tool.double_click(x, y)

    def key(self, name: str) -> bool:
        return self.tool.key(name)

    def delete(self) -> bool:
        return self.document.delete_selected()

    def undo(self) -> bool:
        """Finish what is in progress first, so an unfinished drag is undone with the rest."""
        self.tool.finish()
        return self.document.undo()

    def redo(self) -> bool:
        self.tool.finish()
        return self.document.redo()
