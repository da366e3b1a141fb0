"""Training-loop registry: a loop is one `Loop` class, found by name like a backbone.

A variant selects a loop with "@<name>" ("fourier@pgd"). The loop's hooks turn the recipe into
what training needs: the model class whose `train_step` implements it (the built model's graph,
same layers and weights, re-wrapped in it, so every backbone and aux head works with every loop),
the heads and norm layers it adds, its epochs and callbacks. Its declared properties are what
config validation and the tuner read, so no loop name is spelled outside its own module.

Adding a loop is one file in `tfaux/training/` (found by `list_loops`) or anywhere a recipe
imports:

    @register_loop
    class NoisyLoop(Loop):
        name = "noisy"
        model_class = NoisyModel
        def model_options(self, batch_size):
            return {"sigma": self.recipe.adversarial.eps}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras

from tfaux.data.pipeline import mirrors_keep_labels
from tfaux.models.layers import NormFactory, batch_norm
from tfaux.names import require
from tfaux.precision import dtype_policy
from tfaux.registry import Registry
from tfaux.variant import STANDARD, Variant
from tfaux.weighting import weighting_class

if TYPE_CHECKING:
    import numpy as np

    from tfaux.config import RandomSignConfig, Recipe
    from tfaux.training.callbacks import ModelSelection


class Loop:
    """Natural training; a loop subclass overrides the hooks it changes.

    Declared properties (class attributes), read by config validation and the tuner:
        name: what a variant writes after "@".
        model_class: the `AuxModel` subclass whose `train_step` implements the loop.
        trains_at_eps: it trains on perturbations of `adversarial.eps` (so `tuning.eps` may
            search it).
        replays: it replays each batch `adversarial.replays` times (`tuning.replays`).
        chunked_batch: its batch is [clean, T_1(x), …]: no augmentation, no two-view task.
        single_step: it trains on a one-step attack, which the catastrophic-overfitting guard
            watches (`adversarial.guard`).
        selection: the epoch its method evaluates ("best_clean", "best_robust": Rice et al.'s
            early stopping against robust overfitting, "last": a fixed schedule's end), unless
            `training.select` says otherwise.

    Args:
        recipe: the experiment; the hooks read their settings from it.
    """

    name: str = STANDARD
    model_class: type | None = None  # None: AuxModel
    trains_at_eps: bool = False
    replays: bool = False
    chunked_batch: bool = False
    single_step: bool = False
    selection: str = "best_clean"

    def __init__(self, recipe: Recipe):
        self.recipe = recipe

    def check_settings(self) -> None:
        """Refuses settings that would silently turn the method off (ε = 0, γ·m < 1, …), in one
        line; called when a recipe is built."""
        if self.trains_at_eps and self.recipe.adversarial.eps <= 0:
            raise ValueError(
                f"Expected adversarial.eps > 0 for the loop '@{self.name}' (ε = 0 trains on clean "
                f"images). Received: eps={self.recipe.adversarial.eps}"
            )

    @classmethod
    def model(cls) -> type:
        """The model class whose `train_step` implements the loop (`model_class` or `AuxModel`);
        what it declares (e.g. `fixed_loss_weights`) holds for the loop too."""
        from tfaux.models.aux_model import AuxModel

        return cls.model_class or AuxModel

    @classmethod
    def check_variant(cls, variant: Variant, views: int) -> None:
        """Refuses a variant this loop cannot train, in one line: a chunked batch takes no
        augmentation and no two-view task (`views`: the most views a task of it takes); an
        objective with fixed weights takes no learned weighting."""
        if cls.chunked_batch:
            require(
                variant.augmentation is None and views < 2,
                f"no augmentation and no two-view task with the loop '@{cls.name}' (its batch is "
                "already [clean, T_1(x), …])",
                variant=variant.text,
            )
        require(
            cls.model().accepts_weighting(weighting_class(variant.weighting)),
            f"fixed loss weights with the loop '@{cls.name}' (its objective fixes them), not "
            f"'~{variant.weighting}'",
            variant=variant.text,
        )

    # === Model ===
    def model_options(self, batch_size: int) -> dict:
        """Constructor arguments of `model_class` beyond the graph (`batch_size`: global)."""
        return {}

    def tasks(self, num_classes: int) -> list:
        """Heads the loop adds to the variant's aux tasks (Auxiliary Training's classifiers)."""
        return []

    def norm(self, momentum: float, synchronized: bool) -> NormFactory:
        """The backbone's norm layers (Selective BatchNorm for Auxiliary Training)."""
        return batch_norm(momentum, synchronized=synchronized)

    def random_sign(self) -> RandomSignConfig | None:
        """Random-sign layers to put into the backbone (seed 003's R-models), or None."""
        return None

    def check(self, input_shape: tuple[int, int, int]) -> None:
        """Checks the settings that need the data (layer names): before any training."""

    def wrap(self, model: keras.Model, *, augmentation=None, weighting="fixed") -> keras.Model:
        """`model`'s graph in `model_class` (call inside the strategy scope).

        `augmentation` (an in-graph augmentation, two-view tasks) and `weighting` (a name from
        `tfaux.weighting`) come from the variant; the weighting's settings and what aux targets
        are computed from (`adversarial.aux_targets`) from the recipe; the flip rule from the
        dataset.
        """

        recipe = self.recipe
        options = {
            "inputs": model.input,
            "outputs": model.output,
            "tasks": model.tasks,
            "name": model.name,
            "augmentation": augmentation,
            "flip": mirrors_keep_labels(recipe.data.dataset, recipe.data.flip),
            "weighting": weighting,
            "weighting_options": dataclasses.asdict(recipe.weighting),
            "aux_targets": recipe.adversarial.aux_targets,
            **self.model_options(recipe.data.batch_size),
        }
        # The new model keeps the built model's dtype policy, which `compile` reads (mixed_float16:
        # a LossScaleOptimizer); its layers are the built model's, already in their precision.
        with dtype_policy(model.dtype_policy):
            return self.model()(**options)

    # === Training ===
    def epochs(self, epochs: int) -> int:
        """Epochs to train for `epochs` epochs' worth of optimizer steps (Free-AT: ÷ m)."""
        return epochs

    def callbacks(self, epochs: int) -> list[keras.callbacks.Callback]:
        """The loop's own callbacks: schedules and stage switches, which set this epoch's state
        when it begins and log it when it ends."""
        return []

    def guards(
        self, guard_batch: Callable, selection: ModelSelection | None = None
    ) -> list[keras.callbacks.Callback]:
        """For single-step loops, the catastrophic-overfitting guard. `guard_batch()` returns its
        fixed training batch; it is called only when a guard is used (reading the pipeline
        advances its seeds). `selection`, the fit's model selection, is told of a rollback, so
        it never restores a discarded epoch."""
        from tfaux.training.callbacks import CatastrophicOverfittingGuard

        config = self.recipe.adversarial
        if not self.single_step or config.guard == "off":
            return []
        x, y = guard_batch()
        guard = CatastrophicOverfittingGuard(
            x, y, eps=config.eps, action=config.guard, selection=selection
        )
        return [guard]

    def results(
        self,
        history: dict[str, list],
        *,
        steps_per_epoch: int,
        optimizer_steps: int,
        learning_rates: Callable[[int, int], np.ndarray],
    ) -> dict:
        """Entries the loop adds to the variant's results after training (Auxiliary Training's
        "merging"), from the fit's epoch logs; none by default.

        Args:
            history: every epoch's logs, those before a resume included.
            steps_per_epoch: optimizer steps per epoch.
            optimizer_steps: the steps the fit took.
            learning_rates: `learning_rates(start, stop)`, the rate of each step in
                [start, stop), evaluated only when asked (a long run has many steps).
        """
        return {}

    def passes_per_step(self, tasks: Sequence[str] = ()) -> int:
        """Forward-backward passes over a batch-sized input per optimizer step (the budget):
        attack steps count one each, like the weights' pass; the aux heads ride on the same
        passes. `tasks`: the variant's aux-task names (Free-AT's δ takes a backward pass of its
        own when there are any)."""
        return 1


LOOPS: Registry[type[Loop]] = Registry("training loop", packages=("tfaux.training.loops",))


def register_loop(cls: type[Loop]) -> type[Loop]:
    """Class decorator: makes a `Loop` subclass selectable as "@<cls.name>"."""
    return LOOPS.register(cls)


def list_loops() -> list[str]:
    """Names of the registered training loops, sorted."""
    return LOOPS.names()


def loop_class(name: str) -> type[Loop]:
    """The class registered as `name`; an unknown name suggests the closest."""
    return LOOPS.get(name)


def create_loop(name: str, recipe: Recipe) -> Loop:
    """The loop `name` set up from `recipe`."""
    return loop_class(name)(recipe)


register_loop(Loop)
