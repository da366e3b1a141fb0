"""IMTL-G (Liu et al., ICLR 2021): the update whose projections on every unit gradient are equal."""

import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting


@register_weighting
class IMTLG(GradientWeighting):
    """Impartial multi-task learning, gradient part: weights α summing to 1 with
    d = Σ α_i·g_i and d·u_0 = d·u_i for every unit gradient u_i = g_i/‖g_i‖, from the closed form
    α_{1:} = (g_0·Uᵀ)(D·Uᵀ)⁻¹, D = g_0 − g_{1:}, U = u_0 − u_{1:} (LibMTL, weighting/IMTL.py),
    written in the Gram matrix's coordinates. Two deliberate differences: a zero row has u = 0
    (LibMTL divides by its norm and gets NaN), and the inverse is a pseudo-inverse, so parallel
    gradients (a singular D·Uᵀ, where LibMTL fails) get the least-norm α: for two rows pointing
    the same way, the primary's gradient alone.

    Reference:
        Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial Multi-Task Learning",
        ICLR 2021.
    """

    name = "imtl_g"

    def combine(self, gram, losses, seed):
        return imtl_g_weights(gram)


def imtl_g_weights(gram: tf.Tensor) -> tf.Tensor:
    """IMTL-G's α (summing to 1) from the Gram matrix."""
    gram = tf.cast(gram, tf.float64)
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
    projections = gram * tf.math.divide_no_nan(tf.ones_like(norms), norms)[None, :]  # g_i·u_k
    differences = projections[:, :1] - projections[:, 1:]  # g_i·(u_0 − u_k), k ≥ 1
    along = differences[0]  # g_0·Uᵀ
    matrix = differences[:1] - differences[1:]  # D·Uᵀ
    alpha = tf.linalg.matvec(tf.linalg.pinv(matrix), along, transpose_a=True)
    return tf.concat([[1.0 - tf.reduce_sum(alpha)], alpha], axis=0)
