"""Paper schedules as small pure functions (big_transfer style), shared by every trainer."""

from __future__ import annotations

import keras


def seed000_optimizer(learning_rate: float = 0.1, momentum: float = 0.9, weight_decay=5e-4):
    """SGD with initial learning rate 0.1 (seed 000 §2.3; momentum and decay as kuangliu's repo)."""
    return keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay
    )


def seed000_callbacks(
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
