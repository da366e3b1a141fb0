"""CAGrad (Liu et al., NeurIPS 2021): the update that best improves the worst task near the mean."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting
from tfaux.weighting.solvers import cagrad_dual, host

RESCALES = {0: lambda c: 1.0, 1: lambda c: 1.0 + c**2, 2: lambda c: 1.0 + c}


@register_weighting
class CAGrad(GradientWeighting):
    """Conflict-averse gradient descent: d maximizes min_i g_i·d within the ball
    ‖d − g_0‖ ≤ c·‖g_0‖ around the mean gradient g_0 (c = 0: the mean gradient itself). Solved by
    its dual over the simplex (`solvers.cagrad_dual`): with w the dual weights and g_w = Σ w_i·g_i,
    d = g_0 + c'/‖g_w‖·g_w, divided by 1, 1 + c² or 1 + c (`cagrad_rescale` 0, 1, 2), as LibMTL
    (weighting/CAGrad.py; its default c = 0.5, rescale 1; not multiplied by T as the authors'
    training scripts are).

    Args:
        cagrad_c: c, the radius of the ball relative to ‖g_0‖.
        cagrad_rescale: 0, 1 or 2 (see above).

    Reference:
        Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
        NeurIPS 2021.
    """

    name = "cagrad"
    settings = ("cagrad_c", "cagrad_rescale")

    def __init__(self, model, lambdas, cagrad_c: float = 0.5, cagrad_rescale: int = 1):
        if not cagrad_c >= 0 or cagrad_rescale not in RESCALES:
            raise ValueError(
                "Expected cagrad_c >= 0 and cagrad_rescale in (0, 1, 2). Received: "
                f"cagrad_c={cagrad_c}, cagrad_rescale={cagrad_rescale}"
            )
        super().__init__(model, lambdas)
        self.c, self.rescale = float(cagrad_c), int(cagrad_rescale)

    def combine(self, gram, losses, seed):
        return cagrad_weights(gram, self.c, self.rescale)

    def get_config(self):
        return {"cagrad_c": self.c, "cagrad_rescale": self.rescale}


def cagrad_weights(gram: tf.Tensor, c: float, rescale: int = 1) -> tf.Tensor:
    """1/T + c'/‖g_w‖·w (w the dual weights), rescaled."""
    gram = tf.cast(gram, tf.float64)
    terms = gram.shape[0]
    dual = host(lambda k: cagrad_dual(k, c), gram, size=terms)
    radius = c * tf.sqrt(tf.reduce_mean(gram) + 1e-8) + 1e-8
    norm = tf.sqrt(tf.maximum(tf.tensordot(dual, tf.linalg.matvec(gram, dual), 1), 0.0))
    weights = 1.0 / terms + radius / (norm + 1e-8) * dual
    return weights / RESCALES[rescale](c)
