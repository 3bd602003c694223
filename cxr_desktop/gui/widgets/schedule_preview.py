"""The Training tab's schedule fields: numbers that can say "auto", and the plan they give.

Frozen epochs, batch size and learning rate default to ``auto`` (the lowest value of each
box, shown as the word): the engine then takes them from the budget-aware plan of
``core.train.schedule``. ``SchedulePreview`` shows that plan before Start, and the LR the
probe found once the run has it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QSpinBox, QWidget

from cxr_desktop.core.train.config import AUTO_LR
from cxr_desktop.core.train.schedule import SchedulePlan

AUTO_TEXT = "auto"


def auto_spin(auto_value: int, high: int, tip: str) -> QSpinBox:
    """An integer box whose lowest value, ``auto_value``, reads "auto" and is the default."""
    box = QSpinBox()
    box.setRange(auto_value, high)
    box.setSpecialValueText(AUTO_TEXT)
    box.setValue(auto_value)
    box.setToolTip(tip)
    return box


def auto_lr_box(tip: str) -> QDoubleSpinBox:
    """A learning-rate box whose 0 reads "auto" (the LR finder's probe at the start)."""
    box = QDoubleSpinBox()
    box.setDecimals(6)
    box.setRange(0.0, 1.0)
    box.setSingleStep(1e-4)
    box.setSpecialValueText(AUTO_TEXT)
    box.setValue(0.0)
    box.setToolTip(tip)
    return box


def lr_setting(box: QDoubleSpinBox) -> float | str:
    """The box's LR as ``TrainConfig.lr`` takes it: a number, or ``"auto"``."""
    return AUTO_LR if box.value() <= 0.0 else float(box.value())


class SchedulePreview(QLabel):
    """One wrapped line: frozen epochs, batch, LRs, warm-up and sizes of the coming run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setToolTip("The schedule Start will follow: settings left at auto come from "
                        "the epochs and the number of training images")
        self.plan: SchedulePlan | None = None
        self.show_nothing("open a dataset to see the schedule")

    def show_nothing(self, why: str) -> None:
        self.plan = None
        self.setText(f"Schedule: {why}")

    def show_plan(self, plan: SchedulePlan, running: bool = False) -> None:
        self.plan = plan
        self.setText(f"{'Running' if running else 'Schedule'}: {plan.describe()}")
