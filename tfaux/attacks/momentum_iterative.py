"""MIM, the momentum iterative method (MI-FGSM), L∞ or L2, as a graph loop on cleverhans' helpers.

cleverhans' `momentum_iterative_method` is a Python loop, so a graph holds `steps` copies of the
model and a new step count retraces; ours is the same step in a `tf.while_loop` (tests compare
both to 1e-5), with ε, α, k and the decay μ as tensors.

Reference: Dong et al., "Boosting adversarial attacks with momentum", 2018.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from cleverhans.tf2.utils import clip_eta, compute_gradient, optimize_linear

from tfaux.attacks.gradient import GradientAttack
from tfaux.attacks.protocol import register_attack
from tfaux.attacks.threat_model import NORMS, clip


@register_attack
class MIM(GradientAttack):
    """MI-FGSM from the clean image: k steps along the accumulated, normalized gradient.

    Args:
        model: a Keras classifier or an `AttackedModel`.
        norm: "linf" or "l2" (seed 001's Table 8 runs both).
        steps: iterations k.
        step_size: α per step; default ε/k.
        decay: the momentum decay μ.
    """

    name = "mim"
    kind = "mim"

    def __init__(
        self,
        model,
        *,
        norm: str = "linf",
        steps: int = 10,
        step_size: float | None = None,
        decay: float = 1.0,
    ):
        super().__init__(model, norm=norm, steps=steps, step_size=step_size)
        self.decay = decay

    def get_config(self) -> dict:
        return {**super().get_config(), "decay": self.decay}

    @staticmethod
    def graph(model_fn, norm):
        def momentum_iterative(x, y, p):
            return mim(
                model_fn, x, y, eps=p["eps"], step_size=p["alpha"], steps=p["steps"],
                decay=p["decay"], norm=norm,
            )  # fmt: skip

        return momentum_iterative


def mim(
    model_fn: Callable[[tf.Tensor], tf.Tensor],
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    step_size,
    steps,
    decay=1.0,
    norm: str = "linf",
) -> tf.Tensor:
    """The momentum iterative method (MI-FGSM; L∞ or L2) as a graph loop: cleverhans'
    `momentum_iterative_method` step for step, on its own helpers (the gradient is normalized
    by its mean |g| under either norm, as cleverhans does; the step and the projection follow
    `norm`).

    Args:
        model_fn: x → logits.
        x, y: clean images in [0, 1] and their true labels.
        eps, step_size, steps: budget, α and k (Python numbers or scalar tensors).
        decay: the momentum decay μ.
        norm: "linf" or "l2": the step's direction (sign, or the L2-normalized momentum) and
            the projection.

    Reference:
        Dong et al., "Boosting adversarial attacks with momentum", 2018.
    """
    eps, order = tf.cast(eps, x.dtype), NORMS[norm]

    def step(i, momentum, x_adv):
        grad = compute_gradient(
            model_fn, tf.nn.sparse_softmax_cross_entropy_with_logits, x_adv, y, targeted=False
        )
        # Each gradient normalized by its mean |g| per example, then accumulated with decay μ.
        axes = list(range(1, len(grad.shape)))
        grad /= tf.maximum(tf.cast(1e-12, grad.dtype), tf.reduce_mean(tf.abs(grad), axes, True))
        momentum = decay * momentum + grad
        x_adv = x_adv + optimize_linear(momentum, step_size, order)
        return i + 1, momentum, clip(x + clip_eta(x_adv - x, order, eps))

    loop = (tf.constant(0), tf.zeros_like(x), x)
    _, _, x_adv = tf.while_loop(lambda i, *_: i < steps, step, loop)
    return tf.stop_gradient(x_adv)
