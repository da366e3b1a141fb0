"""Paper schedules as small pure functions (big_transfer style), shared by every trainer."""

from __future__ import annotations

import keras


def sgd_momentum(learning_rate: float = 0.1, momentum: float = 0.9, weight_decay=5e-4):
    """SGD with momentum and decoupled weight decay; the defaults are seed 000's (§2.3: initial
    learning rate 0.1; momentum and decay as kuangliu's repo)."""
    return keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay
    )


def plateau_callbacks(
    plateau_patience: int = 3, stop_patience: int = 10
) -> list[keras.callbacks.Callback]:
    """LR ×0.2 when validation accuracy plateaus; early stopping restoring the best weights.

    Seed 000 §2.3: "reduces the learning rate by 80% each time the validation accuracy plateaus",
    "when the validation accuracy stops increasing for 10 consecutive epochs, the early stopping
    mechanism will be triggered, and only the model weights corresponding to the best validation
    accuracy so far will be saved". The plateau patience is not given in the paper.
    """
    if plateau_patience < 1 or stop_patience < 1:
        raise ValueError(
            "Expected patience >= 1. Received: "
            f"plateau_patience={plateau_patience}, stop_patience={stop_patience}"
        )
    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_accuracy", mode="max", factor=0.2, patience=plateau_patience, verbose=0
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=stop_patience,
            restore_best_weights=True,
            verbose=0,
        ),
    ]


def adamw(learning_rate=3e-4, weight_decay: float = 1e-4):
    """Adam with decoupled weight decay; the defaults are seed 002's (§4.1: 3e-4, decay 1e-4).

    Keras' Adam decay is decoupled (AdamW), where the paper's PyTorch `Adam(weight_decay=...)`
    adds an L2 term to the gradient; see docs/decisions.md.
    """
    return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)


def cosine_after_warmup(
    learning_rate: float, *, epochs: int, warmup_epochs: int, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Constant for `warmup_epochs`, then cosine annealing to 0 at the end of training.

    Seed 002 §4.1: "a cosine annealing scheduler after the first 10 epochs" (the SimCLR
    reference code steps its scheduler from epoch 10 on). Keras' `CosineDecay` with a
    `warmup_target` equal to its initial rate is exactly that plateau-then-cosine.
    """
    if epochs < 1 or steps_per_epoch < 1 or not 0 <= warmup_epochs < epochs:
        raise ValueError(
            "Expected epochs >= 1, steps_per_epoch >= 1 and 0 <= warmup_epochs < epochs. "
            f"Received: epochs={epochs}, steps_per_epoch={steps_per_epoch}, "
            f"warmup_epochs={warmup_epochs}"
        )
    warmup = warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate,
        decay_steps=(epochs - warmup_epochs) * steps_per_epoch,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
