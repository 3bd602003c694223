"""Training tab: the dataset and the device a run will use."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from cxr_desktop.core.data.spec import DatasetSpec
from cxr_desktop.core.device import DeviceInfo
from cxr_desktop.gui.workers import TaskRunner


class TrainingTab(QWidget):
    status_message = Signal(str)

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self.spec: DatasetSpec | None = None
        self.dataset_label = QLabel("none: open one in the Dataset tab")
        self.device_label = QLabel("probing...")
        form = QFormLayout(self)
        form.addRow("Dataset:", self.dataset_label)
        form.addRow("Device:", self.device_label)

    def set_dataset(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.dataset_label.setText(f"{spec.root} ({len(spec.items)} images, {spec.task})")

    def set_device(self, device: DeviceInfo) -> None:
        self.device_label.setText(device.label)

    def shutdown(self) -> None:
        """Nothing runs here yet that must be stopped."""
