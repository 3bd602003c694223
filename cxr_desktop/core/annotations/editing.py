"""The shapes of one image being edited: selection, a draft, undo/redo, and change listeners.

No Qt: the view subscribes a callback and redraws from :attr:`AnnotationDocument.shapes`,
:attr:`selected` and :attr:`draft`; the tools in :mod:`tools` call the methods below with
image pixel coordinates, so zoom and windowing never change what is stored.

Every edit is one undo step. A drag (move, vertex edit) is bracketed by
:meth:`begin_change` and :meth:`end_change`; the :meth:`preview` calls in between redraw
without recording, so the whole drag undoes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from cxr_desktop.core.annotations.geometry import Point
from cxr_desktop.core.annotations.history import History
from cxr_desktop.core.annotations.shapes import Shape

DEFAULT_LABEL = "finding"
Snapshot = tuple[tuple[Shape, ...], int | None]  # shapes, selected index


class AnnotationDocument:
    """Shapes of one image of ``image_size`` ``(height, width)`` (None: unknown, no clamping)."""

    def __init__(self, shapes: Iterable[Shape] = (), image_size: tuple[int, int] | None = None,
                 labels: Sequence[str] = (), history_limit: int = 500) -> None:
        self._shapes: tuple[Shape, ...] = tuple(shapes)
        self._selected: int | None = None
        self._saved: tuple[Shape, ...] = self._shapes
        self._pending: Snapshot | None = None
        self._history: History[Snapshot] = History(history_limit)
        self._listeners: list[Callable[[], None]] = []
        self.image_size = image_size
        self.draft: Shape | None = None
        self.labels: list[str] = []
        self.label = DEFAULT_LABEL
        self.set_labels(labels)

    # -- reading ---------------------------------------------------------------------------
    @property
    def shapes(self) -> tuple[Shape, ...]:
        return self._shapes

    @property
    def selected(self) -> int | None:
        return self._selected

    @property
    def selected_shape(self) -> Shape | None:
        return None if self._selected is None else self._shapes[self._selected]

    @property
    def dirty(self) -> bool:
        """True when the shapes differ from the ones last loaded or saved."""
        return self._shapes != self._saved

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    def clamp(self, x: float, y: float) -> Point:
        """``(x, y)`` moved inside the image (unchanged when the size is unknown)."""
        if self.image_size is None:
            return float(x), float(y)
        height, width = self.image_size
        return min(max(float(x), 0.0), float(width)), min(max(float(y), 0.0), float(height))

    # -- listeners -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change of shapes, selection, draft or labels."""
        self._listeners.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.remove(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    # -- whole document --------------------------------------------------------------------
    def reset(self, shapes: Iterable[Shape], image_size: tuple[int, int] | None) -> None:
        """Start on another image: its shapes, nothing selected, an empty history, clean."""
        self._shapes = self._saved = tuple(shapes)
        self._selected, self._pending, self.draft = None, None, None
        self.image_size = image_size
        self._history.clear()
        self._changed()

    def mark_saved(self) -> None:
        self._saved = self._shapes

    def set_labels(self, labels: Sequence[str], default: str | None = None) -> None:
        """The label choices (a model's or dataset's classes); the current label is kept when
        it is one of them, else ``default`` or the first label becomes current."""
        self.labels = list(dict.fromkeys(str(label) for label in labels))
        if default is not None:
            self.label = default
        elif self.labels and self.label not in self.labels:
            self.label = self.labels[0]
        self._changed()

    # -- edits (each one undo step) --------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        return self._shapes, self._selected

    def _restore(self, snapshot: Snapshot) -> None:
        self._shapes, self._selected = snapshot

    def _commit(self, shapes: tuple[Shape, ...], selected: int | None) -> None:
        if shapes == self._shapes and selected == self._selected:
            return
        if shapes != self._shapes:
            self._history.push(self._snapshot())
        self._shapes, self._selected = shapes, selected
        self._changed()

    def add(self, shape: Shape, select: bool = False) -> int:
        """Append ``shape`` on top of the others (and select it if asked); returns its index."""
        self._commit(self._shapes + (shape,), len(self._shapes) if select else self._selected)
        return len(self._shapes) - 1

    def replace(self, index: int, shape: Shape) -> None:
        shapes = list(self._shapes)
        shapes[index] = shape
        self._commit(tuple(shapes), self._selected)

    def delete(self, index: int) -> None:
        shapes = self._shapes[:index] + self._shapes[index + 1:]
        selected = self._selected
        if selected is not None:
            selected = None if selected == index else selected - (selected > index)
        self._commit(shapes, selected)

    def delete_selected(self) -> bool:
        if self._selected is None:
            return False
        self.delete(self._selected)
        return True

    def clear(self) -> None:
        self._commit((), None)

    def set_label(self, label: str) -> None:
        """The label of new shapes, and of the selected shape when there is one."""
        self.label = label
        shape = self.selected_shape
        if shape is not None and shape.label != label:
            self.replace(self._selected, Shape(label, shape.shape_type, shape.points,
                                               shape.text, dict(shape.flags)))
        else:
            self._changed()

    def select(self, index: int | None) -> None:
        """Selection is not an edit: it is not recorded, but undo restores the one it had."""
        if index is not None and not 0 <= index < len(self._shapes):
            raise IndexError(f"no shape {index} (the document has {len(self._shapes)})")
        if index != self._selected:
            self._selected = index
            self._changed()

    def set_draft(self, shape: Shape | None) -> None:
        """The shape being drawn, shown by the view but not part of the document yet."""
        self.draft = shape
        self._changed()

    # -- drags -----------------------------------------------------------------------------
    def begin_change(self) -> None:
        self._pending = self._snapshot()

    def preview(self, index: int, shape: Shape) -> None:
        """Show ``shape`` in place of shape ``index`` during a drag, without recording it."""
        shapes = list(self._shapes)
        shapes[index] = shape
        self._shapes = tuple(shapes)
        self._changed()

    def end_change(self) -> None:
        """Record the drag since :meth:`begin_change` as one undo step (nothing if no change)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] != self._shapes:
            self._history.push(pending)
            self._changed()

    # -- history ---------------------------------------------------------------------------
    def undo(self) -> bool:
        snapshot = self._history.undo(self._snapshot())
        if snapshot is None:
            return False
        self._restore(snapshot)
        self._changed()
        return True

    def redo(self) -> bool:
        snapshot = self._history.redo(self._snapshot())
        if snapshot is None:
            return False
        self._restore(snapshot)
        self._changed()
        return True
