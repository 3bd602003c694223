"""The Viewer's Folder page: the images beside the one open, or those of a DICOM file-set.

A folder is listed by name; a file-set (a DICOMDIR) by patient / study / series, a bold
heading per series and its images under it, its records that are not images (SR,
presentation states, RT) said in the status line. Listing runs in a worker: a folder may
hold 100 000 files and a file-set is read through pydicom. Each image row holds its path;
Page Down / Page Up step through them.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from cxr_desktop.core.errors import FileError
from cxr_desktop.core.io.fileset import FileSetEntry, read_dicomdir
from cxr_desktop.gui.workers import TaskRunner

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ""}
PATH = Qt.ItemDataRole.UserRole


def folder_images(folder: Path) -> list[str]:
    """The names of the image files in ``folder``, sorted; one line naming it when it
    cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entry.name for entry in entries
                          if not entry.name.startswith(".")
                          and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
                          and entry.is_file())
    except OSError as exc:
        raise FileError(folder, f"cannot list the folder ({exc.strerror or exc})") from exc


class FolderList(QListWidget):
    """``image_chosen(path)`` when a row is clicked or activated."""

    image_chosen = Signal(str)
    status_message = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self.source = ""  # the folder or DICOMDIR listed
        self.setToolTip("Images in this folder (or DICOM file-set): Page Down / Page Up for "
                        "next and previous")
        self.itemActivated.connect(self._on_item)
        self.itemClicked.connect(self._on_item)

    # listing -------------------------------------------------------------------------------
    def show_folder_of(self, path: Path) -> None:
        """List the images beside ``path``; within a file-set already listed, select it."""
        if self.select(path):
            return
        folder = path.parent
        if self.source == str(folder):
            return
        self.clear()
        self.source = str(folder)
        self._runner.submit("viewer.folder", folder_images, folder,
                            done=partial(self._on_folder_listed, folder, path),
                            failed=self.status_message.emit)

    def show_fileset(self, dicomdir: Path) -> None:
        """List a DICOMDIR's images by patient / study / series; open the first one."""
        self.clear()
        self.source = str(dicomdir)
        self._runner.submit("viewer.folder", read_dicomdir, dicomdir,
                            done=partial(self._on_fileset_read, dicomdir),
                            failed=self.status_message.emit)

    def _on_folder_listed(self, folder: Path, path: Path, names: list[str]) -> None:
        if self.source != str(folder):
            return  # another folder was opened meanwhile
        for name in names:
            item = QListWidgetItem(name)
            item.setData(PATH, str(folder / name))
            self.addItem(item)
        self.select(path)

    def _on_fileset_read(self, dicomdir: Path, entries: list[FileSetEntry]) -> None:
        if self.source != str(dicomdir):
            return
        group = None
        for entry in entries:
            if entry.skipped:
                continue
            if entry.group != group:
                group = entry.group
                heading = QListWidgetItem(group)
                font = heading.font()
                font.setBold(True)
                heading.setFont(font)
                heading.setFlags(Qt.ItemFlag.NoItemFlags)
                self.addItem(heading)
            item = QListWidgetItem("    " + entry.path.name)
            item.setData(PATH, str(entry.path))
            item.setToolTip(str(entry.path))
            self.addItem(item)
        images = [e for e in entries if not e.skipped]
        skipped = [e for e in entries if e.skipped]
        kinds = sorted({e.record_type for e in skipped})
        self.status_message.emit(
            f"{dicomdir}: {len(images)} images" + (
                f"; {len(skipped)} records skipped ({', '.join(kinds)}: not images)"
                if skipped else ""))
        if images:
            self.image_chosen.emit(str(images[0].path))

    # moving --------------------------------------------------------------------------------
    def image_rows(self) -> list[int]:
        return [row for row in range(self.count()) if self.item(row).data(PATH)]

    def select(self, path: Path) -> bool:
        """Select the row of ``path`` if it is listed; True when it is."""
        key = os.path.normcase(os.path.abspath(path))
        for row in self.image_rows():
            if os.path.normcase(os.path.abspath(self.item(row).data(PATH))) == key:
                self.setCurrentRow(row)
                return True
        return False

    def step(self, delta: int) -> str | None:
        """The path ``delta`` image rows away from the current one (headings skipped)."""
        rows = self.image_rows()
        if not rows:
            return None
        current = self.currentRow()
        at = rows.index(current) if current in rows else -1 if delta > 0 else len(rows)
        row = rows[min(max(at + delta, 0), len(rows) - 1)]
        self.setCurrentRow(row)
        return str(self.item(row).data(PATH))

    @Slot(QListWidgetItem)
    def _on_item(self, item: QListWidgetItem) -> None:
        path = item.data(PATH)
        if path:
            self.image_chosen.emit(str(path))
