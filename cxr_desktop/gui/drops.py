"""Drag and drop of files onto a widget: the tabs open the first dropped path."""

from __future__ import annotations

from PySide6.QtGui import QDragEnterEvent, QDropEvent


def accept_file_drag(event: QDragEnterEvent) -> None:
    if event.mimeData().hasUrls():
        event.acceptProposedAction()


def dropped_path(event: QDropEvent) -> str | None:
    """The local path of the first dropped URL, if any."""
    urls = event.mimeData().urls()
    return urls[0].toLocalFile() if urls else None
