"""From a recipe's loop name to a model class, its epochs and its callbacks.

A loop re-wraps the functional graph of a built model (same layers, same weights) in the class
whose `train_step` implements it, so every backbone and aux head works with every loop.
"""

from __future__ import annotations

from collections.abc import Callable

from tfaux.aux.corruption_heads import CorruptionClassifier
from tfaux.config import AdversarialConfig, AuxTrainingConfig, WeightingConfig
from tfaux.models.layers import NormFactory, batch_norm, selective_batch_norm
from tfaux.precision import dtype_policy
from tfaux.training.adversarial import AdversarialModel
from tfaux.training.aux_model import AuxModel
from tfaux.training.auxiliary_training import (
    AuxiliaryTrainingModel,
    CorruptionAugmentModel,
    MergeStage,
)
from tfaux.training.callbacks import CatastrophicOverfittingGuard
from tfaux.training.free import FreeATModel, FreeSchedule, free_epochs

SINGLE_STEP = ("fgsm", "fgsm_rs", "free", "free_scheduled", "free_ema", "free_gamma")


def loop_tasks(loop: str, config: AuxTrainingConfig, num_classes: int) -> list:
    """The heads a loop adds to the model: Auxiliary Training's one classifier per corruption."""
    if not loop.startswith("auxiliary"):
        return []
    chunks = len(config.corruptions) + 1
    return [
        CorruptionClassifier(
            config.alpha,
            corruption=corruption,
            index=index,
            chunks=chunks,
            num_classes=num_classes,
            attention=loop != "auxiliary_no_attention",
        )
        for index, corruption in enumerate(config.corruptions, start=1)
    ]


def loop_norm(
    loop: str, config: AuxTrainingConfig, momentum: float, synchronized: bool
) -> NormFactory:
    """Selective BatchNorm for Auxiliary Training (not its "w/o SBN" ablation), else BatchNorm."""
    if loop.startswith("auxiliary") and loop != "auxiliary_no_sbn":
        chunks = len(config.corruptions) + 1
        return selective_batch_norm(chunks, momentum, synchronized=synchronized)
    return batch_norm(momentum, synchronized=synchronized)


def with_loop(
    model: AuxModel,
    loop: str,
    config: AdversarialConfig,
    batch_size: int,
    auxiliary: AuxTrainingConfig | None = None,
    *,
    augmentation: str | None = None,
    flip: bool = True,
    weighting: str = "fixed",
    weighting_config: WeightingConfig | None = None,
) -> AuxModel:
    """`model`'s graph in the class that trains it with `loop` (call inside the strategy scope).

    Auxiliary loops expect a model built with `loop_tasks` (and `loop_norm`); `random_sign`
    expects one built with `RandomSign` layers (they act in training, so its step is standard).
    `augmentation` and `flip` go to `AuxModel` (in-graph augmentation, two-view tasks),
    `weighting` ("fixed", "uncertainty", "gradnorm") with `weighting_config`'s settings too; the
    Auxiliary Training loops refuse learned weighting.
    """
    graph = {"inputs": model.input, "outputs": model.output, "tasks": model.tasks}
    graph.update(name=model.name, augmentation=augmentation, flip=flip)
    weighting_config = weighting_config or WeightingConfig()
    graph.update(
        weighting=weighting,
        gradnorm_alpha=weighting_config.gradnorm_alpha,
        gradnorm_learning_rate=weighting_config.gradnorm_learning_rate,
    )
    auxiliary = auxiliary or AuxTrainingConfig()
    # The new model keeps the built model's dtype policy, which `compile` reads (mixed_float16:
    # a LossScaleOptimizer); its layers are the built model's, already in their precision.
    with dtype_policy(model.dtype_policy):
        return _loop_model(graph, loop, config, batch_size, auxiliary)


def _loop_model(
    graph: dict, loop: str, config: AdversarialConfig, batch_size: int, auxiliary
) -> AuxModel:
    if loop in ("standard", "random_sign"):
        return AuxModel(**graph)
    if loop == "corruption_augment":
        return CorruptionAugmentModel(**graph, corruptions=auxiliary.corruptions)
    if loop.startswith("auxiliary"):
        return AuxiliaryTrainingModel(
            **graph,
            penalty=auxiliary.penalty,
            distill=loop != "auxiliary_no_distill",
            merge=loop != "auxiliary_no_merge",
            adversarial_eps=config.eps if loop == "auxiliary_pgd" else None,
            adversarial_steps=config.pgd_steps,
        )
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


def loop_callbacks(
    loop: str,
    config: AdversarialConfig,
    guard_batch: Callable,
    auxiliary: AuxTrainingConfig | None = None,
    epochs: int = 1,
) -> list:
    """The ε/m schedule of `free_scheduled`, the overfitting guard of single-step loops, the
    stage switch of Auxiliary Training (γ: 0 → 1 at `auxiliary.stage_two_epoch(epochs)`).

    `guard_batch()` returns the guard's fixed training batch; it is called only when a guard is
    used, because reading the training pipeline advances its shuffling and augmentation seeds.
    """
    callbacks = []
    if loop.startswith("auxiliary"):
        callbacks.append(MergeStage((auxiliary or AuxTrainingConfig()).stage_two_epoch(epochs)))
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
