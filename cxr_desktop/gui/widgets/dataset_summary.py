"""The Dataset tab's left pane: counts per split and class, the notes, the balance chart.

Once the images are checked the counts are those of the images that could be read (the
ones training uses), the unreadable ones counted beside each split. The notes say what the
import assumed or did on its own (a preset's rules, rows merged, a test split drawn from
train); images the import found without a class can be opened in the Viewer from here.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.gui.widgets.balance_chart import BalanceChart


def notes_text(spec: DatasetSpec) -> str:
    """The annotations (``N shapes on M images``) and what the import assumed (rich text)."""
    counts = spec.annotation_counts()
    lines = [f"<b>{counts['shapes']} shapes on {counts['images']} images</b>"] \
        if counts["shapes"] else []
    lines += [f"&bull; {html.escape(note)}" for note in spec.notes]
    return "<br>".join(lines)


def unlabelled_paths(spec: DatasetSpec) -> list[str]:
    """Images the import found without a label (``test/`` of the seeds' folders)."""
    return [path for p in spec.problems if p.kind == "unlabelled" for path in p.paths]


class DatasetSummary(QSplitter):
    open_image_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.spec: DatasetSpec | None = None
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Split / class", "Images", "Share"])
        self.tree.setRootIsDecorated(False)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)  # one note alone is rich text too
        self.notes.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes.setMargin(4)
        self.unlabelled_button = QPushButton("")
        self.unlabelled_button.setToolTip("Open them in the Viewer: its folder list steps "
                                          "through them, with a model to predict on each")
        self.unlabelled_button.setVisible(False)
        notes_box = QWidget()
        notes_layout = QVBoxLayout(notes_box)
        notes_layout.setContentsMargins(0, 0, 0, 0)
        notes_layout.addWidget(self.notes)
        notes_layout.addWidget(self.unlabelled_button)
        notes_layout.addStretch(1)
        self.notes_area = QScrollArea()
        self.notes_area.setWidgetResizable(True)
        self.notes_area.setWidget(notes_box)
        self.notes_area.setVisible(False)
        self.chart = BalanceChart()
        for widget in (self.tree, self.notes_area, self.chart):
            self.addWidget(widget)
        self.setSizes([180, 200, 260])
        self.unlabelled_button.clicked.connect(self._open_unlabelled)

    def show_spec(self, spec: DatasetSpec, unreadable: set[str] | None = None) -> None:
        """Show ``spec``'s counts (without ``unreadable`` item paths once checked)."""
        self.spec = spec
        summary = spec.summary(unreadable or ())
        self.tree.clear()
        for split, info in summary["splits"].items():
            bad = info.get("unreadable", 0)
            node = QTreeWidgetItem([split, str(info["images"]),
                                    f"+{bad} unreadable" if bad else ""])
            font = node.font(0)
            font.setBold(True)
            node.setFont(0, font)
            node.setFont(1, font)
            for name, count in info["per_class"].items():
                share = f"{100 * count / info['images']:.0f} %" if info["images"] else "-"
                node.addChild(QTreeWidgetItem(["    " + name, str(count), share]))
            self.tree.addTopLevelItem(node)
            node.setExpanded(True)
        for column in range(3):
            self.tree.resizeColumnToContents(column)
        self.notes.setText(notes_text(spec))
        loose = unlabelled_paths(spec)
        self.unlabelled_button.setText(f"Open the {len(loose)} image(s) without a class in "
                                       "the Viewer")
        self.unlabelled_button.setVisible(bool(loose))
        self.notes_area.setVisible(bool(self.notes.text()) or bool(loose))
        self.chart.show_counts(summary["splits"], spec.classes)

    @Slot()
    def _open_unlabelled(self) -> None:
        loose = unlabelled_paths(self.spec) if self.spec is not None else []
        if loose and self.spec is not None:
            self.open_image_requested.emit(str(self.spec.root / loose[0]))
