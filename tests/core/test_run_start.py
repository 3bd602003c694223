"""Starting a training run: bad output folders, devices, weights and class coverage are
refused before anything is written; a run that fails before its first checkpoint leaves
nothing behind; a finished run resumes at once."""

from __future__ import annotations

import pytest
import torch
from blobs import make_blob_dataset

from cxr_desktop.core.data.spec import DatasetSpec, ImageItem
from cxr_desktop.core.errors import CxrError, DatasetError, FileError, ModelError
from cxr_desktop.core.runs import RunFolder, RunRegistry, load_checkpoint
from cxr_desktop.core.train import TrainConfig, fit, resume
from cxr_desktop.core.train.data import check_spec_classes, missing_classes


@pytest.fixture
def spec(tmp_path):
    return make_blob_dataset(tmp_path / "ds", n_train=12, n_val=6)


def config(tmp_path, out, **overrides) -> TrainConfig:
    values = dict(dataset=str(tmp_path / "ds"), arch="small_cnn", size=32, epochs=1,
                  batch_size=6, lr=3e-3, pretrained="none", workers=1, out=str(out))
    values.update(overrides)
    return TrainConfig(**values)


def test_output_paths_that_cannot_be_folders_are_one_line_errors(tmp_path, spec):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(FileError, match="afile: cannot create the run folder: a file"):
        fit(config(tmp_path, afile), spec=spec)
    with pytest.raises(FileError, match=r"afile/sub: cannot create the run folder \(Not a "
                                        r"directory\)"):
        fit(config(tmp_path, afile / "sub"), spec=spec)
    assert afile.read_text() == "mine"
    assert RunRegistry().list() == []


def test_a_folder_with_other_files_is_refused_and_left_alone(tmp_path, spec):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileError, match="not empty and not a run folder: choose an empty"):
        fit(config(tmp_path, mine), spec=spec)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("pretrained", ["missing.pt", "text.pt"])
def test_bad_pretrained_weights_write_nothing_and_a_retry_works(tmp_path, spec, pretrained):
    (tmp_path / "text.pt").write_text("hello, not weights\n")
    out = tmp_path / "run"
    weights = str(tmp_path / pretrained)
    with pytest.raises(ModelError) as caught:
        fit(config(tmp_path, out, arch="resnet18", pretrained=weights), spec=spec)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(weights)
    assert ("not found" if pretrained == "missing.pt" else "cannot read weights") in message
    assert not out.exists() and RunRegistry().list() == []
    assert fit(config(tmp_path, out), spec=spec).status == "done"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_writes_nothing(tmp_path, spec):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CxrError, match="no CUDA GPU"):
        fit(config(tmp_path, empty, device="cuda"), spec=spec)
    assert empty.is_dir() and list(empty.iterdir()) == []
    assert RunRegistry().list() == []


def test_a_failure_before_the_first_checkpoint_removes_what_it_wrote(tmp_path, spec,
                                                                    monkeypatch):
    from cxr_desktop.core.train import session

    def crash(self):
        raise RuntimeError("simulated crash in the first epoch")

    real_run = session.TrainingSession.run
    monkeypatch.setattr(session.TrainingSession, "run", crash)
    new = tmp_path / "deep" / "new"
    with pytest.raises(RuntimeError, match="simulated"):
        fit(config(tmp_path, new), spec=spec)
    assert not (tmp_path / "deep").exists()  # the folders it made are gone too
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="simulated"):
        fit(config(tmp_path, empty), spec=spec)
    assert empty.is_dir() and list(empty.iterdir()) == []  # it existed before: kept
    assert RunRegistry().list() == []
    monkeypatch.setattr(session.TrainingSession, "run", real_run)
    assert fit(config(tmp_path, empty), spec=spec).status == "done"


def _spec_with_splits(tmp_path, splits: list[tuple[str, str]]) -> DatasetSpec:
    """Blob images with the given (split, label) per image."""
    base = make_blob_dataset(tmp_path / "ds", n_train=len(splits), n_val=0)
    items = [ImageItem(item.path, split, None, label)
             for item, (split, label) in zip(base.items, splits, strict=True)]
    return DatasetSpec(base.root, "binary", ["NORMAL", "PNEUMONIA"], "PNEUMONIA", items)


def test_a_training_split_without_a_class_is_refused_before_writing(tmp_path):
    spec = _spec_with_splits(tmp_path, [("train", "NORMAL")] * 5 + [("val", "NORMAL"),
                                                                    ("val", "PNEUMONIA")])
    out = tmp_path / "run"
    with pytest.raises(DatasetError, match="the training split has no image of class "
                                           "'PNEUMONIA'") as caught:
        fit(config(tmp_path, out), spec=spec)
    assert "\n" not in str(caught.value)
    assert not out.exists() and RunRegistry().list() == []


def test_a_validation_split_without_a_class_is_said_at_the_start(tmp_path):
    spec = _spec_with_splits(tmp_path, [("train", "NORMAL"), ("train", "PNEUMONIA")] * 3
                             + [("val", "NORMAL")] * 2)
    assert check_spec_classes(spec) == [
        "the validation split has no image of class 'PNEUMONIA': the validation AUC is "
        "undefined and the best epoch is chosen by validation loss"]
    events: list[dict] = []
    result = fit(config(tmp_path, tmp_path / "run"), events.append, spec=spec)
    assert result.status == "done"
    messages = [e["text"] for e in events if e["type"] == "message"]
    training = next(i for i, m in enumerate(messages) if m.startswith("training small_cnn"))
    warned = [i for i, m in enumerate(messages) if "no image of class 'PNEUMONIA'" in m]
    assert warned and warned[0] < training


def test_missing_classes_per_task():
    import numpy as np

    assert missing_classes("binary", ["a", "b"], "b", np.array([0.0, 0.0])) == ["b"]
    assert missing_classes("binary", ["a", "b"], "b", np.array([1.0])) == ["a"]
    assert missing_classes("multiclass", ["a", "b", "c"], None, np.array([0, 2])) == ["b"]
    multilabel = np.array([[1.0, np.nan], [0.0, 0.0]])
    assert missing_classes("multilabel", ["x", "y"], None, multilabel) == ["y"]


def test_a_multilabel_finding_without_training_positives_is_a_message(tmp_path):
    spec = make_blob_dataset(tmp_path / "ds", n_train=8, n_val=4, task="multilabel")
    for item in spec.items:
        if item.split == "train":
            item.labels = {**item.labels, "other": 0.0}
    messages = check_spec_classes(spec)
    assert messages == ["no training image has finding 'other': the model cannot learn it"]


def test_resuming_a_finished_run_prepares_no_image(tmp_path, spec, monkeypatch):
    from cxr_desktop.core.train import engine

    first = fit(config(tmp_path, tmp_path / "run", epochs=2), spec=spec)
    assert first.status == "done"

    def no_images(*args, **kwargs):
        raise AssertionError("a finished run should not prepare its images")

    monkeypatch.setattr(engine, "prepare_data", no_images)
    events: list[dict] = []
    again = resume(tmp_path / "run", events.append)
    assert [e["text"] for e in events if e["type"] == "message"] == [
        "this run is already complete"]
    assert again.status == "done" and again.epochs_done == 2
    assert (again.best_epoch, again.best_val_auc) == (first.best_epoch, first.best_val_auc)
    assert load_checkpoint(RunFolder(tmp_path / "run").last_path)["finished"]
    assert RunRegistry().get(tmp_path / "run").status == "done"


@pytest.mark.parametrize("text", ["x\n", "hi\n", "1234\n", "abc def ghi jkl\n"])
def test_a_text_file_as_weights_is_a_short_one_line_error(tmp_path, text):
    from cxr_desktop.core.models.state_dicts import read_state_dict

    path = tmp_path / "afile"
    path.write_text(text)
    with pytest.raises(ModelError) as caught:
        read_state_dict(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot read weights (not a PyTorch file")
    assert "\n" not in message and "weights_only" not in message and len(message) < 200
