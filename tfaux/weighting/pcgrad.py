"""PCGrad (Yu et al., NeurIPS 2020): each gradient projected off the others it conflicts with."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting


@register_weighting
class PCGrad(GradientWeighting):
    """Gradient surgery: every row g_i, in a random order of the rows, loses its component along
    each original row g_j it has a negative inner product with; the update is the sum of the
    projected rows. LibMTL's rule (median-research-group/LibMTL, weighting/PCGrad.py): the order
    includes j = i, the projection divides by ‖g_j‖² + 1e-8, a fresh order per row and step.

    Worked in the Gram matrix's coordinates: a projected row is a combination of the original
    rows, so each inner product is a row of G·Gᵀ and the weights are exact without touching the
    gradients themselves.

    Reference:
        Yu, Kumar, Gupta, Levine, Hausman, Finn, "Gradient Surgery for Multi-Task Learning",
        NeurIPS 2020.
    """

    name = "pcgrad"

    def combine(self, gram, losses, seed):
        terms = gram.shape[0]
        orders = tf.argsort(tf.random.stateless_uniform([terms, terms], seed), axis=1)
        return pcgrad_weights(gram, orders)


def pcgrad_weights(gram: tf.Tensor, orders: tf.Tensor) -> tf.Tensor:
    """The weights w with Σ_i PC(g_i) = Σ_j w_j·g_j, the rows projected in `orders` (T, T):
    row i against the original rows orders[i, 0], orders[i, 1], ..."""
    terms = gram.shape[0]
    gram = tf.cast(gram, tf.float64)
    squared = tf.linalg.diag_part(gram) + 1e-8
    weights = tf.ones([terms], tf.float64)
    for i in range(terms):
        coefficients = tf.one_hot(i, terms, dtype=tf.float64)  # PC(g_i) = coefficients · G
        for position in range(terms):
            j = orders[i, position]
            dot = tf.tensordot(coefficients, tf.gather(gram, j, axis=1), 1)
            step = tf.where(dot < 0, dot / tf.gather(squared, j), tf.zeros([], tf.float64))
            change = step * tf.one_hot(j, terms, dtype=tf.float64)
            coefficients -= change
            weights -= change
    return weights
