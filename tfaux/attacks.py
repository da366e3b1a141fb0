"""Compiled wrappers over cleverhans' TF2 attacks, always on the primary logits.

Every attack here is a *single-task* attack: it maximizes the cross-entropy of the `logits`
output only, with the true labels (model predictions as labels would let "label leaking" inflate
robust accuracy), BatchNorm in inference mode, and pixels clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method

CLIP_MIN, CLIP_MAX = 0.0, 1.0


def logits_fn(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """`x -> logits` in inference mode, for a dict-output or a plain classifier."""

    def fn(x):
        outputs = model(x, training=False)
        return outputs["logits"] if isinstance(outputs, dict) else outputs

    return fn


def check_eps(eps: float) -> float:
    """Validates an attack budget ε in pixel units of [0, 1] images."""
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"Expected 0 <= eps <= 1 (pixels are in [0, 1]). Received: eps={eps}")
    return float(eps)


def fgsm(model: keras.Model) -> Callable[[tf.Tensor, tf.Tensor, float], tf.Tensor]:
    """Returns a compiled L∞ FGSM attack `attack(x, y, eps) -> x_adv` on `model`'s logits.

    ε is a tensor argument, so one trace serves every budget of an accuracy-vs-ε sweep.

    Reference:
        Goodfellow et al., "Explaining and harnessing adversarial examples", 2015.
    """
    model_fn = logits_fn(model)

    @tf.function(reduce_retracing=True)
    def attack(x, y, eps):
        return fast_gradient_method(
            model_fn, x, eps, np.inf, clip_min=CLIP_MIN, clip_max=CLIP_MAX, y=y
        )

    def run(x, y, eps):
        return attack(x, y, tf.constant(check_eps(eps), tf.float32))

    return run
