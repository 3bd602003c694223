"""Undo and redo over whole-document snapshots.

Shapes are frozen, so a snapshot is a tuple of references: keeping hundreds costs next to
nothing, and undo can never half-apply an edit.
"""

from __future__ import annotations

from typing import Generic, TypeVar

State = TypeVar("State")


class History(Generic[State]):
    """Two stacks of states; ``limit`` bounds the undo stack (the oldest states go first)."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._undo: list[State] = []
        self._redo: list[State] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def push(self, before: State) -> None:
        """Record the state an edit started from; a new edit forgets what could be redone."""
        self._undo.append(before)
        del self._undo[:-self.limit]
        self._redo.clear()

    def undo(self, current: State) -> State | None:
        """The state to return to (``current`` becomes redoable), or None at the beginning."""
        if not self._undo:
            return None
        self._redo.append(current)
        return self._undo.pop()

    def redo(self, current: State) -> State | None:
        if not self._redo:
            return None
        self._undo.append(current)
        return self._redo.pop()

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
