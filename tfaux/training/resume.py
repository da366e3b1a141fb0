"""`RunBackup`: resume a killed `fit` exactly where its last finished epoch left it.

Keras' `BackupAndRestore` restores the weights, the optimizer and the epoch. A run also lives in
state Keras does not save: Free-AT's persistent δ (a per-replica variable outside
`model.weights`), the counters and best weights of `EarlyStopping`, `ReduceLROnPlateau` and our
overfitting guard, and the history of the epochs before the crash. `RunBackup` saves all of it
with every epoch, as one directory swapped in atomically, so a SIGKILL at any moment leaves
either the previous backup or the new one, never half of each.

A non-finite loss (stopped by `keras.callbacks.TerminateOnNaN`) is not backed up, and the last
good backup is kept instead of deleted, so nothing is lost when training diverges.

Under `MultiWorkerMirroredStrategy` the chief's backup is the source of truth. Keras 3's
`BackupAndRestore` does not route files by worker (every worker writes and deletes the same
`backup_dir`; tf.keras sent non-chiefs to `workertemp_<task>` directories), so every worker runs
the same saves, but only the chief's land in `backup_dir`; the others write into their temporary
directory (`tfaux.distribute.writable_dir`), which nobody reads. Per-replica state is different
on every worker (each has its own δ for its own data shard): the backup holds the δ of *every*
replica of the job, gathered from the workers by a collective and keyed by replica id, so it is
committed with the weights of the same epoch by the one pointer swap. On resume every worker
reads the chief's backup and takes back its own replicas' state.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux.distribute import local_replica_ids, replica_values
from tfaux.training.callbacks import (
    CatastrophicOverfittingGuard,
    ModelSelection,
    StepBudget,
    TimedMonitor,
)

log = logging.getLogger("tfaux")

# The attributes each stateful callback resets in `on_train_begin` and needs back on resume.
CALLBACK_STATE = {
    keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_epoch", "best_weights"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "cooldown_counter", "best"),
    CatastrophicOverfittingGuard: ("best", "best_epoch", "collapsed_at", "best_weights"),
    ModelSelection: (
        "best",
        "best_epoch",
        "epochs_run",
        "best_weights",
        "values",
        "rolled_back_from",
    ),
    StepBudget: ("skipped_steps",),
}
POINTER = "latest"  # names the directory of the newest complete backup


class TrainingFailedError(RuntimeError):
    """Training ran and failed (not bad input): the CLI exits with status 1."""


class TrainingDivergedError(TrainingFailedError):
    """Training produced a non-finite loss; the last good backup was kept."""


class RunBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that also saves model state, callback state and the history.

    Put it *last* in the callback list: the other callbacks reset their state in
    `on_train_begin`, and this one restores it afterwards.

    Args:
        backup_dir: this training's own backup directory (never shared with another run).
        callbacks: the stateful callbacks of the same `fit` (see `CALLBACK_STATE`); others are
            ignored.
        write_dir: where backups are written, if not `backup_dir` (a non-chief worker of a
            multi-worker job writes to a temporary directory but reads the chief's backups,
            its own δ included).
        keep: leave the backup when training ends; the caller `remove()`s it once it has saved
            what the training produced (a kill in between then loses nothing).

    Attributes:
        history: every epoch's logs, those before a resume included.
        seconds: wall time of the training so far, that of the runs before a resume included.
        resumed_from: the epoch training resumed at (0 for a fresh start).
        diverged_epoch: the epoch whose loss was not finite, or None.
    """

    def __init__(self, backup_dir, callbacks=(), write_dir=None, keep=False):
        super().__init__(str(backup_dir), save_freq="epoch")
        self.read_dir = Path(backup_dir)
        self.write_dir = Path(write_dir or backup_dir)
        self.keep = keep
        self.stateful = [c for c in callbacks if _state_keys(c)]
        self.monitors = [c for c in callbacks if isinstance(c, TimedMonitor)]
        self.history: dict[str, list] = {}
        self.resumed_from = 0
        self.diverged_epoch: int | None = None

    # === Restore ===
    @property
    def seconds(self) -> float:
        return self._seconds_before + time.perf_counter() - self._started

    def on_train_begin(self, logs=None):
        self.history, self.resumed_from, self.diverged_epoch = {}, 0, None
        self._started, self._seconds_before = time.perf_counter(), 0.0
        backup = latest_backup(self.read_dir)
        if backup is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(backup / "model.weights.h5")
        state = json.loads((backup / "state.json").read_text())
        arrays = dict(np.load(backup / "arrays.npz"))
        if hasattr(self.model, "restore_resume_state"):
            self.model.restore_resume_state(_prefixed(arrays, "model/"))
        for index, callback in enumerate(self.stateful):
            # A backup written before a callback gained state leaves that state at its start.
            saved = state["callbacks"][index] if index < len(state["callbacks"]) else {}
            for key in _state_keys(callback):
                if key.endswith("weights"):
                    weights = _prefixed(arrays, f"callback{index}/{key}/")
                    value = [weights[str(i)] for i in range(len(weights))] or None
                elif key in saved:
                    value = saved[key]
                else:
                    continue
                setattr(callback, key, value)
        self.history = state["history"]
        self._seconds_before = state.get("seconds", 0.0)
        for monitor in self.monitors:  # by name: a backup from before one existed holds none
            monitor.seconds = state.get("monitor_seconds", {}).get(monitor.monitor_name, 0.0)
        if state.get("stopped"):  # early stopping, the step budget or a guard had ended it
            state["epoch"] = self.params["epochs"]
        self.resumed_from = self.model._initial_epoch = state["epoch"]
        log.info("resumed from the backup of epoch %d in %s", state["epoch"], backup)

    # === Save ===
    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not math.isfinite(float(logs.get("loss", 0.0))):
            # TerminateOnNaN stops the epoch; keep the last good backup, never a NaN one.
            self.diverged_epoch = epoch
            self.model.stop_training = True
            return
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self._save(epoch + 1)

    def _save(self, epoch: int) -> None:
        new = self.write_dir / f"epoch-{epoch:05d}"
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir(parents=True)
        self.model.save_weights(new / "model.weights.h5")
        arrays, callbacks = {}, []
        if hasattr(self.model, "resume_state"):
            arrays.update({f"model/{k}": v for k, v in self.model.resume_state().items()})
        for index, callback in enumerate(self.stateful):
            saved = {}
            for key in _state_keys(callback):
                value = getattr(callback, key, None)
                if key.endswith("weights"):
                    for i, w in enumerate(value or []):
                        arrays[f"callback{index}/{key}/{i}"] = np.asarray(w)
                else:
                    saved[key] = _plain(value)
            callbacks.append(saved)
        np.savez(new / "arrays.npz", **arrays)
        state = {"epoch": epoch, "history": self.history, "callbacks": callbacks}
        # A stop decided this epoch (callbacks before this one) holds after a resume too.
        state["stopped"] = bool(self.model.stop_training)
        state["seconds"] = self.seconds
        state["monitor_seconds"] = {m.monitor_name: m.seconds for m in self.monitors}
        (new / "state.json").write_text(json.dumps(state))
        # The pointer swap is the commit: a crash before it leaves the previous backup intact.
        pointer = self.write_dir / POINTER
        pointer.with_suffix(".tmp").write_text(new.name)
        os.replace(pointer.with_suffix(".tmp"), pointer)
        for old in self.write_dir.glob("epoch-*"):
            if old != new:
                shutil.rmtree(old, ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        pass  # epoch backups only: a mid-epoch restart replays that epoch

    def on_train_end(self, logs=None):
        if self.diverged_epoch is None and not self.keep:
            self.remove()

    def remove(self) -> None:
        """Deletes this training's backups (a finished training no longer needs them)."""
        shutil.rmtree(self.write_dir, ignore_errors=True)


def latest_backup(directory: Path) -> Path | None:
    """The newest complete backup in `directory` (its pointer file names it), or None."""
    pointer = directory / POINTER
    if not pointer.exists():
        return None
    backup = directory / pointer.read_text().strip()
    return backup if (backup / "state.json").exists() else None


def _state_keys(callback) -> tuple[str, ...]:
    for cls, keys in CALLBACK_STATE.items():
        if isinstance(callback, cls):
            return keys
    return ()


def _prefixed(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _plain(value):
    """A JSON-safe copy of a callback counter (numpy scalars, ±inf, None, lists of them)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(np.asarray(value))


def _components(variable: tf.Variable) -> tuple:
    if isinstance(variable, tf.distribute.DistributedValues):
        return tuple(variable.values)
    return (variable,)


def per_replica_values(variable: tf.Variable) -> list[np.ndarray]:
    """The value of `variable` on every replica, in replica order (one entry without a
    strategy); under MultiWorkerMirroredStrategy every worker's replicas too, gathered by a
    collective that every worker must run (`tfaux.distribute.replica_values`)."""
    return replica_values(variable)


def assign_per_replica(variable: tf.Variable, values: list[np.ndarray]) -> None:
    """Assigns `values` (from `per_replica_values`) back: each local replica takes the value
    saved for its replica id, so each worker of a multi-worker job gets its own back."""
    components, ids = _components(variable), local_replica_ids(variable)
    strategy = getattr(variable, "distribute_strategy", None)  # None: a plain variable
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if replicas != len(values):
        raise ValueError(
            f"Expected a backup from {replicas} replicas. Received: {len(values)} "
            "(a run resumes with the number of replicas and workers it started with)"
        )
    for component, replica in zip(components, ids, strict=True):
        component.assign(values[replica])
