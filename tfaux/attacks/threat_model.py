"""The threat model every attack shares: images in the pixel box [0, 1], a budget ε in pixel units
under an L∞ or L2 norm, checked one way, and uniform draws inside that ball.

One owner for the box (`CLIP_MIN`, `CLIP_MAX`, `clip`) and the norm table (`NORMS`): the attack
files read them from here instead of keeping copies.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

CLIP_MIN, CLIP_MAX = 0.0, 1.0
# Norm name → the order cleverhans' helpers take (`optimize_linear`, `clip_eta`).
NORMS = {"linf": np.inf, "l2": 2}


def clip(x):
    """Into the pixel box [0, 1]."""
    return tf.clip_by_value(x, CLIP_MIN, CLIP_MAX)


def check_eps(eps: float, norm: str = "linf") -> float:
    """Validates an attack budget ε in pixel units of [0, 1] images."""
    if norm == "linf" and not 0.0 <= eps <= 1.0:
        raise ValueError(f"Expected 0 <= eps <= 1 (pixels are in [0, 1]). Received: eps={eps}")
    if not eps >= 0.0:
        raise ValueError(f"Expected eps >= 0. Received: eps={eps}")
    return float(eps)


def random_in_ball(shape, norm: str, eps, seed) -> tf.Tensor:
    """A stateless uniform sample from the L∞ cube or the L2 ball of radius ε, per example."""
    if norm == "linf":
        return tf.random.stateless_uniform(shape, seed, -1.0, 1.0) * eps
    direction = tf.random.stateless_normal(shape, seed)
    axes = tf.range(1, tf.rank(direction))
    norms = tf.sqrt(tf.reduce_sum(tf.square(direction), axis=axes, keepdims=True))
    direction /= tf.maximum(norms, 1e-12)
    dims = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
    radius = tf.random.stateless_uniform(
        tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), seed + 1
    ) ** (1.0 / dims)
    return direction * radius * eps
