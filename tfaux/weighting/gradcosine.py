"""GradCosine (Du et al., 2018): an aux gradient is used only when it points with the primary's."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting


@register_weighting
class GradCosine(GradientWeighting):
    """The update is g_0 + Σ_i [cos(g_0, g_i) > 0]·g_i: an aux row whose cosine with the
    primary's gradient is not positive (orthogonal, opposed, or zero) is left out of the shared
    weights' step for that batch; its head still trains. The unweighted rule of Du et al.'s
    Algorithm 1, as AuxiLearn implements it (AvivNavon/AuxiLearn, experiments/weight_methods.py:
    strict > 0, each norm floored at 1e-8).

    Reference:
        Du, Czarnecki, Jayakumar, Farajtabar, Pascanu, Lakshminarayanan, "Adapting Auxiliary
        Losses Using Gradient Similarity", arXiv:1812.02224, 2018.
    """

    name = "gradcosine"

    def combine(self, gram, losses, seed):
        return gradcosine_weights(gram)


def gradcosine_weights(gram: tf.Tensor) -> tf.Tensor:
    """1 for the primary and for each aux row with a positive cosine to it, else 0."""
    gram = tf.cast(gram, tf.float64)
    norms = tf.maximum(tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0)), 1e-8)
    cosines = gram[0, 1:] / (norms[0] * norms[1:])
    return tf.concat([[1.0], tf.cast(cosines > 0, tf.float64)], axis=0)
