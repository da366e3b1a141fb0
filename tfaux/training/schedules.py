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
    """LR ×0.2 when validation accuracy plateaus; early stopping that only stops.

    Seed 000 §2.3: "reduces the learning rate by 80% each time the validation accuracy plateaus",
    "when the validation accuracy stops increasing for 10 consecutive epochs, the early stopping
    mechanism will be triggered, and only the model weights corresponding to the best validation
    accuracy so far will be saved". The plateau patience is not given in the paper. Which
    epoch is kept is a declared choice (`tfaux.training.callbacks.ModelSelection`), so this
    early stopping does not restore weights: Keras 3.15 restores the best epoch at the end of
    training even when it never stopped.
    """
    if plateau_patience < 1 or stop_patience < 1:
        raise ValueError(
            "Expected patience >= 1. Received: "
            f"plateau_patience={plateau_patience}, stop_patience={stop_patience}"
        )
    return [plateau_lr_cut(plateau_patience), early_stopping(stop_patience)]


def plateau_lr_cut(patience: int = 3) -> keras.callbacks.ReduceLROnPlateau:
    """LR ×0.2 after `patience` epochs without a better validation accuracy (seed 000)."""
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy", mode="max", factor=0.2, patience=patience, verbose=0
    )


def early_stopping(patience: int = 10, monitor: str = "val_accuracy") -> keras.callbacks.Callback:
    """Stops after `patience` epochs without a higher `monitor`; never restores weights."""
    return keras.callbacks.EarlyStopping(
        monitor=monitor, mode="max", patience=patience, restore_best_weights=False, verbose=0
    )


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


def one_cycle(
    peak_learning_rate: float,
    *,
    total_steps: int,
    warmup_fraction: float = 0.2,
    final_fraction: float = 0.0,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from 0 to the peak, then cosine annealing: converges in a few epochs.

    Per optimizer step: `peak * step / W` for the first `W = round(warmup_fraction *
    total_steps)` steps, then cosine from `peak` to `final_fraction * peak` at `total_steps`,
    constant after. Measured on Fashion-MNIST with a ResNet-8 (SGD, momentum 0.9, decay 5e-4,
    batch 128, the defaults here): 4 epochs at peak 0.4 reach 90.7–90.9 % test accuracy (two
    seeds); 3 epochs need peak 0.8 for 90.0–90.1 %, at 0.2–0.6 they stop at 89.5–89.9 %.

    Keras' `CosineDecay(initial_learning_rate=0.0, warmup_target=peak, warmup_steps=W,
    decay_steps=total_steps - W, alpha=final_fraction)` is exactly this, so it is returned
    as is: it serializes with the optimizer, and as a pure function of `optimizer.iterations`
    a restored optimizer resumes at the same rate. The warm-up starts at 0, as in the measured
    recipe and Goyal et al., not at PyTorch `OneCycleLR`'s peak/25: the two differ by at most
    peak/25 and only during the warm-up.

    Args:
        peak_learning_rate: the rate at the end of the warm-up.
        total_steps: optimizer steps of the whole run (epochs × steps per epoch).
        warmup_fraction: share of `total_steps` spent warming up, in [0, 1).
        final_fraction: the rate at `total_steps` as a fraction of the peak, in [0, 1].

    Returns:
        A Keras `CosineDecay` to pass as an optimizer's `learning_rate`.

    Reference:
        Smith & Topin, "Super-Convergence" (2017); Goyal et al., "Accurate, Large Minibatch
        SGD" (2017) for the linear warm-up; Loshchilov & Hutter, "SGDR" (2016) for the cosine.

    Example:
        schedule = one_cycle(0.4, total_steps=epochs * int(splits.train.cardinality()))
        model.compile(optimizer=sgd_momentum(schedule, 0.9, 5e-4))
    """
    if (
        peak_learning_rate <= 0
        or total_steps < 1
        or not 0 <= warmup_fraction < 1
        or not 0 <= final_fraction <= 1
    ):
        raise ValueError(
            "Expected peak_learning_rate > 0, total_steps >= 1, 0 <= warmup_fraction < 1 and "
            f"0 <= final_fraction <= 1. Received: peak_learning_rate={peak_learning_rate}, "
            f"total_steps={total_steps}, warmup_fraction={warmup_fraction}, "
            f"final_fraction={final_fraction}"
        )
    # At least one cosine step: CosineDecay needs decay_steps > 0.
    warmup = min(round(warmup_fraction * total_steps), total_steps - 1)
    peak = float(peak_learning_rate)  # an int rate would make CosineDecay compute in int32
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak,
        decay_steps=total_steps - warmup,
        alpha=float(final_fraction),
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def step_decay(
    learning_rate: float,
    *,
    total_steps: int,
    boundaries: tuple[float, ...] = (1 / 3, 2 / 3, 29 / 30),
    factor: float = 0.1,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The rate times `factor` at each boundary, given as fractions of training; per step.

    Seed 001 §5: "trained by 300 epochs, with learning rate divided by 10 in the 100th, 200th,
    290th epoch" (PyTorch's `MultiStepLR`), i.e. steps from `round(b * total_steps)` on use the
    decayed rate. Keras' `PiecewiseConstantDecay` keeps a value up to and including its
    boundary, so it gets each boundary step minus one.

    Args:
        learning_rate: the rate before the first boundary.
        total_steps: optimizer steps of the whole run (epochs × steps per epoch).
        boundaries: strictly increasing fractions of `total_steps` in (0, 1).
        factor: the multiplier at each boundary, in (0, 1].

    Returns:
        A Keras `PiecewiseConstantDecay` to pass as an optimizer's `learning_rate`.
    """
    fractions = tuple(boundaries)
    if (
        learning_rate <= 0
        or not 0 < factor <= 1
        or not fractions
        or not all(0 < b < 1 for b in fractions)
        or list(fractions) != sorted(set(fractions))  # strictly increasing
    ):
        raise ValueError(
            "Expected learning_rate > 0, 0 < factor <= 1 and strictly increasing boundaries "
            f"in (0, 1). Received: learning_rate={learning_rate}, factor={factor}, "
            f"boundaries={boundaries}"
        )
    # A run too short for distinct boundaries (a quick test: 2 steps) applies the coinciding
    # cuts together: the rate from step s on is the rate times factor^(boundaries <= s).
    steps = [max(1, round(b * total_steps)) for b in fractions]
    cuts = sorted(set(steps))
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries=[s - 1 for s in cuts],
        values=[float(learning_rate) * factor ** sum(b <= s for b in steps) for s in [0, *cuts]],
    )
