"""From a recipe's loop name to a model class, its epochs and its callbacks.

A loop re-wraps the functional graph of a built model (same layers, same weights) in the class
whose `train_step` implements it, so every backbone and aux head works with every loop.
"""

from __future__ import annotations

from collections.abc import Callable

from tfaux.config import AdversarialConfig
from tfaux.training.adversarial import AdversarialModel
from tfaux.training.aux_model import AuxModel
from tfaux.training.callbacks import CatastrophicOverfittingGuard
from tfaux.training.free import FreeATModel, FreeSchedule, free_epochs

SINGLE_STEP = ("fgsm", "fgsm_rs", "free", "free_scheduled", "free_ema", "free_gamma")


def with_loop(model: AuxModel, loop: str, config: AdversarialConfig, batch_size: int) -> AuxModel:
    """`model`'s graph in the class that trains it with `loop` (call inside the strategy scope)."""
    graph = {"inputs": model.input, "outputs": model.output, "tasks": model.tasks}
    graph["name"] = model.name
    if loop == "standard":
        return model
    if loop in ("fgsm", "fgsm_rs", "pgd"):
        return AdversarialModel(
            **graph,
            attack="pgd" if loop == "pgd" else "fgsm",
            eps=config.eps,
            steps=config.pgd_steps,
            random_start=loop != "fgsm",
            clean_fraction=config.clean_fraction,
        )
    return FreeATModel(
        **graph,
        eps=config.eps,
        replays=config.replays,
        batch_size=batch_size,
        delta_fraction=config.gamma if loop == "free_gamma" else 1.0,
        delta_ema=config.ema if loop == "free_ema" else 0.0,
    )


def loop_epochs(loop: str, epochs: int, config: AdversarialConfig) -> int:
    """Free-AT trains epochs ÷ m (same number of gradient steps as natural training)."""
    if not loop.startswith("free"):
        return epochs
    return free_epochs(epochs, config.replays, _schedule(loop, config))


def loop_callbacks(loop: str, config: AdversarialConfig, guard_batch: Callable) -> list:
    """The ε/m schedule of `free_scheduled`, the overfitting guard of single-step loops.

    `guard_batch()` returns the guard's fixed training batch; it is called only when a guard is
    used, because reading the training pipeline advances its shuffling and augmentation seeds.
    """
    callbacks = []
    schedule = _schedule(loop, config)
    if schedule is not None:
        callbacks.append(schedule)
    if loop in SINGLE_STEP and config.guard != "off":
        x, y = guard_batch()
        callbacks.append(CatastrophicOverfittingGuard(x, y, eps=config.eps, action=config.guard))
    return callbacks


def _schedule(loop: str, config: AdversarialConfig) -> FreeSchedule | None:
    if loop != "free_scheduled":
        return None
    return FreeSchedule(config.eps, config.replays, config.ramp_epochs)
