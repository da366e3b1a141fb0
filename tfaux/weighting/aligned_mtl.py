"""Aligned-MTL (Senushkin et al., CVPR 2023): the gradients' system made well-conditioned."""

import numpy as np
import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting

_FLOAT32_EPS = float(np.finfo(np.float32).eps)  # the reference's torch.finfo() default


@register_weighting
class AlignedMTL(GradientWeighting):
    """Aligns the principal components of the gradient matrix: with G·Gᵀ = V·Λ·Vᵀ (eigenvalues
    above max(Λ)·T·ε₃₂ kept), B = √λ_min·V·Λ^{-1/2}·Vᵀ and the weights are B's column sums, so the
    combined update has a condition number of 1 and the scale of the smallest kept component
    (LibMTL, weighting/Aligned_MTL.py, = SamsungLabs/MTL; not divided by T). All-zero rows give
    zero weights (the reference fails there).

    Reference:
        Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component Alignment for
        Multi-Task Learning", CVPR 2023.
    """

    name = "aligned_mtl"

    def combine(self, gram, losses, seed):
        return aligned_mtl_weights(gram)


def aligned_mtl_weights(gram: tf.Tensor) -> tf.Tensor:
    """The column sums of B = √λ_min·V·Λ^{-1/2}·Vᵀ over the kept eigenpairs of the Gram matrix."""
    gram = tf.cast(gram, tf.float64)
    values, vectors = tf.linalg.eigh(gram)
    tolerance = tf.reduce_max(values) * gram.shape[0] * _FLOAT32_EPS
    kept = values > tolerance
    smallest = tf.reduce_min(tf.where(kept, values, tf.reduce_max(values)))
    inverse_roots = tf.where(kept, tf.math.rsqrt(tf.where(kept, values, 1.0)), 0.0)
    balance = tf.sqrt(tf.maximum(smallest, 0.0)) * tf.matmul(
        vectors * inverse_roots[None, :], vectors, transpose_b=True
    )
    return tf.where(tf.reduce_any(kept), tf.reduce_sum(balance, axis=0), 0.0)
