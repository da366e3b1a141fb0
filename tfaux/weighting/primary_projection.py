"""PCGrad for auxiliary learning: only aux gradients that conflict with the primary's are
projected, and the primary's gradient is never altered."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting


@register_weighting
class PrimaryProjection(GradientWeighting):
    """Each aux row g_i with g_i·g_0 < 0 loses its component along the primary's g_0 (onto the
    normal plane of g_0, dividing by ‖g_0‖² + 1e-8 as PCGrad does); aux rows are not projected
    against each other, and g_0 is never changed. The update is g_0 plus the (projected) aux
    rows: no aux step ever points against the primary's gradient, and where none conflicts it
    is fixed λ's update. Written from PCGrad's rule (Yu et al., NeurIPS 2020) restricted to the
    one task that matters in auxiliary learning; no reference code exists.
    """

    name = "primary_projection"

    def combine(self, gram, losses, seed):
        return primary_projection_weights(gram)


def primary_projection_weights(gram: tf.Tensor) -> tf.Tensor:
    """1 for every aux row; 1 minus the projections taken off the aux rows for the primary."""
    gram = tf.cast(gram, tf.float64)
    conflicts = tf.minimum(gram[0, 1:], 0.0) / (gram[0, 0] + 1e-8)
    return tf.concat([[1.0 - tf.reduce_sum(conflicts)], tf.ones_like(conflicts)], axis=0)
