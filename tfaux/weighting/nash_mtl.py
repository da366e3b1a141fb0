"""Nash-MTL (Navon et al., ICML 2022): the update as the tasks' Nash bargaining solution."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting
from tfaux.weighting.solvers import host, nash_bargaining


@register_weighting
class NashMTL(GradientWeighting):
    """Weights α > 0 solving the bargaining equations α_i·(Kα)_i = 1 (K = G·Gᵀ): the update
    d = Σ α_i·g_i maximizes Σ log(g_i·d) on a ball, is invariant to each task's loss scale, and
    ‖d‖ = √T. As in the reference (AvivNavon/nash-mtl, methods/weight_methods.py), d is then
    clipped to norm `nash_max_norm` (0: no clip), the weights start at 1, each step starts from
    the previous step's α, and where the equations have no solution (conflicting gradients that
    admit no agreement) the previous α is kept. The reference approximates the solution by up to
    20 cvxpy problems; here damped Newton steps on the convex f(α) = ½αᵀKα − Σ log α_i reach it
    (`solvers.nash_bargaining`). α is a model weight, so a resumed run keeps it.

    Args:
        nash_max_norm: the norm d is clipped to (the reference's 1.0), or 0 for none.

    Reference:
        Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya, "Multi-Task Learning as a
        Bargaining Game", ICML 2022.
    """

    name = "nash_mtl"
    settings = ("nash_max_norm",)

    def __init__(self, model, lambdas, nash_max_norm: float = 1.0):
        if not nash_max_norm >= 0:
            raise ValueError(f"Expected nash_max_norm >= 0. Received: {nash_max_norm}")
        super().__init__(model, lambdas)
        self.max_norm = float(nash_max_norm)
        self.alpha = model.add_weight(
            shape=(len(self.names),),
            initializer="ones",
            trainable=False,
            aggregation="mean",
            name="nash_mtl_alpha",
        )

    def combine(self, gram, losses, seed):
        weights, alpha = nash_mtl_weights(gram, self.alpha, self.max_norm)
        self.alpha.assign(tf.cast(alpha, self.alpha.dtype))
        return weights

    def get_config(self):
        return {"nash_max_norm": self.max_norm}


def nash_mtl_weights(gram: tf.Tensor, previous, max_norm: float = 1.0):
    """(the weights applied, α to start the next step from): α solving the bargaining equations
    from `previous` (kept where they have no solution, or the gradients are not finite), times
    the clip of ‖Σ α_i·g_i‖ to `max_norm` (0: none)."""
    gram = tf.cast(gram, tf.float64)
    previous = tf.cast(tf.convert_to_tensor(previous), tf.float64)
    alpha = host(nash_bargaining, gram, previous, size=gram.shape[0])
    kept = tf.where(tf.reduce_all(tf.math.is_finite(alpha)), alpha, previous)
    if not max_norm:
        return alpha, kept
    norm = tf.sqrt(tf.maximum(tf.tensordot(alpha, tf.linalg.matvec(gram, alpha), 1), 0.0))
    return alpha * tf.minimum(tf.constant(1.0, tf.float64), max_norm / (norm + 1e-6)), kept
