"""Resume after a crash: `RunBackup` restores weights, δ, callback state and history."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (
    RECIPES,
    ROOT,
    ForcedGuard,
    Interrupt,
    MadeUpLogs,
    random_images,
    tiny_model,
    with_loop,
)
from tfaux.config import AdversarialConfig
from tfaux.models.layers import batch_norm
from tfaux.training.callbacks import ModelSelection, TimedMonitor
from tfaux.training.loops.free import FreeSchedule, free_epochs
from tfaux.training.resume import POINTER, RunBackup, latest_backup

X = random_images(32, (16, 16, 1), seed=3)
Y = np.arange(32) % 4


class Record(keras.callbacks.Callback):
    """Copies of δ and of the early-stopping state at every epoch end."""

    def __init__(self, stop):
        super().__init__()
        self.stop, self.deltas, self.states = stop, [], []

    def on_epoch_end(self, epoch, logs=None):
        if hasattr(self.model, "resume_state"):  # Free-AT's δ
            self.deltas.append(self.model.resume_state())
        self.states.append((self.stop.wait, self.stop.best, self.stop.best_epoch))


def _free_model(strategy=None, weights=None):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = tiny_model(norm=batch_norm(synchronized=strategy.num_replicas_in_sync > 1))
        if weights is not None:
            model.set_weights(weights)
        model = with_loop(model, "free", adversarial=AdversarialConfig(eps=0.1, replays=2))
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    return model


def _fit(model, backup_dir, epochs=4, extra=()):
    stop = keras.callbacks.EarlyStopping("loss", patience=10, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau("loss", patience=1, factor=0.5)
    record = Record(stop)
    callbacks = [stop, plateau, record, *extra]
    backup = RunBackup(backup_dir, callbacks)
    history = model.fit(
        X, Y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
        callbacks=[*callbacks, backup],
    )  # fmt: skip
    return history, backup, record, stop


def test_killed_and_resumed_free_at_equals_uninterrupted_training(tmp_path):
    weights = tiny_model().get_weights()
    _, whole, whole_record, _ = _fit(_free_model(weights=weights), tmp_path / "a")
    expected = _free_model(weights=weights)
    expected.fit(X, Y, batch_size=8, epochs=4, shuffle=False, verbose=0)

    interrupted = _free_model(weights=weights)
    with pytest.raises(KeyboardInterrupt):
        _fit(interrupted, tmp_path / "b", extra=[Interrupt(2)])
    assert latest_backup(tmp_path / "b").name == "epoch-00002"
    resumed = _free_model(weights=weights)  # a new process: fresh model, zero δ
    history, backup, record, stop = _fit(resumed, tmp_path / "b")

    assert backup.resumed_from == 2
    assert len(history.epoch) == 2  # only the missing epochs ran
    assert backup.history["loss"] == pytest.approx(whole.history["loss"], rel=1e-6)
    assert len(backup.history["loss"]) == 4
    for a, b in zip(resumed.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(record.deltas[-1]["0"], whole_record.deltas[-1]["0"], atol=1e-6)
    assert np.abs(record.deltas[-1]["0"]).max() > 0  # δ is in use, not a trivial zero
    assert record.states == whole_record.states[2:]  # early stopping counted on, not from 0
    assert not (tmp_path / "b").exists()  # a finished fit removes its backup


@pytest.mark.parametrize("loop", ["trades", "mart"])
def test_killed_and_resumed_robust_loops_equal_uninterrupted_training(loop, tmp_path):
    # Their attacks draw from the optimizer step, which the backup restores with the weights.
    weights = tiny_model().get_weights()

    def model():
        fresh = tiny_model()
        fresh.set_weights(weights)
        fresh = with_loop(fresh, loop, adversarial=AdversarialConfig(eps=0.1, pgd_steps=2))
        fresh.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
        return fresh

    whole, *_ = _fit(model(), tmp_path / "a", epochs=3)
    interrupted = model()
    with pytest.raises(KeyboardInterrupt):
        _fit(interrupted, tmp_path / "b", epochs=3, extra=[Interrupt(1)])
    before = json.loads((latest_backup(tmp_path / "b") / "state.json").read_text())["seconds"]
    resumed = model()  # a new process: fresh model and optimizer
    history, backup, *_ = _fit(resumed, tmp_path / "b", epochs=3)
    assert backup.resumed_from == 1 and len(history.epoch) == 2
    assert before > 0 and backup.seconds > before  # the epoch before the kill still counts
    assert backup.history["loss"] == pytest.approx(whole.history["loss"], rel=1e-5)
    assert backup.history["robust_loss"][-1] > 0


def test_delta_of_every_replica_survives_resume(tmp_path, mirrored):
    model = _free_model(mirrored)
    with pytest.raises(KeyboardInterrupt):
        _fit(model, tmp_path, extra=[Interrupt(1)])
    saved = model.resume_state()
    assert len(saved) == 2 and not np.allclose(saved["0"], saved["1"])  # per replica
    fresh = _free_model(mirrored)
    backup = RunBackup(tmp_path)
    backup.set_model(fresh)
    with mirrored.scope():
        backup.on_train_begin()
    for key in saved:
        np.testing.assert_array_equal(fresh.resume_state()[key], saved[key])


@pytest.mark.parametrize("collapse", [None, [0.5, 0.6, 0.55, 0.1]])
def test_the_model_selection_survives_a_resume(collapse, tmp_path):
    # best_clean selects epoch 3 (1-based), after the kill at 2. With the collapse, the guard's
    # rollback after the resume goes back to its best epoch 2, from before the kill: its weights
    # and the selection's value of that epoch must have come back from the backup.
    weights = tiny_model().get_weights()

    def fit(backup_dir, extra=()):
        model = tiny_model()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
        selection = ModelSelection("best_clean")
        callbacks = [MadeUpLogs(val_accuracy=[0.5, 0.6, 0.9, 0.7]), selection]
        callbacks += [ForcedGuard(collapse, selection)] if collapse else []
        backup = RunBackup(backup_dir, callbacks)
        model.fit(
            X, Y, batch_size=8, epochs=4, shuffle=False, verbose=0,
            callbacks=[*callbacks, *extra, backup],
        )  # fmt: skip
        return model, selection.summary(), backup

    whole, expected, _ = fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", extra=[Interrupt(2)])
    resumed, summary, backup = fit(tmp_path / "b")  # a new process: fresh callbacks
    assert backup.resumed_from == 2
    assert summary == expected
    assert (summary["epoch"], summary["epochs_run"]) == ((2, 4) if collapse else (3, 4))
    assert summary["value"] == (0.6 if collapse else 0.9)
    assert summary["rolled_back_from"] == (4 if collapse else None)
    for a, b in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class Poison(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            kernel = self.model.trainable_weights[0]
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_non_finite_loss_stops_and_keeps_the_last_good_backup(tmp_path):
    model = _free_model()
    history, backup, _, _ = _fit(
        model, tmp_path, extra=[Poison(), keras.callbacks.TerminateOnNaN()]
    )
    assert backup.diverged_epoch == 2
    assert len(history.epoch) == 3  # stopped in the poisoned epoch
    assert latest_backup(tmp_path).name == "epoch-00002"  # kept, and not overwritten by NaNs
    assert all(np.isfinite(v) for v in backup.history["loss"])
    fresh = _free_model()
    restore = RunBackup(tmp_path)
    restore.set_model(fresh)
    restore.on_train_begin()
    assert all(np.all(np.isfinite(w)) for w in fresh.get_weights())


def test_an_incomplete_backup_is_never_restored(tmp_path):
    assert latest_backup(tmp_path) is None
    (tmp_path / "epoch-00003").mkdir()  # killed while writing: the pointer was not swapped
    assert latest_backup(tmp_path) is None
    (tmp_path / POINTER).write_text("epoch-00003")  # pointer without a complete state
    assert latest_backup(tmp_path) is None


# === The real command, killed with SIGKILL and started again ===
KILL_ARGS = [
    "--set", "data.dataset=digits", "--set", "data.batch_size=32",
    "--set", "data.train_size=none", "--set", "data.test_size=none",
    "--set", "model.backbone=small_cnn", "--set", "model.width=0.5",
    "--set", "variants=none@free_scheduled", "--set", "training.epochs=12",
    "--set", "adversarial.replays=3", "--set", "adversarial.ramp_epochs=2",
    "--set", "adversarial.guard_examples=32",
    "--set", "evaluation.sanity=false", "--set", "evaluation.curve_eps=0.1",
    "--set", "evaluation.curve_examples=32", "--set", "evaluation.pgd_steps=3",
    "--set", "evaluation.bim_steps=0", "--set", "evaluation.mim_steps=0",
    "--set", "evaluation.l2_eps=0", "--set", "export=false", "--no-progress",
    # Resuming is the point: validation PGD on few images, no image panels.
    "--set", "monitor.robust_examples=64", "--set", "monitor.images_every=0",
]  # fmt: skip


def _start(tmp_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RECIPES / "run.py"), *KILL_ARGS, "--runs-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigkilled_run_resumes_from_its_backup_with_the_same_number_of_epochs(tmp_path):
    process = _start(tmp_path)
    deadline = time.monotonic() + 300
    pointer = None
    while time.monotonic() < deadline and process.poll() is None:
        found = list(tmp_path.glob(f"*/checkpoints/*/{POINTER}"))
        if found and found[0].read_text() >= "epoch-00002":
            pointer = found[0]
            break
        time.sleep(0.02)
    assert pointer is not None, process.communicate()[1][-3000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = int(pointer.read_text().split("-")[1])

    process = _start(tmp_path)  # the same command again
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    train = json.loads((run_dir / "variants" / "none@free_scheduled.train.json").read_text())
    schedule = FreeSchedule(0.1, 3, 2)
    epochs = free_epochs(12, 3, schedule)
    assert train["resumed_from_epoch"] >= killed_at >= 2
    assert train["epochs_run"] == epochs == len(train["history"]["loss"])
    # The ε and m schedule continued where it was, not from its start.
    assert train["history"]["free_replays"] == [schedule.at(e)[1] for e in range(epochs)]
    assert train["history"]["free_eps"] == pytest.approx([schedule.at(e)[0] for e in range(epochs)])
    assert "resumed from the backup of epoch" in (run_dir / "log.txt").read_text()
    assert not (run_dir / "checkpoints" / "none@free_scheduled").exists()  # finished: removed


def test_a_stopped_training_stays_stopped_after_a_resume_and_its_backup_waits(tmp_path):
    # A kill after the stop's last backup but before the caller saved the weights: the run
    # resumes into a finished training (no further steps), and the backup is still there.
    from tfaux.training.callbacks import StepBudget

    weights = tiny_model().get_weights()

    def fit():
        model = tiny_model()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        budget = StepBudget(8)  # 4 steps per epoch: stops after the second of 6 epochs
        backup = RunBackup(tmp_path, [budget], keep=True)
        history = model.fit(X, Y, batch_size=8, epochs=6, verbose=0, callbacks=[budget, backup])
        return model, history, backup

    first, history, backup = fit()
    assert len(history.epoch) == 2 and latest_backup(tmp_path) is not None  # kept
    again, history, backup = fit()  # a new process after the kill
    assert len(history.epoch) == 0 and int(again.optimizer.iterations.numpy()) == 8
    for a, b in zip(again.get_weights(), first.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    backup.remove()
    assert not tmp_path.exists()


class _Watcher(TimedMonitor):
    """A monitor whose every epoch costs exactly one (counted) second."""

    monitor_name = "watcher"

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += 1.0


def test_monitor_seconds_survive_a_resume(tmp_path):
    # What a monitor cost before the kill stays counted, as the training's own seconds do.
    def fit(extra=()):
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        watcher = _Watcher()
        backup = RunBackup(tmp_path, [watcher])
        model.fit(
            X, Y, batch_size=8, epochs=4, shuffle=False, verbose=0,
            callbacks=[watcher, *extra, backup],
        )  # fmt: skip
        return watcher, backup

    with pytest.raises(KeyboardInterrupt):
        fit(extra=[Interrupt(2)])
    watcher, backup = fit()  # a new process: a fresh monitor
    assert backup.resumed_from == 2
    assert watcher.seconds == 4.0  # 2 from the backup, 2 after the resume
