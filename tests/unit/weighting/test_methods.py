"""Each weighting's combination of given gradients against the numpy transcription of its
reference code (`reference.py`, written from the references, not from tfaux), on hand-picked
cases (conflicting, aligned, orthogonal, a zero gradient) and random ones, and the properties its
paper proves. The TF functions see only the Gram matrix G·Gᵀ; their update is w·G."""

import numpy as np
import pytest
import tensorflow as tf

from tests.unit.weighting import reference as ref
from tfaux.weighting.aligned_mtl import aligned_mtl_weights
from tfaux.weighting.cagrad import cagrad_weights
from tfaux.weighting.dwa import dwa_weights
from tfaux.weighting.gradcosine import gradcosine_weights
from tfaux.weighting.imtl_g import imtl_g_weights
from tfaux.weighting.mgda import mgda_weights
from tfaux.weighting.nash_mtl import nash_mtl_weights
from tfaux.weighting.olaux import olaux_step
from tfaux.weighting.pcgrad import pcgrad_weights
from tfaux.weighting.primary_projection import primary_projection_weights
from tfaux.weighting.rlw import RandomLossWeighting
from tfaux.weighting.upgrad import upgrad_weights

CASES = {
    "orthogonal": [[1.0, 0.0], [0.0, 1.0]],
    "opposite": [[1.0, 0.0], [-2.0, 0.0]],
    "aligned": [[1.0, 0.0], [2.0, 0.0]],
    "zero aux": [[1.0, 2.0], [0.0, 0.0]],
    "three, mixed": [[3.0, 2.0, 0.5], [-1.0, -3.0, 1.0], [-1.0, 0.0, 2.0]],
}


def random_grads(seed: int, terms: int | None = None, shared: float = 0.0) -> np.ndarray:
    """Gaussian rows (T = 2–4 unless given, P = 5–11); `shared` adds a common component."""
    rng = np.random.default_rng(seed)
    terms = int(rng.integers(2, 5)) if terms is None else terms
    width = int(rng.integers(terms + 3, 12))
    return rng.normal(size=(terms, width)) + shared * rng.normal(size=(1, width))


RANDOM = [random_grads(seed, shared=seed % 3 * 0.7) for seed in range(12)]


def update(weights, grads) -> np.ndarray:
    return np.asarray(weights, np.float64) @ np.asarray(grads, np.float64)


def gram(grads) -> tf.Tensor:
    g = np.asarray(grads, np.float64)
    return tf.constant(g @ g.T)


def all_inputs():
    return [*CASES.values(), *RANDOM]


def ids():
    return [*CASES, *(f"random{k}" for k in range(len(RANDOM)))]


@pytest.mark.parametrize("grads", all_inputs(), ids=ids())
def test_pcgrad_is_libmtls_update_for_the_same_orders(grads):
    terms = len(grads)
    rng = np.random.default_rng(terms)
    orders = np.stack([rng.permutation(terms) for _ in range(terms)])
    expected, _ = ref.pcgrad(grads, orders.tolist())
    weights = pcgrad_weights(gram(grads), tf.constant(orders))
    np.testing.assert_allclose(update(weights, grads), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("grads", RANDOM, ids=[f"random{k}" for k in range(len(RANDOM))])
def test_pcgrad_leaves_no_conflict_between_two_projected_gradients(grads):
    two = grads[:2]
    weights = pcgrad_weights(gram(two), tf.constant([[1, 0], [0, 1]]))
    expected, _ = ref.pcgrad(two, [[1, 0], [0, 1]])
    np.testing.assert_allclose(update(weights, two), expected, rtol=1e-7, atol=1e-9)
    # Each projected row has no negative inner product with the other original row.
    projected = []
    for i, j in ((0, 1), (1, 0)):
        dot = two[i] @ two[j]
        projected.append(two[i] - min(dot, 0) / (two[j] @ two[j] + 1e-8) * two[j])
    tolerance = 1e-7 * np.abs(two).max() ** 2  # the 1e-8 in ‖g_j‖² + 1e-8, and rounding
    assert projected[0] @ two[1] >= -tolerance and projected[1] @ two[0] >= -tolerance


@pytest.mark.parametrize("grads", all_inputs(), ids=ids())
def test_primary_projection_never_alters_the_primary_and_removes_every_conflict(grads):
    expected, _ = ref.primary_projection(grads)
    weights = primary_projection_weights(gram(grads)).numpy()
    np.testing.assert_allclose(update(weights, grads), expected, rtol=1e-7, atol=1e-9)
    g = np.asarray(grads)
    np.testing.assert_array_equal(weights[1:], 1.0)  # aux rows whole, less their g_0 part
    aux_step = update(weights, g) - g[0]  # what the aux rows add to the primary's gradient
    for row in g[1:]:
        if row @ g[0] < 0:
            projected = row - (row @ g[0]) / (g[0] @ g[0] + 1e-8) * g[0]
            assert abs(projected @ g[0]) < 1e-6
    assert aux_step @ g[0] >= -1e-6 * max(1.0, np.abs(g).max() ** 2)


@pytest.mark.parametrize("grads", all_inputs(), ids=ids())
def test_gradcosine_uses_an_aux_gradient_only_when_its_cosine_is_positive(grads):
    expected, expected_weights = ref.gradcosine(grads)
    weights = gradcosine_weights(gram(grads)).numpy()
    np.testing.assert_allclose(weights, expected_weights)
    np.testing.assert_allclose(update(weights, grads), expected, rtol=1e-7, atol=1e-9)
    g = np.asarray(grads)
    for row, used in zip(g[1:], weights[1:], strict=True):
        assert used == (1.0 if row @ g[0] > 0 else 0.0)


@pytest.mark.parametrize("grads", all_inputs(), ids=ids())
def test_imtl_g_is_libmtls_update_with_equal_projections_on_every_unit_gradient(grads):
    g = np.asarray(grads)
    weights = imtl_g_weights(gram(g)).numpy()
    d = update(weights, g)
    assert weights.sum() == pytest.approx(1.0)
    norms = np.linalg.norm(g, axis=1)
    if np.linalg.matrix_rank(g) == len(g):  # LibMTL's matrix is invertible
        np.testing.assert_allclose(d, ref.imtl_g(g)[0], rtol=1e-6, atol=1e-9)
        projections = d @ (g / norms[:, None]).T
        np.testing.assert_allclose(projections, projections[0], rtol=1e-6, atol=1e-9)


def test_imtl_g_on_parallel_gradients_keeps_the_primary_where_libmtl_fails():
    aligned = np.array(CASES["aligned"])
    with pytest.raises(np.linalg.LinAlgError):
        ref.imtl_g(aligned)
    np.testing.assert_allclose(imtl_g_weights(gram(aligned)), [1.0, 0.0], atol=1e-12)
    opposite = np.array(CASES["opposite"])  # equal projections: d = 0, as LibMTL's
    np.testing.assert_allclose(update(imtl_g_weights(gram(opposite)), opposite), [0, 0], atol=1e-12)


@pytest.mark.parametrize("grads", [g for g in all_inputs() if np.any(g)], ids=ids())
def test_aligned_mtl_is_libmtls_update(grads):
    expected, expected_weights = ref.aligned_mtl(grads)
    weights = aligned_mtl_weights(gram(grads)).numpy()
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(update(weights, grads), expected, rtol=1e-6, atol=1e-9)


def test_aligned_mtl_of_zero_gradients_is_zero():
    np.testing.assert_array_equal(aligned_mtl_weights(tf.zeros([3, 3], tf.float64)), 0.0)


MGDA_INPUTS = {k: v for k, v in CASES.items() if k != "zero aux"} | {
    f"random{k}": RANDOM[k] for k in range(4)
}


@pytest.mark.parametrize("normalization", ["none", "l2", "loss", "loss+"])
@pytest.mark.parametrize("grads", MGDA_INPUTS.values(), ids=MGDA_INPUTS.keys())
def test_mgda_is_the_min_norm_point_of_the_convex_hull(grads, normalization):
    g = np.asarray(grads)
    losses = np.linspace(0.5, 2.0, len(g))
    norms = np.linalg.norm(g, axis=1)
    weights = mgda_weights(gram(g), tf.constant(losses), normalization).numpy()
    scale = {"none": 1.0, "l2": norms, "loss": losses, "loss+": losses * norms}[normalization]
    normalized = g / np.broadcast_to(scale, (len(g),))[:, None]
    simplex = weights * np.broadcast_to(scale, (len(g),))
    assert simplex.sum() == pytest.approx(1.0) and simplex.min() >= 0
    np.testing.assert_allclose(update(weights, g), simplex @ normalized, rtol=1e-9, atol=1e-12)
    # The exact minimum over the simplex, from scipy's SLSQP: not beaten, and reached.
    best, _ = ref.min_norm_point(normalized)
    assert np.linalg.norm(simplex @ normalized) <= np.linalg.norm(best) + 1e-6
    # LibMTL's solver: the same point for two tasks (but for its 0.999/0.001 clip at the ends);
    # for more, its Frank-Wolfe stops short, never below ours.
    libmtl, _, _ = ref.mgda(g, normalization, losses)
    if len(g) == 2:
        np.testing.assert_allclose(simplex @ normalized, libmtl, atol=2e-3 * np.abs(g).max())
    else:
        assert np.linalg.norm(simplex @ normalized) <= np.linalg.norm(libmtl) + 1e-9


def test_mgda_with_a_zero_gradient_takes_it_alone():
    zero = np.array(CASES["zero aux"])  # 0 is in the hull: the min-norm point is it
    weights = mgda_weights(gram(zero), tf.constant([1.0, 1.0])).numpy()
    np.testing.assert_allclose(weights, [0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("c", [0.0, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("grads", all_inputs(), ids=ids())
def test_cagrad_solves_its_primal_problem(grads, c):
    g = np.asarray(grads)
    weights = cagrad_weights(gram(g), c, rescale=0).numpy()
    d = update(weights, g)
    if c == 0:  # the mean gradient
        np.testing.assert_allclose(d, g.mean(axis=0), atol=2e-8)  # c' = c·‖g_0‖ + 1e-8
        return
    primal = ref.cagrad_primal(g, c)
    worst = (g @ d).min()
    assert worst >= (g @ primal).min() - 1e-4 * max(1.0, np.abs(g).max() ** 2)
    mean = g.mean(axis=0)
    assert np.linalg.norm(d - mean) <= c * np.linalg.norm(mean) * (1 + 1e-6) + 1e-6
    libmtl, _, _ = ref.cagrad(g, c, rescale=0)  # scipy's default tolerance: ~1e-3 off
    np.testing.assert_allclose(d, libmtl, atol=5e-3 * max(1.0, np.abs(g).max()))


@pytest.mark.parametrize("rescale, factor", [(0, 1.0), (1, 1.25), (2, 1.5)])
def test_cagrad_rescales_like_libmtl(rescale, factor):
    g = RANDOM[3]
    np.testing.assert_allclose(
        cagrad_weights(gram(g), 0.5, rescale).numpy() * factor,
        cagrad_weights(gram(g), 0.5, 0).numpy(),
        rtol=1e-9,
    )


@pytest.mark.parametrize("grads", RANDOM, ids=[f"random{k}" for k in range(len(RANDOM))])
def test_nash_mtl_weights_solve_the_bargaining_equations(grads):
    g = np.asarray(grads)
    weights, alpha = nash_mtl_weights(gram(g), np.ones(len(g)), max_norm=0.0)
    alpha = alpha.numpy()
    if np.allclose(alpha, 1.0) and np.abs(ref.nash_residual(g, alpha)).max() > 1e-3:
        # No agreement exists (the reference keeps its weights too): check it has none either.
        _, _, reference_alpha = ref.nash_mtl(g)
        np.testing.assert_allclose(reference_alpha, 1.0)
        return
    np.testing.assert_allclose(weights, alpha)
    np.testing.assert_allclose(alpha * ref.nash_residual(g, alpha), 0.0, atol=1e-6)
    assert np.linalg.norm(update(alpha, g)) == pytest.approx(np.sqrt(len(g)), rel=1e-6)
    _, _, reference_alpha = ref.nash_mtl(g)  # 20 cvxpy-like steps from ones
    if np.abs(ref.nash_residual(g, reference_alpha) * reference_alpha).max() < 1e-4:
        np.testing.assert_allclose(alpha, reference_alpha, rtol=1e-3)


def test_nash_mtl_clips_the_update_and_keeps_its_weights_without_an_agreement():
    g = RANDOM[1]
    weights, alpha = nash_mtl_weights(gram(g), np.ones(len(g)), max_norm=1.0)
    assert np.linalg.norm(update(weights, g)) == pytest.approx(1.0, rel=1e-5)
    opposite = np.array(CASES["opposite"])  # Σ log(g_i·d) has no maximum
    previous = np.array([0.3, 0.7])
    _, kept = nash_mtl_weights(gram(opposite), previous, max_norm=1.0)
    np.testing.assert_allclose(kept, previous)


@pytest.mark.parametrize("grads", all_inputs(), ids=ids())
def test_upgrad_is_torchjds_update_and_conflicts_with_no_gradient(grads):
    g = np.asarray(grads)
    expected, expected_weights = ref.upgrad(g)
    weights = upgrad_weights(gram(g)).numpy()
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(update(weights, g), expected, rtol=1e-6, atol=1e-9)
    # In the dual cone, up to the 1e-4 regularization: no term's loss rises along it.
    assert (g @ update(weights, g)).min() >= -1e-3 * np.abs(g).max() ** 2


def test_olaux_follows_the_authors_update_over_two_horizons():
    rng = np.random.default_rng(0)
    state = (np.ones(2), np.zeros(2), 0.0)
    weights, buffer = np.ones(2), []
    for step in range(7):
        g = rng.normal(size=(3, 6))
        applied, *state = olaux_step(gram(g), state, learning_rate=0.1, beta=5.0, horizon=3)
        d, expected, weights, buffer = ref.olaux_step(g, weights, buffer, 0.1, 5.0, 3)
        np.testing.assert_allclose(applied, expected, rtol=1e-5, err_msg=f"step {step}")
        np.testing.assert_allclose(update(applied, g), d, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state[0], weights, rtol=1e-5)
        assert float(state[2]) == len(buffer)


def test_dwa_weights_follow_the_loss_ratios_after_two_epochs():
    history = np.array([[2.0, 1.0, 0.5], [1.5, 0.9, 0.1]])
    first = np.stack([np.zeros(3), history[0]])  # one epoch done: the older row still empty
    np.testing.assert_allclose(dwa_weights(first, 1), ref.dwa_weights(history[:1]))
    np.testing.assert_allclose(dwa_weights(history, 2), ref.dwa_weights(history), rtol=1e-6)
    assert float(tf.reduce_sum(dwa_weights(history, 2))) == pytest.approx(3.0)


def test_rlw_draws_t_times_libmtls_softmax_the_same_for_the_same_step():
    class Holder:  # RandomLossWeighting.draw reads only the term names
        names = ["logits", "a", "b"]

    first = RandomLossWeighting.draw(Holder(), 5).numpy()
    again = RandomLossWeighting.draw(Holder(), 5).numpy()
    np.testing.assert_array_equal(first, again)
    normals = tf.random.stateless_normal([3], tf.constant([5, 104_729])).numpy()
    np.testing.assert_allclose(first, 3 * ref.rlw_weights(normals), rtol=1e-6)
    draws = np.stack([RandomLossWeighting.draw(Holder(), s).numpy() for s in range(400)])
    assert abs(draws.mean() - 1.0) < 1e-6 and draws.std() > 0.2  # mean weight 1, and random
