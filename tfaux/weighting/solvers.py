"""Small convex problems over the T task weights, solved on the host in float64 (T ≤ ~10, so
each costs well under a millisecond): the min-norm point of MGDA, CAGrad's dual and Nash-MTL's
bargaining solution. Each takes the Gram matrix G·Gᵀ; `host` runs one inside a train step."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import tensorflow as tf
from scipy.optimize import minimize


def host(function: Callable[..., np.ndarray], *tensors: tf.Tensor, size: int) -> tf.Tensor:
    """`function(*arrays)` → float64 (size,), run on the host from a traced step (the same input
    on every replica gives the same output); non-finite input gives NaN weights, so a step with
    overflowing gradients stays non-finite and a loss-scale optimizer skips it."""

    def guarded(*arrays):
        arrays = [np.asarray(a, np.float64) for a in arrays]
        if not all(np.all(np.isfinite(a)) for a in arrays):
            return np.full(size, np.nan)
        return np.asarray(function(*arrays), np.float64)

    result = tf.numpy_function(guarded, [tf.cast(t, tf.float64) for t in tensors], tf.float64)
    return tf.ensure_shape(result, [size])


def min_norm_weights(gram: np.ndarray) -> np.ndarray:
    """The weights w on the simplex minimizing ‖Σ w_i·g_i‖² = wᵀ·K·w, exactly: the minimum lies
    on the face of its support, where the equality-constrained problem is a linear (KKT) system,
    so the best feasible solution over all 2^T − 1 supports is it."""
    terms = len(gram)
    best, best_value = np.full(terms, 1.0 / terms), np.inf
    for size in range(1, terms + 1):
        for support in itertools.combinations(range(terms), size):
            index = list(support)
            system = np.zeros((size + 1, size + 1))
            system[:size, :size] = 2 * gram[np.ix_(index, index)]
            system[:size, size] = system[size, :size] = 1.0
            target = np.zeros(size + 1)
            target[size] = 1.0
            solution = np.linalg.lstsq(system, target, rcond=None)[0][:size]
            if np.any(solution < -1e-12):
                continue
            weights = np.zeros(terms)
            weights[index] = np.maximum(solution, 0.0)
            weights /= weights.sum()
            value = weights @ gram @ weights
            if value < best_value - 1e-15:
                best, best_value = weights, value
    return best


def cagrad_dual(gram: np.ndarray, c: float) -> np.ndarray:
    """CAGrad's dual weights: w on the simplex minimizing wᵀK·(1/T) + c'·√(wᵀKw + 1e-8) with
    c' = c·√(mean(K) + 1e-8) + 1e-8, as LibMTL (scipy's SLSQP from the uniform start), with the
    exact gradient and a tight tolerance (LibMTL's defaults stop about 1e-3 short of the
    optimum)."""
    terms = len(gram)
    start = np.full(terms, 1.0 / terms)
    radius = c * np.sqrt(gram.mean() + 1e-8) + 1e-8
    pull = gram @ start

    def objective(w):
        return w @ pull + radius * np.sqrt(w @ gram @ w + 1e-8)

    def gradient(w):
        return pull + radius * (gram @ w) / np.sqrt(w @ gram @ w + 1e-8)

    result = minimize(
        objective,
        start,
        jac=gradient,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * terms,
        constraints={"type": "eq", "fun": lambda w: 1 - w.sum(), "jac": lambda w: -np.ones(terms)},
        options={"ftol": 1e-12, "maxiter": 500},
    )
    return result.x


def nash_bargaining(gram: np.ndarray, start: np.ndarray, iterations: int = 100) -> np.ndarray:
    """α > 0 with α_i·(Kα)_i = 1 for every i (Nash-MTL's bargaining equations), or `start` when
    they have no solution (conflicting gradients leave no agreement: the reference keeps its
    previous weights there too).

    The equations are the stationarity condition of f(α) = ½·αᵀKα − Σ log α_i, which is convex,
    so damped Newton steps from `start` reach the solution when one exists (the reference's
    sequence of cvxpy problems approximates the same point).
    """

    def value(alpha):
        return 0.5 * alpha @ gram @ alpha - np.sum(np.log(alpha))

    alpha = np.where(start > 0, start, 1.0)
    for _ in range(iterations):
        gradient = gram @ alpha - 1.0 / alpha
        if np.max(np.abs(alpha * (gram @ alpha) - 1.0)) < 1e-9:
            return alpha
        hessian = gram + np.diag(1.0 / alpha**2)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:  # α ran off to infinity: no solution
            return start
        size = 1.0
        while np.any(alpha - size * step <= 0) and size > 1e-12:
            size /= 2
        while value(alpha - size * step) > value(alpha) - 1e-4 * size * (gradient @ step):
            size /= 2
            if size < 1e-12:
                break
        alpha = alpha - size * step
    converged = np.max(np.abs(alpha * (gram @ alpha) - 1.0)) < 1e-6
    return alpha if converged and np.all(np.isfinite(alpha)) else start


def dual_cone_projection(gram: np.ndarray, start: np.ndarray) -> np.ndarray:
    """v minimizing vᵀKv subject to v ≥ `start` (K positive definite), exactly: v = start + s with
    s = 0 on an active set A and ∇ = K·v = 0 off it; the one support whose s is ≥ 0 and whose
    gradient is ≥ 0 on A (the KKT conditions of a strictly convex problem) is the solution."""
    terms = len(gram)
    for size in range(terms + 1):
        for free in itertools.combinations(range(terms), size):
            index = list(free)
            shift = np.zeros(terms)
            if index:
                rhs = -(gram @ start)[index]
                shift[index] = np.linalg.solve(gram[np.ix_(index, index)], rhs)
            if np.any(shift < -1e-12):
                continue
            v = start + np.maximum(shift, 0.0)
            gradient = gram @ v
            active = [i for i in range(terms) if i not in free]
            if np.all(gradient[active] >= -1e-10 * max(1.0, np.abs(gradient).max())):
                return v
    raise np.linalg.LinAlgError("no KKT point: the Gram matrix is not positive definite")
