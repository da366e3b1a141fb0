"""Callbacks of the robust-training loops."""

from __future__ import annotations

import logging

import keras
import numpy as np

from tfaux.attacks import Attacker, AttackSpec

log = logging.getLogger("tfaux")
ACTIONS = ("log", "stop", "rollback")


class CatastrophicOverfittingGuard(keras.callbacks.Callback):
    """Measures PGD accuracy on a fixed training batch each epoch and acts when it collapses.

    Single-step methods (FGSM-AT, Free-AT) can suddenly lose all robustness to multi-step attacks
    within an epoch while FGSM accuracy keeps rising ("catastrophic overfitting", Wong et al.
    2020). The guard logs `train_pgd_accuracy`; when it falls more than `drop` below the best
    epoch so far it stops training ("stop") or restores the best epoch's weights and stops
    ("rollback", the early stopping of Wong et al.).

    Args:
        x, y: a fixed training batch (images in [0, 1], labels).
        eps: the PGD budget (the training ε).
        steps: PGD steps (Wong et al. use 10 with a random start).
        drop: accuracy drop from the best epoch (fraction) that counts as a collapse.
        action: "log", "stop" or "rollback".

    Reference:
        Wong, Rice and Kolter, "Fast is better than free: revisiting adversarial training", 2020.
    """

    def __init__(self, x, y, *, eps: float, steps: int = 10, drop: float = 0.2, action="rollback"):
        super().__init__()
        if action not in ACTIONS:
            raise ValueError(f"Expected action in {ACTIONS}. Received: action={action!r}")
        if not 0 < drop <= 1:
            raise ValueError(f"Expected 0 < drop <= 1. Received: drop={drop}")
        self.x, self.y = np.asarray(x, "float32"), np.asarray(y)
        self.spec = AttackSpec("pgd", eps=eps, steps=steps)
        self.drop, self.action = drop, action
        self.best, self.best_weights, self.collapsed_at = -1.0, None, None

    def on_train_begin(self, logs=None):
        self._attacker = Attacker(self.model)

    def accuracy(self) -> float:
        x_adv = self._attacker(self.spec, self.x, self.y, seed=0)
        predicted = np.argmax(self._attacker.predict(x_adv).numpy(), axis=-1)
        return float(np.mean(predicted == self.y))

    def on_epoch_end(self, epoch, logs=None):
        accuracy = self.accuracy()
        if logs is not None:
            logs["train_pgd_accuracy"] = accuracy
        if accuracy > self.best:
            self.best = accuracy
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
            if self.action != "log":
                self.model.stop_training = True
