"""The Dataset tab on the demo dataset, a generic CSV and a public dataset's folder (RSNA):
summary, notes, chart, problems, thumbnails with annotations, augmentation preview, column
mapping (a preset's, offered) and cancelled checks."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from public_layouts import make_rsna

from cxr_desktop.core.data import DatasetSpec, open_dataset
from cxr_desktop.core.data.checks import unreadable_paths
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.train.augment import preview
from cxr_desktop.core.train.config import AugmentSettings
from cxr_desktop.gui.tabs import dataset_tab
from cxr_desktop.gui.tabs.dataset_tab import DatasetTab
from cxr_desktop.gui.widgets.thumbnail_grid import (
    ANNOTATION_RGB,
    INDEX_ROLE,
    PATH_ROLE,
    THUMB_SIZE,
    matching_items,
)
from cxr_desktop.gui.workers import TaskRunner

TIMEOUT = 30_000


def small_demo(root: Path):
    return make_demo_dataset(root, n_images=30, size=128, seed=3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return small_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def tab(qtbot):
    """A Dataset tab with its own runner; not given to qtbot.addWidget, which would delete
    it (and the runner's running threads) before this fixture has waited for them."""
    runner = TaskRunner()
    widget = DatasetTab(runner)
    runner.setParent(widget)  # its threads are then children the conftest check can see
    widget.resize(1300, 800)
    widget.show()
    yield widget
    widget.shutdown()
    qtbot.waitUntil(lambda: not runner.busy(), timeout=TIMEOUT)
    widget.close()
    widget.deleteLater()


def idle(tab: DatasetTab) -> bool:
    return not tab._runner.busy() and not tab.thumbnails.loading


def open_and_wait(qtbot, tab: DatasetTab, path) -> DatasetSpec:
    tab.open_dataset(path)
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)
    return tab.spec


def rgb_array(qimage: QImage) -> np.ndarray:
    image = qimage.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(),
                                                              image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_demo_button_fills_summary_chart_and_problems(tab, qtbot, monkeypatch):
    made = []
    monkeypatch.setattr(dataset_tab, "make_demo_dataset", lambda root: made.append(
        small_demo(root)))
    qtbot.mouseClick(tab.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)
    spec = tab.spec
    assert tab.mapping_dialog is None  # a known layout opens directly
    # once checked, the counts are of the readable images (the planted broken one is not)
    summary = spec.summary(unreadable_paths(tab.problems))
    assert summary["unreadable"] == 1
    tree = {}
    for i in range(tab.summary.topLevelItemCount()):
        node = tab.summary.topLevelItem(i)
        tree[node.text(0)] = (int(node.text(1)), {
            node.child(j).text(0).strip(): int(node.child(j).text(1))
            for j in range(node.childCount())})
    assert list(tree) == ["train", "val", "test"]
    for split, info in summary["splits"].items():
        assert tree[split] == (info["images"], info["per_class"])
    bad = next(s for s, info in summary["splits"].items() if info["unreadable"])
    row = next(tab.summary.topLevelItem(i) for i in range(3)
               if tab.summary.topLevelItem(i).text(0) == bad)
    assert row.text(2) == "+1 unreadable"
    # One bar item per class, its heights the counts of that class in each split.
    assert len(tab.chart.bars) == len(spec.classes)
    for bar, name in zip(tab.chart.bars, spec.classes, strict=True):
        heights = [float(h) for h in bar.opts["height"]]
        assert heights == [summary["splits"][s]["per_class"][name] for s in summary["splits"]]
    # The planted duplicate and the unreadable file are listed.
    planted = {p.kind: p.path for p in made[0].planted}
    assert spec.root == made[0].root
    kinds = {p.kind: p.paths for p in tab.problems}
    assert planted["duplicate"] in kinds["duplicate"]
    assert kinds["unreadable"] == [planted["corrupt"]]
    assert tab.problem_list.count() == len(tab.problems)
    assert tab.side_tabs.tabText(0) == f"Problems ({len(tab.problems)})"


def test_clicking_a_problem_asks_the_viewer_for_its_image(tab, qtbot, demo):
    spec = open_and_wait(qtbot, tab, demo.root)
    corrupt = next(p.path for p in demo.planted if p.kind == "corrupt")
    row = next(i for i, p in enumerate(tab.problems) if p.kind == "unreadable")
    item = tab.problem_list.item(row)
    tab.problem_list.scrollToItem(item)
    center = tab.problem_list.visualItemRect(item).center()
    with qtbot.waitSignal(tab.open_image_requested, timeout=2_000) as blocker:
        qtbot.mouseClick(tab.problem_list.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert blocker.args == [str(spec.root / corrupt)]


def test_thumbnails_filtered_annotated_and_unreadable_shown(tab, qtbot, demo):
    spec = open_and_wait(qtbot, tab, demo.root)
    grid = tab.thumbnails
    assert grid.list.count() == len(spec.items)  # fewer than a page: all shown
    grid.set_filter("val", "object")
    expected = [str(spec.abspath(spec.items[i])) for i in matching_items(spec, "val", "object")]
    assert 0 < len(expected) < len(spec.items)
    qtbot.waitUntil(lambda: grid.list.count() == len(expected) and idle(tab), timeout=TIMEOUT)
    assert grid.shown_paths() == expected
    assert all(spec.items[i].split == "val" and spec.items[i].labels == "object"
               for i in grid.matches)
    assert grid.count_label.text().startswith(f"{len(expected)} of {len(expected)}")

    # An annotated positive: annotation-coloured pixels inside its scaled box, none elsewhere
    # than around shapes; a negative has none at all (it stays gray).
    rows = {grid.list.item(r).data(PATH_ROLE): r for r in range(grid.list.count())}
    index = next(i for i in grid.matches if spec.items[i].shapes)
    item = spec.items[index]
    tile = grid.list.item(rows[str(spec.abspath(item))])
    pixels = rgb_array(tile.icon().pixmap(THUMB_SIZE, THUMB_SIZE).toImage())
    assert pixels.shape == (THUMB_SIZE, THUMB_SIZE, 3)
    colour = np.all(np.abs(pixels.astype(int) - ANNOTATION_RGB) < 40, axis=2)
    scale = THUMB_SIZE / 128
    x0, y0, x1, y1 = (round(v * scale) for v in item.shapes[0].bounds())
    assert colour[y0:y1 + 1, x0:x1 + 1].sum() >= 8
    assert colour.sum() <= sum(
        (round((s.bounds()[2] - s.bounds()[0]) * scale) + 6)
        * (round((s.bounds()[3] - s.bounds()[1]) * scale) + 6) for s in item.shapes)

    grid.set_filter("train", "no_object")
    corrupt = str(spec.root / next(p.path for p in demo.planted if p.kind == "corrupt"))
    qtbot.waitUntil(lambda: corrupt in grid.shown_paths() and idle(tab), timeout=TIMEOUT)
    negative = grid.list.item(grid.shown_paths().index(corrupt))
    assert "unreadable" in negative.toolTip()
    readable = grid.list.item(next(i for i, p in enumerate(grid.shown_paths()) if p != corrupt))
    gray = rgb_array(readable.icon().pixmap(THUMB_SIZE, THUMB_SIZE).toImage())
    assert np.array_equal(gray[..., 0], gray[..., 1])  # no annotation colour on a negative

    # Double-click opens the image in the Viewer.
    grid.list.scrollToItem(readable)
    center = grid.list.visualItemRect(readable).center()
    with qtbot.waitSignal(tab.open_image_requested, timeout=2_000) as blocker:
        # QTest sends no press before its double-click; item views need one.
        qtbot.mouseClick(grid.list.viewport(), Qt.MouseButton.LeftButton, pos=center)
        qtbot.mouseDClick(grid.list.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert blocker.args == [readable.data(PATH_ROLE)]


def test_thumbnails_come_in_pages(tab, qtbot, demo, monkeypatch):
    from cxr_desktop.gui.widgets import thumbnail_grid

    monkeypatch.setattr(thumbnail_grid, "PAGE_SIZE", 8)
    monkeypatch.setattr(thumbnail_grid, "CHUNK_SIZE", 3)
    assert not tab.thumbnails.more_button.isVisibleTo(tab)  # nothing open, nothing more
    spec = open_and_wait(qtbot, tab, demo.root)
    grid = tab.thumbnails
    assert grid.list.count() == 8 and grid.more_button.isVisibleTo(tab)
    qtbot.mouseClick(grid.more_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: grid.list.count() == 16 and idle(tab), timeout=TIMEOUT)
    assert grid.shown_paths() == [str(spec.abspath(item)) for item in spec.items[:16]]
    assert grid.count_label.text() == f"16 of {len(spec.items)} images"


def test_augmentation_preview_rerolls_and_repeats_a_seed(tab, qtbot, demo):
    open_and_wait(qtbot, tab, demo.root)
    tab.side_tabs.setCurrentWidget(tab.augment)  # selects the first thumbnail
    augment = tab.augment
    qtbot.waitUntil(lambda: augment.source is not None and idle(tab), timeout=TIMEOUT)
    source = augment.source
    assert source.shape == (224, 224) and len(augment.outputs) == 6
    np.testing.assert_array_equal(augment.outputs[0], source)
    settings = augment.settings()
    assert settings == AugmentSettings()
    for seed, image in zip(augment.seeds, augment.outputs[1:], strict=True):
        np.testing.assert_array_equal(image, preview(source, settings, seed))
    first_seeds, first = list(augment.seeds), [o.copy() for o in augment.outputs]
    qtbot.mouseClick(augment.reroll_button, Qt.MouseButton.LeftButton)
    assert augment.seeds != first_seeds
    assert not any(np.array_equal(a, b) for a, b in zip(first[1:], augment.outputs[1:],
                                                           strict=True))
    augment.set_seeds(first_seeds)
    for a, b in zip(first, augment.outputs, strict=True):
        np.testing.assert_array_equal(a, b)
    # The controls are the settings: no rotation, zoom, shift and changes leave it as-is.
    with qtbot.waitSignal(augment.settings_changed):
        augment.spins["rotate_deg"].setValue(20)
    assert augment.settings() == replace(AugmentSettings(), rotate_deg=20.0)
    augment.set_settings(AugmentSettings.none())
    for image in augment.outputs[1:]:
        np.testing.assert_array_equal(image, source)


@pytest.fixture
def generic_csv(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    lines = ["file,view,pid,finding_count"]
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(
            tmp_path / "imgs" / f"im{i:02d}.png")
        lines.append(f"imgs/im{i:02d}.png,{'AP' if i % 3 == 0 else 'PA'},p{i // 2},{i % 4}")
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_mapping_dialog_previews_and_opens_a_generic_csv(tab, qtbot, generic_csv):
    tab.open_dataset(generic_csv)  # the layout is detected in a worker
    qtbot.waitUntil(lambda: tab.mapping_dialog is not None, timeout=TIMEOUT)
    dialog = tab.mapping_dialog
    assert dialog is not None and dialog.isVisible()
    form = dialog.form
    assert form.image_combo.currentText() == "file"
    assert form.preset_name() == "none"  # no preset matches this header
    assert "cannot tell which column holds the labels" in dialog.error
    form.set_labels(["finding_count"])
    form.patient_combo.setCurrentText("pid")
    form.filters_edit.setPlainText("view == PA")
    qtbot.waitUntil(lambda: not dialog.busy() and (dialog.spec is not None or bool(dialog.error)),
                    timeout=TIMEOUT)
    assert dialog.spec.task == "multiclass"  # counts 0-3 are four classes...
    form.binarize_check.setChecked(True)
    qtbot.waitUntil(lambda: not dialog.busy() and dialog.spec is not None, timeout=TIMEOUT)
    assert dialog.spec.task == "binary"  # ...until non-zero is 1
    assert dialog.table.rowCount() == 20
    for row in range(dialog.table.rowCount()):
        number = int(dialog.table.item(row, 0).text()[7:9])
        expected = "finding_count" if number % 4 else "no_finding_count"
        assert dialog.table.item(row, 3).text() == expected
        assert dialog.table.item(row, 2).text() == f"p{number // 2}"
        assert number % 3 != 0  # filtered to PA
    assert "20 images" in dialog.status.text() and "binary" in dialog.status.text()
    # One note alone is rich text too (its bullet an entity, never shown as "&bull;").
    assert dialog.notes.text().startswith(
        "&bull; filter view == PA left out 10 of 30 rows (view AP 10)<br>&bull; the 20 images "
        "have no split: drawn into train")
    assert dialog.notes.textFormat() == Qt.TextFormat.RichText

    form.filters_edit.setPlainText("nosuch == 1")
    qtbot.waitUntil(lambda: not dialog.busy() and bool(dialog.error), timeout=TIMEOUT)
    assert "nosuch" in dialog.error and dialog.table.rowCount() == 0
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    form.filters_edit.setPlainText("view == PA")
    qtbot.waitUntil(lambda: not dialog.busy() and dialog.spec is not None, timeout=TIMEOUT)

    with qtbot.waitSignal(tab.dataset_opened, timeout=TIMEOUT):
        dialog.accept()
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)
    spec = tab.spec
    assert len(spec.items) == 20 and spec.task == "binary"
    assert spec.source["mapping"]["filters"] == ["view == PA"]
    assert spec.source["mapping"]["binarize"] == "nonzero"
    assert {item.patient for item in spec.items} == {f"p{i // 2}" for i in range(30) if i % 3}


@pytest.fixture(scope="module")
def rsna(tmp_path_factory) -> Path:
    return make_rsna(tmp_path_factory.mktemp("rsna"))


def test_a_preset_folder_is_offered_its_preset_and_shows_notes_and_boxes(tab, qtbot, rsna):
    tab.open_dataset(rsna)  # the label table among three CSVs, found by its header
    qtbot.waitUntil(lambda: tab.mapping_dialog is not None, timeout=TIMEOUT)
    dialog = tab.mapping_dialog
    assert dialog.isVisible() and dialog.path == rsna / "stage_2_train_labels.csv"
    assert dialog.form.preset_name() == "rsna"
    qtbot.waitUntil(lambda: not dialog.busy() and dialog.spec is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(tab.dataset_opened, timeout=TIMEOUT):
        dialog.accept()  # "Open dataset": the preset as offered
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)
    spec = tab.spec
    assert spec.source["mapping"]["preset"] == "rsna"
    assert spec.annotation_counts() == {"images": 5, "shapes": 9}
    notes = tab.notes.text()
    assert tab.notes_area.isVisible()
    assert notes.startswith("<b>9 shapes on 5 images</b>")
    assert "RSNA pneumonia detection preset: binary lung opacity" in notes
    assert "3 images have several rows" in notes
    assert tab.summary.topLevelItem(0).text(0) == "train"

    # Every image is a tile; a boxed one shows its boxes (image pixels, 1024 px) scaled.
    grid = tab.thumbnails
    assert grid.list.count() == len(spec.items) == 12
    boxed = 0
    for row in range(grid.list.count()):
        tile = grid.list.item(row)
        item = spec.items[tile.data(INDEX_ROLE)]
        assert tile.toolTip().endswith(f"1024 x 1024 px, {len(item.shapes)} annotation(s)")
        pixels = rgb_array(tile.icon().pixmap(THUMB_SIZE, THUMB_SIZE).toImage())
        colour = np.all(np.abs(pixels.astype(int) - ANNOTATION_RGB) < 40, axis=2)
        if not item.shapes:
            assert colour.sum() == 0
            continue
        boxed += 1
        scale = THUMB_SIZE / 1024
        for shape in item.shapes:
            x0, y0, x1, y1 = (round(v * scale) for v in shape.bounds())
            edge = np.zeros_like(colour)
            edge[max(y0 - 1, 0):y1 + 2, max(x0 - 1, 0):x1 + 2] = True
            edge[y0 + 2:y1 - 1, x0 + 2:x1 - 1] = False
            assert colour[edge].sum() >= (x1 - x0 + y1 - y0)  # its outline is drawn
    assert boxed == 5


def test_cancel_stops_the_checks_early(tab, qtbot, demo, tmp_path):
    spec = open_dataset(demo.root)
    spec.items = spec.items * 40  # ~1300 reads: long enough to cancel midway
    saved = spec.save(tmp_path / "big.json")
    with qtbot.waitSignal(tab.dataset_opened, timeout=TIMEOUT):
        tab.open_dataset(saved)
    assert tab.progress.isVisible() and tab.cancel_button.isVisible()
    qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)
    assert tab.report.stopped
    assert tab.report.checked < tab.report.total == len(spec.items)
    assert "stopped" in tab.problems_title.text()
    assert not tab.progress.isVisible()


def test_progress_of_a_replaced_check_does_not_move_the_bar(tab, qtbot, demo):
    import threading

    with qtbot.waitSignal(tab.dataset_opened, timeout=TIMEOUT):
        tab.open_dataset(demo.root)
    replaced = threading.Event()  # the token of a check that was cancelled for this one
    tab.check_progress.emit(replaced, 7, 12345)
    assert tab.progress.maximum() != 12345
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)


def test_mapping_edits_never_run_two_imports_at_once(tab, qtbot, generic_csv, monkeypatch):
    import threading
    import time

    from cxr_desktop.gui.dialogs import csv_mapping

    running, most, calls = [0], [0], []
    lock = threading.Lock()
    real_parse = csv_mapping._parse

    def slow_parse(path, mapping):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        calls.append(mapping.binarize)
        time.sleep(0.3)  # a big table
        try:
            return real_parse(path, mapping)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(csv_mapping, "_parse", slow_parse)
    tab.open_dataset(generic_csv)  # the layout is detected in a worker
    qtbot.waitUntil(lambda: tab.mapping_dialog is not None, timeout=TIMEOUT)
    dialog = tab.mapping_dialog
    dialog.form.set_labels(["finding_count"])
    for _ in range(3):
        dialog.refresh()
    dialog.form.binarize_check.setChecked(True)
    dialog.refresh()
    qtbot.waitUntil(lambda: not dialog.busy() and dialog.spec is not None, timeout=TIMEOUT)
    assert most[0] == 1 and len(calls) == 2  # the first edit, then only the newest
    assert calls[-1] == "nonzero" and dialog.spec.task == "binary"
    dialog.reject()


def test_a_file_that_is_no_dataset_gives_one_line(tab, qtbot, tmp_path):
    picture = tmp_path / "scan.png"
    picture.write_bytes(b"not really a png")
    messages: list[str] = []
    tab.status_message.connect(messages.append)
    tab.open_dataset(picture)
    qtbot.waitUntil(lambda: any("not a dataset" in m for m in messages), timeout=TIMEOUT)
    assert tab.spec is None and tab.mapping_dialog is None
    assert str(picture) in messages[-1] and "\n" not in messages[-1]


def test_keeping_train_whole_and_opening_the_images_without_a_class(tab, qtbot, tmp_path):
    """The seeds' folders: train/ and val/ by class, two loose images in test/."""
    rng = np.random.default_rng(1)
    for split, count in (("train", 12), ("val", 4)):
        for cls in ("abd", "chst"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for index in range(count):
                Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(
                    folder / f"{index}.png")
    (tmp_path / "test").mkdir()
    for index in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(
            tmp_path / "test" / f"loose{index}.png")
    spec = open_and_wait(qtbot, tab, tmp_path)
    moved = spec.summary()["splits"]["test"]["images"]
    assert moved > 0 and "no test split" in tab.notes.text()
    assert tab.summary_pane.unlabelled_button.isVisible()
    assert tab.summary_pane.unlabelled_button.text().startswith("Open the 2 image(s)")
    with qtbot.waitSignal(tab.open_image_requested) as opened:
        qtbot.mouseClick(tab.summary_pane.unlabelled_button, Qt.MouseButton.LeftButton)
    assert opened.args == [str(tab.spec.root / "test" / "loose0.png")]
    tab.report = None
    tab.hold_out.setChecked(False)  # the dataset opens again without a test split
    qtbot.waitUntil(lambda: tab.report is not None and idle(tab), timeout=TIMEOUT)
    splits = tab.spec.summary()["splits"]
    assert splits["train"]["images"] == 24 and splits["test"]["images"] == 0
    assert "no test split" not in tab.notes.text()
