"""The annotation tools, edits, label choice and file actions, with their shortcuts.

Layout only: :class:`AnnotationPanel` connects the actions. The shortcuts are meant to be
added to the whole viewer tab (``host.addActions(toolbar.shortcut_actions())``) with
``WidgetWithChildrenShortcut``, so V, R, E... work wherever the focus is in the viewer and
nowhere else; typing in the label box is not taken by them (line edits claim their keys).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QToolBar, QWidget

from cxr_desktop.core.annotations.tools import TOOLS

TOOL_TEXT = {
    "select": ("Select", "V", "Select, move and reshape (drag a handle); drag empty space to pan"),
    "rectangle": ("Rect", "R", "Rectangle: drag a box"),
    "ellipse": ("Ellipse", "E", "Ellipse: drag its bounding box"),
    "polygon": ("Polygon", "P", "Polygon: click the vertices; double-click, Enter or the first "
                "vertex closes it; Backspace removes the last, Escape cancels"),
    "freehand": ("Freehand", "F", "Freehand: drag a stroke"),
    "arrow": ("Arrow", "A", "Arrow: drag from the tail to the head"),
    "text": ("Text", "T", "Text note: click where it goes"),
}


class AnnotationToolbar(QToolBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Annotations", parent)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addWidget(QLabel("Annotate: "))
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusive(True)
        self.tool_actions: dict[str, QAction] = {}
        for name in TOOLS:
            text, key, tip = TOOL_TEXT[name]
            action = self._action(text, key, f"{tip} ({key})", checkable=True)
            action.setData(name)
            self.tool_group.addAction(action)
            self.tool_actions[name] = action
        self.tool_actions["select"].setChecked(True)
        self.addSeparator()
        self.delete_action = self._action("Delete", QKeySequence.StandardKey.Delete,
                                          "Delete the selected shape (Delete)")
        self.undo_action = self._action("Undo", QKeySequence.StandardKey.Undo, "Undo (Ctrl+Z)")
        self.redo_action = self._action("Redo", "Ctrl+Shift+Z", "Redo (Ctrl+Shift+Z)")
        self.addSeparator()
        self.addWidget(QLabel(" Label: "))
        self.label_combo = QComboBox()
        self.label_combo.setEditable(True)
        self.label_combo.setInsertPolicy(QComboBox.InsertPolicy.InsertAtBottom)
        self.label_combo.setMinimumContentsLength(12)
        self.label_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.label_combo.setToolTip("Label of new shapes and of the selected shape; type a "
                                    "new one and press Enter")
        self.addWidget(self.label_combo)
        self.addSeparator()
        self.save_action = self._action("Save", QKeySequence.StandardKey.Save,
                                        "Save this image's annotations to the project folder "
                                        "(Ctrl+S; also saved when another image is opened)")
        self.import_action = self._action("Import CSV...", None,
                                          "Import an Object-CXR CSV into the project")
        self.export_action = self._action("Export CSV...", None,
                                          "Export the project's annotations as an Object-CXR "
                                          "CSV (rectangles, ellipses, polygons)")
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)

    def _action(self, text: str, shortcut, tip: str, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(tip)
        action.setCheckable(checkable)
        self.addAction(action)
        return action

    def shortcut_actions(self) -> list[QAction]:
        """The actions with a keyboard shortcut, to add to the widget the shortcuts serve."""
        return [a for a in self.actions() if not a.shortcut().isEmpty()]
