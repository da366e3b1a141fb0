"""`AdversarialModel`: FGSM and PGD adversarial training (Goodfellow; Madry; Wong et al.).

Only `perturb` differs from `AuxModel`: the weights are trained on a single-task attack of the
primary logits (true labels, BatchNorm in inference mode while attacking, so crafting does not
move the moving statistics), optionally keeping a fraction of each batch clean. Aux targets are
still computed from the clean images, so "FT + adversarial training" (seed 000) is one recipe.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfaux.attacks import check_eps, logits_fn, pgd
from tfaux.data.pipeline import labels_of
from tfaux.models.aux_model import AuxModel, replica_id
from tfaux.training.loop import Loop, register_loop

ATTACKS = ("fgsm", "pgd")


@keras.saving.register_keras_serializable(package="tfaux")
class AdversarialModel(AuxModel):
    """An `AuxModel` trained on adversarial examples of its own primary classifier.

    Args:
        *args, **kwargs: `AuxModel` arguments (inputs, outputs, tasks, name).
        attack: "fgsm" (one step) or "pgd" (Madry et al.).
        eps: L∞ training budget in pixel units.
        steps: PGD steps (FGSM: 1).
        step_size: α; default ε for FGSM, 1.25·ε for FGSM with a random start ("fast is better
            than free"), 2.5·ε/steps for PGD.
        random_start: start uniformly inside the ε-ball (PGD default, FGSM-RS).
        clean_fraction: fraction of every batch left clean (Kurakin et al.'s mixed batches).
    """

    LOOP_PARAMS = ("attack", "eps", "steps", "step_size", "random_start", "clean_fraction")

    def __init__(
        self,
        *args,
        attack: str = "pgd",
        eps: float = 0.1,
        steps: int = 7,
        step_size: float | None = None,
        random_start: bool = True,
        clean_fraction: float = 0.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if attack not in ATTACKS:
            raise ValueError(f"Expected attack in {ATTACKS}. Received: attack={attack!r}")
        check_eps(eps)
        steps = 1 if attack == "fgsm" else steps
        if steps < 1:
            raise ValueError(f"Expected steps >= 1. Received: steps={steps}")
        if not 0.0 <= clean_fraction < 1.0:
            raise ValueError(
                f"Expected 0 <= clean_fraction < 1. Received: clean_fraction={clean_fraction}"
            )
        if step_size is None:
            step_size = (
                (1.25 * eps if random_start else eps) if attack == "fgsm" else 2.5 * eps / steps
            )
        self.attack, self.eps, self.steps = attack, float(eps), int(steps)
        self.step_size, self.random_start = float(step_size), bool(random_start)
        self.clean_fraction = float(clean_fraction)

    def perturb(self, x, y):
        return adversarial_examples(
            self,
            x,
            labels_of(y),
            eps=self.eps,
            step_size=self.step_size,
            steps=self.steps,
            random_start=self.random_start,
            clean_fraction=self.clean_fraction,
        )


def adversarial_examples(
    model: keras.Model,
    x: tf.Tensor,
    labels: tf.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    clean_fraction: float = 0.0,
    start: tf.Tensor | None = None,
) -> tf.Tensor:
    """PGD (FGSM for one step) on `model`'s primary logits, inside a train step.

    The random start is fresh every step and replica, and reproducible; a given `start` replaces
    it (MART's Gaussian one); the first `clean_fraction` of the batch stays clean.
    """
    seed = tf.stack([tf.cast(model.optimizer.iterations, tf.int32), replica_id()])
    x_adv = pgd(
        logits_fn(model),
        x,
        labels,
        eps=eps,
        step_size=step_size,
        steps=steps,
        random_start=random_start,
        seed=seed,
        start=start,
    )
    if clean_fraction:
        clean = tf.cast(tf.round(clean_fraction * tf.cast(tf.shape(x)[0], tf.float32)), tf.int32)
        keep = tf.reshape(tf.range(tf.shape(x)[0]) < clean, [-1, 1, 1, 1])
        x_adv = tf.where(keep, x, x_adv)
    return x_adv


@register_loop
class PGDLoop(Loop):
    """ "@pgd": Madry et al.'s PGD adversarial training, `adversarial.pgd_steps` steps,
    α = 2.5ε/steps, a random start."""

    name = "pgd"
    model_class = AdversarialModel
    trains_at_eps = True
    selection = "best_robust"

    def model_options(self, batch_size: int) -> dict:
        config = self.recipe.adversarial
        return {
            "attack": "pgd",
            "eps": config.eps,
            "steps": config.pgd_steps,
            "clean_fraction": config.clean_fraction,
        }

    def passes_per_step(self, tasks=()) -> int:
        return self.recipe.adversarial.pgd_steps + 1


@register_loop
class FGSMLoop(PGDLoop):
    """ "@fgsm": Goodfellow et al.'s FGSM adversarial training from the clean image, α = ε."""

    name = "fgsm"
    single_step = True
    random_start = False

    def model_options(self, batch_size: int) -> dict:
        options = super().model_options(batch_size)
        return {**options, "attack": "fgsm", "random_start": self.random_start}

    def passes_per_step(self, tasks=()) -> int:
        return 2


@register_loop
class FGSMRandomStartLoop(FGSMLoop):
    """ "@fgsm_rs": FGSM from a uniform random start in the ε-ball, α = 1.25ε (Wong et al.,
    "Fast is better than free")."""

    name = "fgsm_rs"
    random_start = True
