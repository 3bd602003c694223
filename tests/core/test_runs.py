"""Run folders, checkpoints, the registry, stop and resume."""

from __future__ import annotations

import json

import pytest
import torch
from blobs import make_blob_dataset

from cxr_desktop.core.errors import FileError
from cxr_desktop.core.io import INTENSITY_CHAIN
from cxr_desktop.core.runs import RunFolder, RunRegistry, load_checkpoint, load_run
from cxr_desktop.core.train import TrainConfig, fit, resume


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_DESKTOP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CXR_DESKTOP_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def spec(tmp_path):
    return make_blob_dataset(tmp_path / "ds", n_train=32, n_val=16)


def config(tmp_path, name: str, **overrides) -> TrainConfig:
    values = dict(dataset=str(tmp_path / "ds"), arch="small_cnn", size=48, epochs=3,
                  batch_size=8, lr=3e-3, pretrained="none", log_every_n_batches=1,
                  out=str(tmp_path / name), workers=2)
    values.update(overrides)
    return TrainConfig(**values)


def stop_after_batches(count: int):
    seen = []

    def on_event(event):
        if event["type"] == "batch":
            seen.append(event)

    return on_event, lambda: len(seen) >= count


def test_stop_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, spec):
    straight = fit(config(tmp_path, "straight"), spec=spec)
    on_event, should_stop = stop_after_batches(6)
    stopped = fit(config(tmp_path, "stopped"), on_event, should_stop, spec=spec)
    assert stopped.status == "stopped" and stopped.epochs_done == 1
    folder = RunFolder(tmp_path / "stopped")
    checkpoint = load_checkpoint(folder.last_path)
    assert checkpoint["epoch"] == 1 and checkpoint["pos"] == 16
    assert len(folder.read_metrics()) == 1
    usable = load_run(folder.path, which="last")
    assert not usable.model.training
    assert usable.model(torch.rand(2, 1, 48, 48)).shape == (2, 1)
    assert RunRegistry().get(folder.path).status == "stopped"

    resumed = resume(folder.path)
    assert resumed.status == "done" and resumed.epochs_done == 3
    lines = folder.metrics_path.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    for mine, theirs in zip(resumed.history, straight.history, strict=True):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
    record = RunRegistry().get(folder.path)
    assert record.status == "done" and record.epochs_done == 3

    again = resume(folder.path)
    assert again.status == "done" and len(folder.read_metrics()) == 3


def test_stop_during_validation_then_resume_matches_an_uninterrupted_run(tmp_path, spec):
    straight = fit(config(tmp_path, "straight"), spec=spec)
    trained_epoch_2, messages = [], []

    def on_event(event):
        if event["type"] == "batch" and event["epoch"] == 2 and event["progress"] >= 1.0:
            trained_epoch_2.append(event)  # the next should_stop() is in validation
        if event["type"] == "message":
            messages.append(event["text"])

    stopped = fit(config(tmp_path, "stopped"), on_event, lambda: bool(trained_epoch_2),
                  spec=spec)
    assert stopped.status == "stopped" and stopped.epochs_done == 1
    assert any("stopped in validation of epoch 2" in text for text in messages)
    folder = RunFolder(tmp_path / "stopped")
    checkpoint = load_checkpoint(folder.last_path)
    assert checkpoint["epoch"] == 1 and checkpoint["pos"] == 32  # all of epoch 2 trained

    resumed = resume(folder.path)
    assert resumed.status == "done" and resumed.epochs_done == 3
    for mine, theirs in zip(resumed.history, straight.history, strict=True):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)


def test_best_checkpoint_is_the_best_val_auc_epoch(tmp_path, spec):
    rows_at_epoch_events, best_of_events = [], []

    def on_event(event):
        if event["type"] == "epoch":
            record = RunRegistry().get(tmp_path / "run")
            rows_at_epoch_events.append((record.epochs_done, record.status,
                                         record.best_epoch, record.best_val_auc))
            best_of_events.append((event["epoch"], event["best_epoch"], event["best_val_auc"]))

    result = fit(config(tmp_path, "run", epochs=3), on_event, spec=spec)
    folder = RunFolder(result.run_dir)
    history = folder.read_metrics()
    best_auc = max(r["val_auc"] for r in history)
    best_epoch = min(r["epoch"] for r in history if r["val_auc"] == best_auc)
    assert result.best_epoch == best_epoch and result.best_val_auc == best_auc
    loaded = load_run(folder.path)
    meta = loaded.metadata
    assert loaded.checkpoint_path.name == "best.pt" and meta["epoch"] == best_epoch
    assert meta["arch"] == "small_cnn" and meta["input_size"] == 48
    assert meta["classes"] == ["clear", "blob"] and meta["task"] == "binary"
    assert meta["output_names"] == ["blob"] and meta["threshold"] == 0.5
    assert meta["intensity_chain"] == INTENSITY_CHAIN and loaded.chain_matches
    assert meta["training_scope"] == {"modalities": {}, "body_parts": {}, "views": {}}
    assert len(meta["dataset_fingerprint"]) == 32
    json.dumps(meta)
    saved = TrainConfig.load(folder.config_path)
    assert saved.out == str(folder.path.resolve()) and saved.epochs == 3

    records = RunRegistry().list()
    assert [r.run_dir for r in records] == [str(folder.path.resolve())]
    assert records[0].best_epoch == best_epoch and records[0].arch == "small_cnn"
    assert records[0].status == "done" and records[0].task == "binary"
    # The history in the GUI refreshes on epoch events: the row must already be up to date.
    assert rows_at_epoch_events == [(epoch, "running", best, auc)
                                    for epoch, best, auc in best_of_events]
    assert [epoch for epoch, _, _ in best_of_events] == [1, 2, 3]
    for epoch, best, auc in best_of_events:
        assert best <= epoch and auc == max(r["val_auc"] for r in history[:epoch])


def test_resume_after_a_kill_drops_lines_newer_than_the_checkpoint(tmp_path, spec):
    on_event, should_stop = stop_after_batches(9)
    fit(config(tmp_path, "run"), on_event, should_stop, spec=spec)
    folder = RunFolder(tmp_path / "run")
    records = folder.read_metrics()
    folder.write_metrics([*records, {**records[-1], "epoch": 3}])
    result = resume(folder.path)
    assert [r["epoch"] for r in folder.read_metrics()] == [1, 2, 3]
    assert result.epochs_done == 3


def test_early_stopping_and_a_used_folder(tmp_path, spec, monkeypatch):
    from cxr_desktop.core.train import session

    monkeypatch.setattr(session, "score", lambda *a, **k: {
        "val_loss": 1.0, "val_auc": 0.7, "auc_per_class": {"blob": 0.7}})
    result = fit(config(tmp_path, "run", epochs=5, early_stop_patience=2), spec=spec)
    assert result.status == "done" and result.epochs_done == 3 and result.best_epoch == 1
    assert load_checkpoint(RunFolder(result.run_dir).last_path)["finished"]
    with pytest.raises(FileError, match="already holds a run"):
        fit(config(tmp_path, "run"), spec=spec)


def test_registry_status_and_listing(tmp_path):
    registry = RunRegistry(tmp_path / "r.sqlite")
    first = registry.start(tmp_path / "a", arch="resnet18", dataset="d", task="binary",
                           epochs=5)
    second = registry.start(tmp_path / "b", arch="small_cnn", dataset="d", task="binary",
                            epochs=2)
    assert second > first
    registry.update(tmp_path / "a", status="done", epochs_done=5, best_val_auc=0.9,
                    best_epoch=4)
    assert registry.start(tmp_path / "a", arch="resnet18", dataset="d", task="binary",
                          epochs=5) == first
    assert [r.run_dir for r in registry.list()] == [str(tmp_path / "b"), str(tmp_path / "a")]
    record = registry.get(tmp_path / "a")
    assert record.status == "running" and record.best_val_auc == 0.9
    with pytest.raises(ValueError):
        registry.update(tmp_path / "a", status="exploded")
    registry.remove(tmp_path / "b")
    assert registry.get(tmp_path / "b") is None


def test_a_running_row_whose_process_is_gone_reads_as_interrupted(tmp_path):
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema of version 0.1.0: no pid column
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_dir TEXT NOT "
                   "NULL UNIQUE, created TEXT NOT NULL, updated TEXT NOT NULL, arch TEXT NOT "
                   "NULL, dataset TEXT NOT NULL, task TEXT NOT NULL DEFAULT '', epochs INTEGER "
                   "NOT NULL DEFAULT 0, epochs_done INTEGER NOT NULL DEFAULT 0, status TEXT NOT "
                   "NULL, best_val_auc REAL, best_epoch INTEGER)")
        db.execute("INSERT INTO runs (run_dir, created, updated, arch, dataset, status) "
                   "VALUES ('/runs/old', 't', 't', 'resnet18', 'd', 'running')")
    db.close()
    registry = RunRegistry(path)
    assert registry.get("/runs/old").status == "interrupted"
    registry.start(tmp_path / "mine", arch="small_cnn", dataset="d", task="binary", epochs=2)
    assert registry.get(tmp_path / "mine").status == "running"  # this process runs it
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET pid = ? WHERE run_dir = ?",
                   (int(finished.stdout), str((tmp_path / "mine").resolve())))
    db.close()
    assert [r.status for r in registry.list()] == ["interrupted", "interrupted"]
    registry.update(tmp_path / "mine", status="stopped")
    assert registry.get(tmp_path / "mine").status == "stopped"


def test_load_run_errors_name_the_folder(tmp_path):
    with pytest.raises(FileError, match="no checkpoint"):
        load_run(tmp_path)
    (tmp_path / "best.pt").write_bytes(b"garbage")
    with pytest.raises(FileError, match="best.pt"):
        load_run(tmp_path)


def test_frozen_phase_then_resume_at_the_phase_boundary(tmp_path, spec):
    from cxr_desktop.core.models import get_arch

    weights = tmp_path / "pretrained.pth"
    torch.save(get_arch("small_cnn").create().state_dict(), weights)
    start = torch.load(weights, weights_only=True)
    seen = []
    result = fit(config(tmp_path, "run", epochs=2, freeze_epochs=1, pretrained=str(weights)),
                 seen.append, lambda: any(e["type"] == "epoch" for e in seen), spec=spec)
    assert result.status == "stopped" and result.epochs_done == 1
    after_frozen = load_checkpoint(tmp_path / "run" / "last.pt")
    assert after_frozen["phase"] == 1 and after_frozen["freeze_epochs"] == 1
    conv = "features.block1.0.weight"
    assert torch.equal(after_frozen["model"][conv], start[conv])
    assert after_frozen["metadata"]["pretrained_source"] == str(weights)

    resumed = resume(tmp_path / "run")
    finished = load_checkpoint(tmp_path / "run" / "last.pt")
    assert resumed.epochs_done == 2 and finished["phase"] == 2
    assert not torch.equal(finished["model"][conv], start[conv])
    assert [r["phase"] for r in resumed.history] == [1, 2]
