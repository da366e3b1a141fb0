"""Callbacks of the robust-training loops, and the robust accuracy a λ search is scored by."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator

import keras
import numpy as np

from tfaux.attacks.projected_gradient import PGD
from tfaux.attacks.protocol import AttackedModel
from tfaux.attacks.threat_model import check_eps

log = logging.getLogger("tfaux")
ACTIONS = ("log", "stop", "rollback")


class TimedMonitor(keras.callbacks.Callback):
    """A callback that only watches training, and counts what watching costs: `seconds`, the
    wall time of its work (its attacks' traces included), reported per variant under
    `monitor_name` (`tfaux.experiment.monitor_seconds`).

    A subclass wraps its work in `with self.timed():` and calls `super().on_train_begin()`.
    `RunBackup` keeps `seconds` across a resume, like the training's own seconds.
    """

    monitor_name = ""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0

    def on_train_begin(self, logs=None):
        self.seconds = 0.0

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start


class SharedAttacker:
    """One `AttackedModel` for the monitors of one fit: validation PGD and the image panels' PGD
    then run one compiled attack, traced once instead of once per monitor (a trace costs about what
    an epoch's validation PGD does). A compiled attack is a pure function of its inputs and
    seed, so sharing it changes no number.

    Example:
        attackers = SharedAttacker()
        callbacks = [RobustAccuracy(x, y, eps=0.1, attackers=attackers),
                     ImageLogger(log_dir, x, y, attackers=attackers)]
    """

    def __init__(self):
        self._model = self._attacker = None

    def __call__(self, model: keras.Model) -> AttackedModel:
        """`model` as its attacks see it (a new one when the model is another)."""
        if self._model is not model:
            self._model, self._attacker = model, AttackedModel(model)
        return self._attacker


class _PGDAccuracy(TimedMonitor):
    """PGD-k accuracy of the model's primary logits on fixed images, with their true labels.

    The attack is seeded (same random start every call), so the epochs are compared on one
    attack; images go through in chunks of `batch_size`. `attackers` shares the compiled attack
    with the fit's other monitors.
    """

    def __init__(
        self,
        x,
        y,
        *,
        eps: float,
        steps: int,
        batch_size: int = 512,
        attackers: SharedAttacker | None = None,
    ):
        super().__init__()
        self._attackers = attackers or SharedAttacker()
        self.x, self.y = np.asarray(x, "float32"), np.asarray(y)
        if len(self.x) != len(self.y) or not len(self.x):
            raise ValueError(
                f"Expected as many labels as images, at least one. Received: x {self.x.shape}, "
                f"y {self.y.shape}"
            )
        if steps < 1:
            raise ValueError(f"Expected steps >= 1. Received: steps={steps}")
        self.eps, self.steps = check_eps(eps), steps
        self.batch_size = batch_size

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._pgd = PGD(self._attackers(self.model), steps=self.steps)

    def correct(self) -> np.ndarray:
        """Per image, whether the model classifies its PGD example correctly (the paired tests
        of a λ search compare trials on these)."""
        parts = []
        with self.timed():
            for start in range(0, len(self.x), self.batch_size):
                x = self.x[start : start + self.batch_size]
                y = self.y[start : start + self.batch_size]
                x_adv = self._pgd(x, y, eps=self.eps, seed=0)
                parts.append(np.argmax(self._pgd.model.predict(x_adv).numpy(), -1) == y)
        return np.concatenate(parts)

    def accuracy(self) -> float:
        return float(np.mean(self.correct()))


class RobustAccuracy(_PGDAccuracy):
    """Adds `val_pgd_accuracy` and `val_clean_pgd_accuracy` to the epoch logs, every `every`
    epochs.

    `val_pgd_accuracy` is PGD-k accuracy at ε on a fixed validation subset (the same seeded
    attack every epoch); `val_clean_pgd_accuracy` is its mean with the clean `val_accuracy` of
    the whole validation split, so `fit` needs `validation_data`. Put it before the callbacks
    that read the logs (History, TensorBoard, CSVLogger, early stopping, KerasTuner's).

    With `every` > 1 it measures after epochs `every`, `2·every`, ... and the fit's last one;
    in the others both metrics are NaN (not measured), so every epoch has them and histories
    stay aligned by epoch. Whatever selects or stops by them needs `every=1`.

    Args:
        x, y: validation images in [0, 1] and their labels.
        eps: the L∞ budget.
        steps: PGD steps (step size 2.5·ε/steps, a random start; Madry et al.).
        every: measure every `every` epochs.
        attackers: a `SharedAttacker` of the fit's monitors; default its own.

    Example:
        model.fit(train, validation_data=val, callbacks=[RobustAccuracy(x_val, y_val, eps=0.1)])
    """

    monitor_name = "val_pgd"

    def __init__(
        self,
        x,
        y,
        *,
        eps: float,
        steps: int = 10,
        every: int = 1,
        attackers: SharedAttacker | None = None,
    ):
        if every < 1:
            raise ValueError(f"Expected every >= 1. Received: every={every}")
        super().__init__(x, y, eps=eps, steps=steps, attackers=attackers)
        self.every = int(every)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if "val_accuracy" not in logs:
            raise ValueError(
                "Expected `val_accuracy` in the epoch logs: RobustAccuracy needs fit(..., "
                f"validation_data=...). Received: {sorted(logs)}"
            )
        last = epoch + 1 == (self.params or {}).get("epochs")
        pgd = self.accuracy() if (epoch + 1) % self.every == 0 or last else math.nan
        logs["val_pgd_accuracy"] = pgd
        logs["val_clean_pgd_accuracy"] = (float(logs["val_accuracy"]) + pgd) / 2


class CatastrophicOverfittingGuard(_PGDAccuracy):
    """Measures PGD accuracy on a fixed training batch each epoch and acts when it collapses.

    Single-step methods (FGSM-AT, Free-AT) can suddenly lose all robustness to multi-step attacks
    within an epoch while FGSM accuracy keeps rising ("catastrophic overfitting", Wong et al.
    2020). The guard logs `train_pgd_accuracy`; when it falls more than `drop` below the best
    epoch so far it stops training ("stop") or restores the best epoch's weights and stops
    ("rollback", the early stopping of Wong et al.). A rollback discards the epochs after the
    best one, so it tells the `ModelSelection` of the same fit, which must not then restore one of
    them: the evaluated weights stay those of the epoch the selection names.

    Args:
        x, y: a fixed training batch (images in [0, 1], labels).
        eps: the PGD budget (the training ε).
        steps: PGD steps (Wong et al. use 10 with a random start).
        drop: accuracy drop from the best epoch (fraction) that counts as a collapse.
        action: "log", "stop" or "rollback".
        selection: the fit's `ModelSelection` (before this guard in the callbacks), told of a
            rollback; None for a fit without one.

    Reference:
        Wong, Rice and Kolter, "Fast is better than free: revisiting adversarial training", 2020.
    """

    monitor_name = "guard"

    def __init__(
        self,
        x,
        y,
        *,
        eps: float,
        steps: int = 10,
        drop: float = 0.2,
        action="rollback",
        selection: ModelSelection | None = None,
    ):
        if action not in ACTIONS:
            raise ValueError(f"Expected action in {ACTIONS}. Received: action={action!r}")
        if not 0 < drop <= 1:
            raise ValueError(f"Expected 0 < drop <= 1. Received: drop={drop}")
        super().__init__(x, y, eps=eps, steps=steps)
        self.drop, self.action, self.selection = drop, action, selection
        self.best, self.best_epoch, self.best_weights, self.collapsed_at = -1.0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        accuracy = self.accuracy()
        if logs is not None:
            logs["train_pgd_accuracy"] = accuracy
        if accuracy > self.best:
            self.best, self.best_epoch = accuracy, epoch
            if self.action == "rollback":
                self.best_weights = self.model.get_weights()
        elif accuracy < self.best - self.drop:
            self.collapsed_at = epoch
            log.warning(
                "catastrophic overfitting at epoch %d: PGD accuracy on a training batch %.3f, "
                "best %.3f; %s",
                epoch,
                accuracy,
                self.best,
                self.action,
            )
            if self.action == "rollback" and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
                if self.selection is not None and self.best_epoch is not None:
                    self.selection.roll_back(self.best_epoch, self.best_weights, epoch)
            if self.action != "log":
                self.model.stop_training = True


class ModelSelection(keras.callbacks.Callback):
    """Keeps the weights of the epoch a rule selects and restores them when training ends.

    Which epoch is evaluated is part of a method, so it is declared, never a side effect of early
    stopping: "last" keeps the final epoch (a fixed schedule such as Auxiliary Training's
    stage 2), "best_clean" the best `val_accuracy`, "best_robust" the best `val_pgd_accuracy`
    (Rice et al. 2020's early stopping against robust overfitting; `RobustAccuracy` must come
    before this callback). Ties keep the earlier epoch.

    A guard's rollback (`CatastrophicOverfittingGuard`) discards the epochs after its best one;
    a selected epoch among them is replaced by the guard's (`roll_back`), so the weights held at
    the end are always those of the epoch `summary()` names.

    Attributes:
        best_epoch: the selected epoch (0-based), None before the first epoch ends.
        best: its metric value (-inf for "last").
        epochs_run: epochs finished (those before a resume included).
        values: every epoch's metric value (None for "last"): a rollback's epoch needs its own.
        rolled_back_from: the collapsed epoch (0-based) a guard rolled back from, or None.
    """

    METRICS = {"last": None, "best_clean": "val_accuracy", "best_robust": "val_pgd_accuracy"}

    def __init__(self, rule: str):
        super().__init__()
        if rule not in self.METRICS:
            raise ValueError(f"Expected rule in {tuple(self.METRICS)}. Received: rule={rule!r}")
        self.rule, self.metric = rule, self.METRICS[rule]

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.best_weights, self.epochs_run = -np.inf, None, None, 0
        self.values, self.rolled_back_from = [], None

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run = epoch + 1
        value = None
        if self.metric is not None:
            value = (logs or {}).get(self.metric)
            if value is None:
                raise ValueError(
                    f"Expected {self.metric!r} in the epoch logs to select the {self.rule} "
                    f"epoch. Received: {sorted(logs or {})}"
                )
            value = float(value)
        # Indexed by epoch even after resuming from a backup written before `values` existed.
        self.values += [None] * (epoch - len(self.values))
        self.values.append(value)
        if self.metric is None:
            self.best_epoch = epoch
        elif np.isfinite(value) and value > self.best:
            self.best, self.best_epoch = value, epoch
            self.best_weights = self.model.get_weights()

    def roll_back(self, epoch: int, weights: list, collapsed_at: int) -> None:
        """A guard restored `weights`, those of `epoch`, at the end of epoch `collapsed_at`: the
        epochs after `epoch` are discarded, so a selected one among them becomes `epoch`.

        The guard's epoch, not the rule's best among the kept epochs: only its weights are kept
        (Wong et al.'s early stopping returns it too).
        """
        if collapsed_at != self.epochs_run - 1:
            raise ValueError(
                "Expected the ModelSelection before the guard in the callbacks (it must see "
                f"the collapsed epoch first). Received: a rollback at epoch {collapsed_at}, "
                f"{self.epochs_run} epochs selected from"
            )
        self.rolled_back_from = collapsed_at
        if self.best_epoch is None or self.best_epoch > epoch:
            self.best_epoch, self.best_weights = epoch, weights
            if self.metric is not None:
                self.best = self.values[epoch]

    def on_train_end(self, logs=None):
        # A rollback's epoch is never the last one run: its weights are restored too.
        if self.best_weights is not None and self.best_epoch != self.epochs_run - 1:
            self.model.set_weights(self.best_weights)

    def summary(self) -> dict:
        """{"rule", "metric", "epoch" (1-based), "value", "epochs_run", "rolled_back_from"
        (1-based, None without a rollback)} for the results."""
        return {
            "rule": self.rule,
            "metric": self.metric,
            "epoch": None if self.best_epoch is None else self.best_epoch + 1,
            "value": None if self.metric is None else self.best,
            "epochs_run": self.epochs_run,
            "rolled_back_from": (
                None if self.rolled_back_from is None else self.rolled_back_from + 1
            ),
        }


class StepBudget(keras.callbacks.Callback):
    """Stops training once `steps` optimizer steps were taken, mid-epoch if need be.

    Variants compare at natural training's optimizer steps: Free-AT's epochs ÷ m round up, and
    a growing m overshoots (2 + 4 replays for 4 natural epochs), so its last epoch is capped.
    A step counts whether it was applied or skipped: under mixed_float16 Keras'
    `LossScaleOptimizer` skips a step whose gradients are not finite without advancing
    `optimizer.iterations`, so counting iterations alone would let such a run take extra
    batches. Each batch takes the model's `steps_per_batch` steps (Free-AT's m replays; 1 for a
    model without it); those the optimizer did not apply are `skipped_steps`, which a resumed run
    restores (`RunBackup`) with the optimizer's counter.

    Attributes:
        skipped_steps: steps taken but not applied (non-finite gradients), resumes included.
    """

    def __init__(self, steps: int):
        super().__init__()
        if steps < 1:
            raise ValueError(f"Expected steps >= 1. Received: steps={steps}")
        self.steps = int(steps)

    def on_train_begin(self, logs=None):
        self.skipped_steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._applied = self._iterations()  # after a resume restored the optimizer

    def on_train_batch_end(self, batch, logs=None):
        applied = self._iterations()
        taken = getattr(self.model, "steps_per_batch", 1)
        self.skipped_steps += taken - (applied - self._applied)
        self._applied = applied
        if applied + self.skipped_steps >= self.steps:
            self.model.stop_training = True

    def summary(self) -> dict:
        """{"optimizer_steps": every step taken, applied or skipped, "skipped_steps"}."""
        return {
            "optimizer_steps": self._iterations() + self.skipped_steps,
            "skipped_steps": self.skipped_steps,
        }

    def _iterations(self) -> int:
        return int(self.model.optimizer.iterations.numpy())
