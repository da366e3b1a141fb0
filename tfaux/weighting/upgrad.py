"""UPGrad (Quinton & Rey, 2024): each gradient projected onto the dual cone, then averaged."""

import numpy as np
import tensorflow as tf

from tfaux.weighting import GradientWeighting, register_weighting
from tfaux.weighting.solvers import dual_cone_projection, host


@register_weighting
class UPGrad(GradientWeighting):
    """Unconflicting projection of gradients: each row g_i/T is projected onto the dual cone of
    the rows (the directions with a non-negative inner product with every g_j), and the update
    is the sum of the projections, so no term's loss increases along it, to first order. In
    the weights' coordinates, as TorchJD (src/torchjd/aggregation/_upgrad.py, its default mean
    preference): K = G·Gᵀ / trace (0 below a trace of 1e-4) + 1e-4·I, v_i = argmin vᵀKv s.t.
    v ≥ e_i/T, w = Σ_i v_i. The small QPs are solved exactly on the host
    (`solvers.dual_cone_projection`; TorchJD uses quadprog).

    Reference:
        Quinton, Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv:2406.16232, 2024.
    """

    name = "upgrad"

    def combine(self, gram, losses, seed):
        return upgrad_weights(gram)


def _weights(gram: np.ndarray) -> np.ndarray:
    terms = len(gram)
    trace = np.trace(gram)
    normalized = np.zeros_like(gram) if trace < 1e-4 else gram / trace
    regularized = normalized + 1e-4 * np.eye(terms)
    starts = np.eye(terms) / terms
    return sum(dual_cone_projection(regularized, start) for start in starts)


def upgrad_weights(gram: tf.Tensor) -> tf.Tensor:
    """Σ_i of each row's projection onto the dual cone, in the weights' coordinates."""
    return host(_weights, gram, size=gram.shape[0])
