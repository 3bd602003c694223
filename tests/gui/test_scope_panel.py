"""The Viewer's Model page shows the image scope score with its threshold, and the tags apart."""

from __future__ import annotations

import pytest

from cxr_desktop.core.data import open_dataset
from cxr_desktop.core.data.demo import make_demo_dataset
from cxr_desktop.core.infer.scope import SCOPE_NAME, ScopeModel
from cxr_desktop.core.train import TrainConfig, fit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_dataset(root, n_images=40, size=96, seed=5)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(dataset=str(root), arch="small_cnn", size=64, epochs=1,
                         batch_size=8, freeze_epochs=0, pretrained="none", out=str(out),
                         cache_dir=str(tmp_path_factory.mktemp("cache")))
    fit(config, spec=open_dataset(root))
    return out, root


def _predicted(window, qtbot, path):
    panel = window.viewer_tab.model_panel
    panel.prediction = None
    window.open_image(str(path))
    qtbot.waitUntil(lambda: panel.prediction is not None and not window.runner.busy(),
                    timeout=60_000)
    return panel


def test_the_panel_shows_the_scope_score_its_threshold_and_the_tags(main_window, qtbot,
                                                                    run_dir, testdata):
    run, demo_root = run_dir
    panel = main_window.viewer_tab.model_panel
    panel.load_model(run)
    qtbot.waitUntil(lambda: panel.predictor is not None, timeout=60_000)
    threshold = ScopeModel.load(run / SCOPE_NAME).threshold
    image = sorted((demo_root / "test").glob("*.jpg"))[0]
    panel = _predicted(main_window, qtbot, image)
    score = panel.prediction.scope_image.score
    lines = panel.scope_label.text().splitlines()
    assert lines[0].startswith(f"Image scope score {score:.1f} (threshold {threshold:.1f} "
                               "at 5% false alarms)")
    assert lines[1] == "DICOM tags: match (no DICOM tags to check)"
    assert panel.scope_label.isVisibleTo(main_window.viewer_tab)
    # A tibia DICOM: the tags say EXTREMITY on their own line, the image score on its own.
    panel = _predicted(main_window, qtbot, testdata("RG3_UNCI.dcm"))
    lines = panel.scope_label.text().splitlines()
    assert lines[0].startswith("Image scope score") and "threshold" in lines[0]
    assert lines[1].startswith("DICOM tags: OUT OF SCOPE") and "EXTREMITY" in lines[1]
    assert "Out of scope" in panel.warning.text()
    panel.clear_prediction()
    assert panel.scope_label.text() == ""
