"""TRADES (Zhang et al. 2019): clean cross-entropy plus β·KL(p(x) ‖ p(x′)), x′ maximizing the KL.

The inner attack is PGD on the KL term, not on the cross-entropy: it needs no labels, and it
measures how far the prediction can be moved from the clean one. It starts at x + 0.001·N(0, I)
(at x itself the KL and its gradient are zero, so a sign step would not move), takes L∞ sign
steps, projects to the ε-ball and [0, 1], and runs with BatchNorm in inference mode. The weight
update sees the official code's three training-mode passes in its order: x (the CE, and the aux
heads and their targets), x′, then x again (the KL's p(x)). Each moves BatchNorm's moving
statistics, so the order and the count matter to the model that is evaluated.

No TensorFlow implementation exists (cleverhans has none): this follows the paper's Algorithm 1
and the official PyTorch code (yaodongyu/TRADES, trades.py).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.utils import clip_eta

from tfaux.attacks import CLIP_MAX, CLIP_MIN, check_eps, logits_fn
from tfaux.models.aux_model import PRIMARY, AuxModel, step_seed
from tfaux.training.loop import Loop, register_loop

ADVERSARIAL = "adversarial_logits"  # an extra output of `train_outputs`: logits on x′
CLEAN_AGAIN = "clean_logits_again"  # and the logits of its third pass, on x again
START_STD = 0.001  # σ of the Gaussian start around x (official code)


# === Loss ===
def kl_divergence(p_logits, q_logits) -> tf.Tensor:
    """Per-example KL(softmax(p_logits) ‖ softmax(q_logits)), from log-softmaxes: no log(0), and
    a zero probability contributes 0 like PyTorch's `KLDivLoss`."""
    log_p = tf.nn.log_softmax(tf.cast(p_logits, tf.float32))
    log_q = tf.nn.log_softmax(tf.cast(q_logits, tf.float32))
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def trades_loss(clean_logits, adversarial_logits, labels, beta: float) -> tf.Tensor:
    """The TRADES objective on one batch: mean_i CE(f(x_i), y_i) + β·mean_i KL(p(x_i) ‖ p(x′_i)).

    Gradients flow through both distributions (the official code detaches neither).

    Reference:
        Zhang et al., "Theoretically principled trade-off between robustness and accuracy",
        ICML 2019 (the objective of Algorithm 1).
    """
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(labels, tf.int32), tf.cast(clean_logits, tf.float32)
    )
    robust = kl_divergence(clean_logits, adversarial_logits)
    return tf.reduce_mean(cross_entropy) + beta * tf.reduce_mean(robust)


class KLDivergenceFromLogits(keras.losses.Loss):
    """`kl_divergence` as a Keras loss: `y_true` and `y_pred` are logits; the batch mean is
    divided by the replica count like every `keras.losses` term (`keras.losses.KLDivergence`
    takes probabilities and clips them to [1e-7, 1], which would flatten the KL's gradient)."""

    def call(self, y_true, y_pred):
        return kl_divergence(y_true, y_pred)


# === Inner attack ===
def trades_examples(
    model: keras.Model,
    x: tf.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    seed: tf.Tensor | None = None,
    start: tf.Tensor | None = None,
) -> tf.Tensor:
    """x′ ≈ argmax_{‖x′ − x‖∞ ≤ ε} KL(p(x) ‖ p(x′)) by PGD on `model`'s primary logits.

    Each step is cleverhans' FGM step on the KL (sign of its gradient, α = `step_size`) followed
    by its `clip_eta` projection and clipping to [0, 1], like `tfaux.attacks.pgd` on the CE.

    Args:
        model: a dict-output model; attacked in inference mode.
        x: clean images in [0, 1].
        eps, step_size, steps: L∞ budget, α and the number of steps.
        seed: shape-[2] stateless seed of the Gaussian start.
        start: the first iterate instead of `gaussian_start(x, seed)` (tests make it
            deterministic); projected to the ball and [0, 1] like every iterate.
    """
    predict = logits_fn(model)
    clean = tf.stop_gradient(predict(x))
    if start is None:
        start = gaussian_start(x, tf.zeros([2], tf.int32) if seed is None else seed)
    x_adv = _project(start, x, eps)

    def step(i, x_adv):
        # `labels` carries the clean logits: cleverhans passes them to the loss as they are.
        x_adv = fast_gradient_method(
            predict, x_adv, step_size, np.inf, loss_fn=_kl_loss, clip_min=CLIP_MIN,
            clip_max=CLIP_MAX, y=clean,
        )  # fmt: skip
        return i + 1, _project(x_adv, x, eps)

    _, x_adv = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), x_adv))
    return tf.stop_gradient(x_adv)


def gaussian_start(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """x + 0.001·N(0, I), the first iterate of both official inner attacks (TRADES and MART):
    off x, where the KL and its gradient vanish, yet far closer to x than a uniform start."""
    return x + START_STD * tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)


def _kl_loss(labels, logits):
    return kl_divergence(labels, logits)


def _project(x_adv, x, eps):
    return tf.clip_by_value(x + clip_eta(x_adv - x, np.inf, eps), CLIP_MIN, CLIP_MAX)


# === Model ===
@keras.saving.register_keras_serializable(package="tfaux")
class TRADESModel(AuxModel):
    """An `AuxModel` trained with TRADES: CE on clean images plus β·KL(p(x) ‖ p(x′)).

    Loss = CE(f(x), y) + Σ_i λ_i·aux_i (clean outputs, `AuxModel`'s terms) + β·robust, with
    robust = mean KL(p(x) ‖ p(x′)) over the batch (p(x) from a second pass on x, as in the
    official code), divided by the replica count like every `keras.losses` term (gradients
    summed over replicas give the global-batch mean). Logged: `logits_loss` (clean CE),
    `robust_loss` (KL), `accuracy` on the clean images. Validation has no attack (like PGD-AT's):
    there x′ = x, so its `robust_loss` is 0.

    Args:
        *args, **kwargs: `AuxModel` arguments (inputs, outputs, tasks, name).
        eps: L∞ budget ε of the inner attack (paper: 0.031 on CIFAR-10, 0.3 on MNIST).
        steps: its PGD steps (paper: 10 on CIFAR-10, 40 on MNIST).
        step_size: its α; default 2.5·ε/steps, the PGD-AT rule (CIFAR-10: 0.00775 for the
            paper's 0.007; MNIST: 0.019 for its 0.01).
        beta: β, the weight of the robust term (paper: 6 on CIFAR-10, 1 on MNIST).

    Reference:
        Zhang et al., "Theoretically principled trade-off between robustness and accuracy",
        ICML 2019.
    """

    LOOP_PARAMS = ("eps", "steps", "step_size", "beta")
    fixed_loss_weights = True  # β fixes the trade-off; a learned weight on the CE would move it

    def __init__(
        self,
        *args,
        eps: float = 0.031,
        steps: int = 10,
        step_size: float | None = None,
        beta: float = 6.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.eps, self.steps, self.step_size, self.beta = check_attack_settings(
            eps, steps, step_size, beta
        )
        self._kl = KLDivergenceFromLogits(name="kl_divergence")
        self._trackers["robust_loss"] = keras.metrics.Mean(name="robust_loss")

    def perturb(self, x, y):
        return trades_examples(
            self, x, eps=self.eps, step_size=self.step_size, steps=self.steps, seed=step_seed(self)
        )

    def train_outputs(self, x, x_train):
        """Every head on the clean x, the primary logits on x′ under `ADVERSARIAL`, and on x
        again under `CLEAN_AGAIN`: yaodongyu/TRADES' `trades_loss` runs `model(x_natural)` for
        the CE, then `model(x_adv)` and `model(x_natural)` for the KL (Python evaluates the
        KL's arguments left to right), all in training mode."""
        outputs = self(x, training=True)
        adversarial = self(x_train, training=True)[PRIMARY]
        clean_again = self(x, training=True)[PRIMARY]
        return {**outputs, ADVERSARIAL: adversarial, CLEAN_AGAIN: clean_again}

    def loss_terms(self, x, y, outputs, originals=None):
        total, terms = super().loss_terms(x, y, outputs, originals)
        # The same value as the first pass's logits (batch statistics in both; dropout aside),
        # but the KL's gradient flows through the third pass, as in the official code.
        clean = outputs.get(CLEAN_AGAIN, outputs[PRIMARY])
        robust = self._kl(clean, outputs.get(ADVERSARIAL, clean))  # no attack: x′ = x
        total += self.beta * robust
        terms.update(robust=robust, loss=total)
        return total, terms


def check_attack_settings(eps, steps, step_size, beta) -> tuple[float, int, float, float]:
    """Validated (ε, steps, α, β) of TRADES and MART; α defaults to 2.5·ε/steps."""
    check_eps(eps)
    if steps < 1:
        raise ValueError(f"Expected steps >= 1. Received: steps={steps}")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    if not step_size >= 0:
        raise ValueError(f"Expected step_size >= 0. Received: step_size={step_size}")
    if not beta >= 0:
        raise ValueError(f"Expected beta >= 0. Received: beta={beta}")
    return float(eps), int(steps), float(step_size), float(beta)


@register_loop
class TRADESLoop(Loop):
    """The "@trades" loop: TRADES at ε = `adversarial.eps`, `adversarial.pgd_steps` KL-PGD
    steps (α = 2.5ε/steps), β = `adversarial.beta`."""

    name = "trades"
    model_class = TRADESModel
    trains_at_eps = True
    selection = "best_robust"

    def check_settings(self) -> None:
        super().check_settings()
        clean_fraction = self.recipe.adversarial.clean_fraction
        if clean_fraction:
            raise ValueError(
                f"Expected adversarial.clean_fraction = 0 for '@{self.name}' (its loss already "
                f"has a clean term). Received: clean_fraction={clean_fraction}"
            )
        if self.recipe.adversarial.beta <= 0:
            raise ValueError(
                f"Expected adversarial.beta > 0 for '@{self.name}' (β = 0 drops its robust term). "
                f"Received: beta={self.recipe.adversarial.beta}"
            )

    def model_options(self, batch_size: int) -> dict:
        config = self.recipe.adversarial
        return {"eps": config.eps, "steps": config.pgd_steps, "beta": config.beta}

    def passes_per_step(self, tasks=()) -> int:
        return self.recipe.adversarial.pgd_steps + 3  # the attack, then x, x′ and x again
