"""MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the gradients' convex hull."""

import tensorflow as tf

from tfaux.config import MGDA_NORMALIZATIONS
from tfaux.weighting import GradientWeighting, register_weighting
from tfaux.weighting.solvers import host, min_norm_weights


@register_weighting
class MGDA(GradientWeighting):
    """Multiple-gradient descent: each row is divided by its normalization n_i ("none": 1,
    "l2": ‖g_i‖, "loss": L_i, "loss+": L_i·‖g_i‖, LibMTL's `mgda_gn`), the weights s on the
    simplex minimize ‖Σ s_i·g_i/n_i‖, and the update is Σ (s_i/n_i)·g_i: a direction that no
    task's loss increases along, to first order. The min-norm point is solved exactly on the
    host (`solvers.min_norm_weights`); LibMTL's Frank-Wolfe solver stops up to ~1e-2 short of
    it for three or more tasks.

    Args:
        mgda_normalization: one of "none", "l2", "loss", "loss+".

    Reference:
        Sener, Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
    """

    name = "mgda"
    settings = ("mgda_normalization",)

    def __init__(self, model, lambdas, mgda_normalization: str = "none"):
        if mgda_normalization not in MGDA_NORMALIZATIONS:
            raise ValueError(
                f"Expected mgda_normalization in {MGDA_NORMALIZATIONS}. "
                f"Received: mgda_normalization={mgda_normalization!r}"
            )
        super().__init__(model, lambdas)
        self.normalization = mgda_normalization

    def combine(self, gram, losses, seed):
        return mgda_weights(gram, losses, self.normalization)


def mgda_weights(gram: tf.Tensor, losses: tf.Tensor, normalization: str = "none") -> tf.Tensor:
    """s_i/n_i, with s the min-norm point of the normalized rows g_i/n_i."""
    gram = tf.cast(gram, tf.float64)
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
    losses = tf.cast(losses, tf.float64)
    scale = {
        "none": tf.ones_like(norms),
        "l2": norms,
        "loss": losses,
        "loss+": losses * norms,
    }[normalization]
    normalized = gram / (scale[:, None] * scale[None, :])
    return host(min_norm_weights, normalized, size=gram.shape[0]) / scale
