"""One training session: the epoch loop, its phases, and the checkpoints it writes.

``fit`` and ``resume`` build a :class:`TrainingSession`; ``resume`` first calls
``restore(checkpoint)``. A checkpoint records everything the loop needs to go on exactly
where it stopped: weights, optimizer, schedule and scaler of the current phase, the epoch and
the position in it, the running train loss, the (possibly halved) batch, the best epoch so
far and the random states.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR

from cxr_desktop import __version__
from cxr_desktop.core.infer.ood import OodInputs, deep_half
from cxr_desktop.core.infer.scope_layers import LayerRecorder, stage_names
from cxr_desktop.core.io import INTENSITY_CHAIN
from cxr_desktop.core.models import CxrNet
from cxr_desktop.core.runs.checkpoint import save_checkpoint
from cxr_desktop.core.runs.folder import RunFolder, jsonable
from cxr_desktop.core.train import distributed
from cxr_desktop.core.train.config import TrainConfig
from cxr_desktop.core.train.data import (
    BatchReader,
    EventSink,
    TrainingData,
    epoch_order,
    loss_weights,
)
from cxr_desktop.core.train.head import head_steps, train_head_epoch
from cxr_desktop.core.train.loop import (
    EpochState,
    Precision,
    Stepper,
    Validation,
    make_loss,
    rng_restore,
    rng_snapshot,
    score,
    train_one_epoch,
    validation_pass,
)
from cxr_desktop.core.train.schedule import SchedulePlan

ONECYCLE_PCT_START = 0.25  # the frozen phase's warm-up share
#: The out-of-scope model is fitted on at most this many validation feature vectors.
SCOPE_MAX_ROWS = 4096
#: Each rank draws its own augmentations: its seed is this far from the previous rank's.
RANK_SEED_STEP = 7919


@dataclass
class Best:
    """The best epoch so far: highest validation AUC, ties (and undefined AUCs) by loss."""

    epoch: int | None = None
    val_auc: float | None = None
    val_loss: float | None = None
    bad_epochs: int = 0

    @staticmethod
    def _score(auc: float | None, loss: float | None) -> tuple[float, float]:
        finite_auc = auc if auc is not None and math.isfinite(auc) else -math.inf
        finite_loss = loss if loss is not None and math.isfinite(loss) else math.inf
        return finite_auc, -finite_loss

    def update(self, epoch: int, auc: float, loss: float) -> bool:
        """Record ``epoch`` if it is better; True when it is."""
        if self.epoch is None or self._score(auc, loss) > self._score(self.val_auc,
                                                                      self.val_loss):
            self.epoch, self.val_auc, self.val_loss, self.bad_epochs = epoch, auc, loss, 0
            return True
        self.bad_epochs += 1
        return False


def steps_per_epoch(train_images: int, batch_size: int, accumulate: int) -> int:
    return max(1, math.ceil(math.ceil(train_images / batch_size) / accumulate))


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int,
                   max_lrs: list[float], warmup: float = ONECYCLE_PCT_START) -> LRScheduler:
    if schedule == "onecycle":
        # OneCycleLR needs two steps of warm-up at least; a shorter run (a handful of
        # steps) follows the first part of a 4-step cycle.
        cycle = max(total_steps, 4)
        return OneCycleLR(optimizer, max_lr=max_lrs, total_steps=cycle,
                          pct_start=min(max(warmup, 2 / cycle), 0.5))
    return CosineAnnealingLR(optimizer, T_max=total_steps)


class TrainingSession:
    def __init__(self, config: TrainConfig, folder: RunFolder, data: TrainingData,
                 model: CxrNet, device: torch.device, plan: SchedulePlan, emit: EventSink,
                 should_stop: Callable[[], bool]) -> None:
        self.config, self.folder, self.data, self.plan = config, folder, data, plan
        self.device, self.size, self.emit = device, plan.size, emit
        # A distributed run asks its ranks together (a stop seen by one stops all); the LR
        # probe, which runs on rank 0 alone, asks this process only.
        self.world = distributed.world()
        self.should_stop, self._stop_here = distributed.agreed(should_stop), should_stop
        self.precision = Precision(device, config.amp, model)
        memory_format = torch.channels_last if self.precision.channels_last else None
        self.model = model.to(device, memory_format=memory_format or torch.preserve_format)
        self.freeze = plan.freeze_epochs
        if config.freeze_epochs > 0 and not model.pretrained_source:
            emit({"type": "message", "text": "no pretrained weights: every layer trains from "
                  "the first epoch (freeze_epochs ignored)"})
        self.epoch = 0
        self.finished = False
        self.state = EpochState()
        self.best = Best()
        self.batch_size, self.accumulate = plan.batch_size, config.accumulate
        self.phase = 0
        self.stepper: Stepper | None = None
        self._pending: dict[str, Any] | None = None
        # The frozen backbone's pooled features of the training images and the validation
        # pass, computed once per session; the best epoch's validation features, logits and
        # stage statistics (for the out-of-scope model) and the metadata of its checkpoint.
        self._frozen: tuple[Tensor, Validation] | None = None
        self.scope_inputs: OodInputs | None = None
        self.scope_checkpoint: dict[str, Any] | None = None
        # Whether that validation pass ran under autocast (bf16/fp16): its statistics are
        # then not those of the float32 Predictor, and the scope is fitted on a float32 pass.
        self.scope_reduced_precision = False
        # Stage statistics of the latest validation pass, recorded by forward hooks.
        self._scope_layers: dict[str, np.ndarray] = {}
        self.reader = BatchReader(data, device)
        weight = None
        if config.class_balance == "weights" or (
                config.class_balance == "sampler" and data.task == "multilabel"):
            weight = loss_weights(data).to(device)
        if config.class_balance == "sampler" and data.task == "multilabel":
            emit({"type": "message", "text": "a balanced sampler needs one class per image: "
                  "multi-label training uses per-class loss weights instead"})
        self.train_loss = make_loss(data.task, weight)
        self.eval_loss = make_loss(data.task)
        self.generator = torch.Generator(device=device)

    # --- checkpoints ----------------------------------------------------------------------
    def restore(self, checkpoint: dict[str, Any]) -> None:
        self.epoch = int(checkpoint["epoch"])
        self.finished = bool(checkpoint["finished"])
        self.freeze = int(checkpoint["freeze_epochs"])
        # ``pos`` counts the rows of one rank's share: as many rows of the whole epoch were
        # done when the run is resumed by another number of processes.
        pos = int(checkpoint["pos"]) * int(checkpoint.get("world_size", 1)) // self.world.size
        self.state = EpochState(pos, float(checkpoint["train_loss_sum"]),
                                int(checkpoint["train_seen"]), checkpoint["rng"])
        self.best = Best(**checkpoint["best"])
        self.batch_size = int(checkpoint["batch_size"])
        self.accumulate = int(checkpoint["accumulate"])
        self._pending = checkpoint
        try:
            rng_restore(checkpoint["rng"], self.generator)
        except RuntimeError:
            self.emit({"type": "message", "text": "the run was saved on another device: its "
                       "random state is not restored, so augmentations will differ"})
        if self.world.is_main:
            self.folder.truncate_metrics(self.epoch)

    def metadata(self, record: dict[str, Any] | None) -> dict[str, Any]:
        """What inference needs beside the weights, as JSON-able values."""
        data, model = self.data, self.model
        return jsonable({
            "arch": self.config.arch, "task": data.task, "classes": data.classes,
            "positive_class": data.spec.positive_class, "output_names": data.output_names,
            "num_outputs": data.spec.num_outputs, "input_size": self.size,
            "intensity_chain": INTENSITY_CHAIN, "threshold": self.config.threshold,
            "dataset": self.config.dataset, "dataset_fingerprint": data.fingerprint(),
            "training_scope": data.scope(), "train_images": len(data.train_rows),
            "val_images": len(data.val_rows),
            "pretrained_source": str(model.pretrained_source) if model.pretrained_source
            else None,
            "pretrained_note": model.pretrained_note, "epoch": self.epoch,
            "val_auc": record.get("val_auc") if record else None,
            "val_loss": record.get("val_loss") if record else None,
            "cxr_desktop_version": __version__, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })

    def _checkpoint(self, record: dict[str, Any] | None) -> dict[str, Any]:
        stepper = self.stepper
        assert stepper is not None
        return {
            "model": self.model.state_dict(),
            "optimizer": stepper.optimizer.state_dict(),
            "scheduler": stepper.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "phase": self.phase, "epoch": self.epoch, "finished": self.finished,
            "freeze_epochs": self.freeze, "pos": self.state.pos,
            "train_loss_sum": self.state.loss_sum, "train_seen": self.state.seen,
            "batch_size": self.batch_size, "accumulate": self.accumulate,
            "best": asdict(self.best), "rng": self.state.rng, "world_size": self.world.size,
            "config": self.config.to_dict(), "plan": self.plan.to_dict(),
            "metadata": self.metadata(record),
        }

    # --- phases ---------------------------------------------------------------------------
    def _stepper_for(self, epoch: int) -> Stepper:
        """Phase 1 (frozen): the head alone, at ``plan.head_lr``, on cached features;
        phase 2: every layer, discriminative LRs from ``plan.base_lr``."""
        phase = 1 if epoch < self.freeze else 2
        if self.stepper is not None and phase == self.phase:
            return self.stepper
        config, plan, images = self.config, self.plan, len(self.data.train_rows)
        if phase == 1:
            self.model.freeze_backbone()
            lr, warmup = plan.head_lr, ONECYCLE_PCT_START
            total = self.freeze * head_steps(images, self.batch_size)
            trained, batch = self.model, self.batch_size
        else:
            self.model.unfreeze()
            lr, warmup = plan.base_lr, plan.warmup
            # N ranks: each takes 1/N of the rows and of the batch, so the effective batch,
            # the steps and the schedule are those of one process.
            batch = -(-self.batch_size // self.world.size)
            total = (config.epochs - self.freeze) * steps_per_epoch(
                -(-images // self.world.size), batch, self.accumulate)
            trained = distributed.data_parallel(self.model, self.device)
        groups = self.model.param_groups(lr, plan.lr_mult_early)
        optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)
        scheduler = make_scheduler(optimizer, config.schedule, total,
                                   [float(g["lr"]) for g in groups], warmup)
        pending, self._pending = self._pending, None
        if pending is not None and int(pending["phase"]) == phase:
            optimizer.load_state_dict(pending["optimizer"])
            scheduler.load_state_dict(pending["scheduler"])
            self.precision.scaler.load_state_dict(pending["scaler"])
        self.phase = phase
        self.stepper = Stepper(trained, optimizer, scheduler, total, self.train_loss,
                               self.precision, config.augment, self.generator,
                               batch, self.accumulate, halve_on_oom=not self.world.enabled)
        return self.stepper

    def _save(self, path: Path, checkpoint: dict[str, Any]) -> None:
        """One writer: rank 0 (every rank holds the same weights)."""
        if self.world.is_main:
            save_checkpoint(path, checkpoint)

    def _validation(self, rows: np.ndarray, batch_size: int) -> Validation | None:
        """``validation_pass`` over sorted ``rows``; N ranks pass a share each and every rank
        gets the logits and features of all of them, in the order of ``rows``."""
        distributed.sync_buffers(self.model)
        done = validation_pass(self.model, self.reader, distributed.share(rows),
                               self.precision, batch_size, self.should_stop)
        if done is None or not self.world.enabled:
            return done
        return Validation(distributed.gather_shares(done.logits, len(rows)),
                          distributed.gather_shares(done.features, len(rows)))

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> str:
        """Train the remaining epochs; ``done`` or ``stopped``."""
        if self.finished:
            self.emit({"type": "message", "text": "this run is already complete"})
            return "done"
        config, data = self.config, self.data
        self.emit({"type": "message", "text": (
            f"training {config.arch} at {self.size} px on {self.device} "
            f"({self.precision.name}): {len(data.train_rows)} training, "
            f"{len(data.val_rows)} validation images, epochs {self.epoch + 1}-{config.epochs}")})
        first = self.epoch
        try:
            if self.plan.lr is None and not self._probe_lr():
                return "stopped"
            if not config.plan:
                self.config = replace(config, plan=self.plan.to_dict())
                if self.world.is_main:
                    self.folder.write_config(self.config)
            self.emit({"type": "message", "text": f"schedule: {self.plan.describe()}",
                       "plan": self.plan.to_dict()})
            for epoch in range(first, config.epochs):
                if epoch > first and self.should_stop():
                    self.emit({"type": "message", "text": f"stopped after epoch {epoch}: "
                               "resume to go on"})
                    return "stopped"
                if not self._one_epoch(epoch):
                    return "stopped"
                if self.finished:
                    break
        finally:
            self.reader.close()
        return "done"

    def _probe_lr(self) -> bool:
        """``lr`` auto: the LR finder on a short probe; False when stopped during it."""
        from cxr_desktop.core.train.lr_finder import probe_lr

        found = distributed.on_main(lambda: probe_lr(
            self.model, self.reader, self.data, self.plan, self.precision, self.config,
            self.emit, self._stop_here))
        if found is None:
            self.emit({"type": "message", "text": "stopped during the LR probe: nothing "
                       "trained yet"})
            return False
        self.plan = found
        return True

    def _one_epoch(self, epoch: int) -> bool:
        config, data = self.config, self.data
        stepper = self._stepper_for(epoch)
        if self.state.pos == 0:
            self.generator.manual_seed(config.seed * 1_000_003 + epoch + 1
                                       + RANK_SEED_STEP * self.world.rank)
        started, seen_before = time.perf_counter(), self.state.seen
        val_rows = np.sort(data.val_rows)
        if self.phase == 1:
            validation = self._frozen_epoch(stepper, epoch)
            completed = validation is not None
            train_s = time.perf_counter() - started
        else:
            stepper.size = self.plan.sizes[epoch]
            order = distributed.share(epoch_order(data, config.class_balance, config.seed,
                                                  epoch))
            completed = train_one_epoch(
                stepper, self.reader, order, self.state, epoch=epoch + 1,
                log_every=config.log_every_n_batches, emit=self.emit,
                should_stop=self.should_stop)
            train_s = time.perf_counter() - started
            with self._recording_layers():
                validation = self._validation(val_rows, stepper.batch_size) \
                    if completed else None
        if not self.world.enabled:  # a distributed run never halves its batch
            self.batch_size, self.accumulate = stepper.batch_size, stepper.accumulate
        if validation is None:  # stopped in training or validation: resume goes on from here
            self._save(self.folder.last_path, self._checkpoint(None))
            where = "validation of" if completed else "training"
            self.emit({"type": "message", "text": f"stopped in {where} epoch {epoch + 1}: "
                       f"{self.folder.last_path} saved, resume to go on"})
            return False
        metrics = score(data, val_rows, validation.logits, self.eval_loss, config.threshold)
        totals = [self.state.loss_sum, float(self.state.seen),
                  float(self.state.seen - seen_before)]
        # Fine-tuning: each rank trained on its share; frozen: every rank on all the rows.
        loss_sum, seen, fresh = distributed.sums(totals) if self.phase == 2 else totals
        record = {
            "epoch": epoch + 1, "epochs": config.epochs, "phase": self.phase,
            "train_loss": loss_sum / seen if seen else float("nan"), **metrics,
            "lr": stepper.lr, "epoch_s": time.perf_counter() - started,
            "images_per_s": fresh / max(train_s, 1e-9),
            "batch_size": self.batch_size, "train_size": self.plan.sizes[epoch],
        }
        self._end_epoch(record, validation)
        return True

    def _frozen_epoch(self, stepper: Stepper, epoch: int) -> Validation | None:
        """Train the head on the frozen backbone's features (computed on the first frozen
        epoch of the session); the validation pass of the same features. None if stopped."""
        data, model = self.data, self.model
        if self._frozen is None:
            rows = np.sort(data.train_rows)
            train = self._validation(rows, stepper.batch_size)
            with self._recording_layers():
                val = None if train is None else self._validation(
                    np.sort(data.val_rows), stepper.batch_size)
            if train is None or val is None:
                return None
            self._frozen = (train.features.to(self.device), val)
        train, val = self._frozen
        targets = torch.from_numpy(np.ascontiguousarray(
            data.targets[np.sort(data.train_rows)])).to(self.device)
        self.state = EpochState()
        train_head_epoch(stepper, train, targets, self.state, self.config.seed + epoch)
        model.eval()
        with torch.no_grad():
            logits = model.forward_head(val.features.to(self.device)[:, :, None, None])
        return Validation(logits.float().cpu(), val.features)

    def _end_epoch(self, record: dict[str, Any], validation: Validation) -> None:
        config = self.config
        self.epoch = record["epoch"]
        improved = self.best.update(self.epoch, record["val_auc"], record["val_loss"])
        patience = config.early_stop_patience
        early = bool(patience) and self.best.bad_epochs >= patience
        # Every rank scored the same gathered predictions; rank 0's word ends them all alike.
        self.finished = distributed.broadcast(early or self.epoch == config.epochs)
        self.state = EpochState(rng=rng_snapshot(self.generator))
        if self.world.is_main:
            self.folder.append_metrics(record)
        checkpoint = self._checkpoint(record)
        if improved:
            self._save(self.folder.best_path, checkpoint)
            self._keep_scope_features(validation, checkpoint["metadata"])
        self._save(self.folder.last_path, checkpoint)
        self.emit(jsonable({"type": "epoch", **record, "best": improved,
                            "best_epoch": self.best.epoch, "best_val_auc": self.best.val_auc}))
        if early and self.epoch < config.epochs:
            self.emit({"type": "message", "text": (
                f"early stop after epoch {self.epoch}: no better validation AUC for "
                f"{patience} epoch(s); best epoch {self.best.epoch}")})

    @contextmanager
    def _recording_layers(self) -> Iterator[None]:
        """Forward hooks record the stage statistics of the validation pass inside: what the
        ``layers`` out-of-scope detector needs, at the cost of a mean and a std per channel."""
        recorder = LayerRecorder(self.model, deep_half(stage_names(self.model)))
        with recorder:
            yield
        layers, count = recorder.take(), len(self.data.val_rows)
        if self.world.enabled:  # each rank saw its share: put the statistics of all together
            share = len(distributed.share(np.sort(self.data.val_rows)))
            if not layers or any(len(v) != share for v in layers.values()):
                return  # a stopped pass (stopped alike on every rank: nothing to gather)
            layers = {name: distributed.gather_shares(torch.from_numpy(layers[name]),
                                                      count).numpy()
                      for name in sorted(layers)}
        if all(len(v) == count for v in layers.values()):
            self._scope_layers = layers

    def _keep_scope_features(self, validation: Validation, metadata: dict[str, Any]) -> None:
        """What the best checkpoint's validation pass computed (pooled features, logits,
        stage statistics): the out-of-scope model is fitted on it after the last epoch, with
        no extra pass."""
        features = validation.features
        step = max(1, -(-len(features) // SCOPE_MAX_ROWS))
        with torch.no_grad():
            normed = self.model.pool_norm(features[::step].to(self.device)[:, :, None, None])
        layers = {name: values[::step] for name, values in self._scope_layers.items()
                  if len(values) == len(features)}
        self.scope_inputs = OodInputs(normed.flatten(1).double().cpu().numpy(),
                                      validation.logits[::step].double().numpy(), layers)
        self.scope_checkpoint = metadata
        self.scope_reduced_precision = bool(self.precision.enabled)
