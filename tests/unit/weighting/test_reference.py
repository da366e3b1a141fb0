"""Sanity tests of the numpy references themselves: hand-computed cases and the papers'
properties on random inputs, so a TF implementation that matches them matches something checked.
Seconds in total."""

import numpy as np
import pytest
from scipy.linalg import sqrtm

from tests.unit.weighting import reference as ref

ORTH = np.array([[1.0, 0.0], [0.0, 1.0]])
OPPOSITE = np.array([[1.0, 0.0], [-2.0, 0.0]])
ALIGNED = np.array([[1.0, 0.0], [2.0, 0.0]])
ZERO_AUX = np.array([[1.0, 2.0], [0.0, 0.0]])


def random_grads(seed, t=None, p=None, shared=0.0):
    """Gaussian rows; ``shared`` adds a common component (positively correlated tasks)."""
    rng = np.random.default_rng(seed)
    t = int(rng.integers(2, 5)) if t is None else t
    p = int(rng.integers(t + 2, 10)) if p is None else p
    return rng.normal(size=(t, p)) + shared * rng.normal(size=(1, p))


def assert_identity(d, weights, grads):
    np.testing.assert_allclose(weights @ grads, d, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize(
    "grads, d, weights",
    [
        (ORTH, [1, 1], [1, 1]),
        (OPPOSITE, [0, 0], [3, 1.5]),  # each row projected onto the other's normal: both vanish
        (ALIGNED, [3, 0], [1, 1]),
        (ZERO_AUX, [1, 2], [1, 1]),
    ],
)
def test_pcgrad_hand_cases(grads, d, weights):
    for orders in ([[0, 1], [0, 1]], [[1, 0], [1, 0]]):
        got_d, got_w = ref.pcgrad(grads, orders)
        np.testing.assert_allclose(got_d, d, atol=1e-7)
        np.testing.assert_allclose(got_w, weights, atol=1e-7)


def test_pcgrad_self_projection_matters_for_three_tasks():
    # Row 0 (order 1, 2, 0): [3, 2] -> [2.1, -0.7] -> [0, -0.7], which now conflicts with its
    # own g_0: LibMTL (j == i in the loop) projects it once more, TorchJD would not.
    g = np.array([[3.0, 2.0], [-1.0, -3.0], [-1.0, 0.0]])
    orders = [[1, 2, 0]] * 3
    d, w = ref.pcgrad(g, orders)
    np.testing.assert_allclose(d, [14.2 / 13, -21.3 / 13], atol=1e-7)
    assert_identity(d, w, g)
    d_no_self, _ = ref.pcgrad(g, orders, include_self=False)
    np.testing.assert_allclose(d_no_self, [10 / 13, -0.7 - 15 / 13], atol=1e-7)


@pytest.mark.parametrize(
    "grads, d, weights",
    [
        (ORTH, [1, 1], [1, 1]),
        (OPPOSITE, [1, 0], [3, 1]),  # aux projected to zero, primary kept
        (ALIGNED, [3, 0], [1, 1]),
        (ZERO_AUX, [1, 2], [1, 1]),
    ],
)
def test_primary_projection_hand_cases(grads, d, weights):
    got_d, got_w = ref.primary_projection(grads)
    np.testing.assert_allclose(got_d, d, atol=1e-7)
    np.testing.assert_allclose(got_w, weights, atol=1e-7)


@pytest.mark.parametrize(
    "grads, d, weighted_d",
    [
        (ORTH, [1, 0], [1, 0]),  # cosine exactly 0: not used (AuxiLearn's strict > 0)
        (OPPOSITE, [1, 0], [1, 0]),
        (ALIGNED, [3, 0], [3, 0]),
        (ZERO_AUX, [1, 2], [1, 2]),  # zero aux gradient: cosine 0
        ([[1.0, 0.0], [1.0, 1.0]], [2, 1], [1 + 0.5**0.5, 0.5**0.5]),  # cos = 1/sqrt2
    ],
)
def test_gradcosine_hand_cases(grads, d, weighted_d):
    got_d, got_w = ref.gradcosine(grads)
    np.testing.assert_allclose(got_d, d, atol=1e-12)
    assert_identity(got_d, got_w, np.asarray(grads))
    got_d, got_w = ref.gradcosine_weighted(grads)
    np.testing.assert_allclose(got_d, weighted_d, atol=1e-12)


def test_olaux_hand_case():
    g = np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 2.0]])
    w, buf = np.ones(2), []
    d, weights, w, buf = ref.olaux_step(g, w, buf, lr=0.1, beta=5.0, horizon=2)
    np.testing.assert_allclose(d, [1, 3])
    np.testing.assert_allclose(w, [1, 1])  # horizon not reached: weights unchanged
    np.testing.assert_allclose(buf, [[0.1, -0.1]])
    d, weights, w, buf = ref.olaux_step(g, w, buf, lr=0.1, beta=5.0, horizon=2)
    np.testing.assert_allclose(d, [1, 3])  # this step still uses the old weights
    np.testing.assert_allclose(w, [2, 0])  # 1 + 5 * 0.1 * (1 + 1); 1 - 1 -> clipped at 0
    assert buf == []
    d, weights, w, buf = ref.olaux_step(g, w, buf, lr=0.1, beta=5.0, horizon=2)
    np.testing.assert_allclose(d, [3, 2])
    np.testing.assert_allclose(weights, [1, 2, 0])
    # Without the clip a weight can go negative: 1 + 5 * 2 * mean(-0.3, -0.1) = -1.
    _, _, w3, _ = ref.olaux_step(g, [1, 1], [[0.1, -0.3]], 0.1, 5.0, 2, clip_at_zero=False)
    np.testing.assert_allclose(w3, [2, -1])
    _, _, w3, _ = ref.olaux_step(g, [1, 1], [[0.1, -0.3]], 0.1, 5.0, 2)
    np.testing.assert_allclose(w3, [2, 0])
    # The authors' code dots with the total loss's gradient g_0 + sum w_i g_i = (1, 3):
    # dots (4, 5), not (1, -1).
    _, _, _, buf = ref.olaux_step(g, [1, 1], [], 1.0, 5.0, 5, main_grad=[1.0, 3.0])
    np.testing.assert_allclose(buf, [[4, 5]])


@pytest.mark.parametrize(
    "grads, d",
    [
        (ORTH, [0.6, 0.6]),  # w = (1/2, 1/2), lambda = 1/2, (g0 + gw / 2) / 1.25
        (OPPOSITE, [-0.2, 0]),  # w = (1, 0), lambda = 1/4: (-0.5 + 0.25) / 1.25
        (ALIGNED, [1.8, 0]),  # w = (1, 0), lambda = 3/4: (1.5 + 0.75) / 1.25
        (ZERO_AUX, [0.4, 0.8]),  # w = (0, 1): gw = 0, d = mean / 1.25
    ],
)
def test_cagrad_hand_cases(grads, d):
    got_d, got_w, _ = ref.cagrad(grads)
    np.testing.assert_allclose(got_d, d, atol=1e-5)
    assert_identity(got_d, got_w, grads)


@pytest.mark.parametrize(
    "grads, d, weights",
    [
        (ORTH, [0.5, 0.5], [0.5, 0.5]),
        (OPPOSITE, [0, 0], [2 / 3, 1 / 3]),
    ],
)
def test_imtl_g_hand_cases(grads, d, weights):
    got_d, got_w = ref.imtl_g(grads)
    np.testing.assert_allclose(got_d, d, atol=1e-12)
    np.testing.assert_allclose(got_w, weights, atol=1e-12)


def test_imtl_g_degenerate_cases():
    with pytest.raises(np.linalg.LinAlgError):  # parallel gradients: D U^T singular
        ref.imtl_g(ALIGNED)
    assert np.isnan(ref.imtl_g(ZERO_AUX)[0]).all()  # zero row: 0/0 in the unit gradients
    d, w = ref.imtl_g(ALIGNED, generalized=True)
    np.testing.assert_allclose(w, [1 / 3, 2 / 3], atol=1e-12)
    np.testing.assert_allclose(d, [5 / 3, 0], atol=1e-12)
    d, w = ref.imtl_g(ZERO_AUX, generalized=True)
    np.testing.assert_allclose(w, [1, 0], atol=1e-12)


@pytest.mark.parametrize(
    "grads, d, sol",
    [
        (ORTH, [0.5, 0.5], [0.5, 0.5]),
        (OPPOSITE, [0, 0], [2 / 3, 1 / 3]),
        (ALIGNED, [1.001, 0], [0.999, 0.001]),  # the reference's 0.999 / 0.001 edge values
        (ZERO_AUX, [0.001, 0.002], [0.001, 0.999]),
    ],
)
def test_mgda_hand_cases(grads, d, sol):
    got_d, got_w, got_sol = ref.mgda(grads)
    np.testing.assert_allclose(got_d, d, atol=1e-12)
    np.testing.assert_allclose(got_sol, sol, atol=1e-12)
    assert_identity(got_d, got_w, grads)


def test_mgda_normalizations():
    g = np.array([[3.0, 0.0], [0.0, 1.0]])
    losses = np.array([2.0, 0.5])
    # 'l2': unit gradients, sol = (1/2, 1/2), d = sum of the halves of the unit rows.
    d, w, sol = ref.mgda(g, "l2")
    np.testing.assert_allclose(sol, [0.5, 0.5])
    np.testing.assert_allclose(d, [0.5, 0.5])
    np.testing.assert_allclose(w, [0.5 / 3, 0.5])
    # 'loss': rows (1.5, 0) and (0, 2); min-norm weights (16, 9) / 25.
    d, w, sol = ref.mgda(g, "loss", losses)
    np.testing.assert_allclose(sol, [16 / 25, 9 / 25])
    np.testing.assert_allclose(d, [24 / 25, 18 / 25])
    # 'loss+': gn = (6, 0.5): rows (0.5, 0) and (0, 2); weights (16, 1) / 17.
    d, w, sol = ref.mgda(g, "loss+", losses)
    np.testing.assert_allclose(sol, [16 / 17, 1 / 17])
    assert_identity(d, w, g)
    with pytest.raises(ValueError):
        ref.mgda(g, "loss")


@pytest.mark.parametrize(
    "grads, alpha",
    [
        (ORTH, [1, 1]),  # G G^T = I: alpha_i^2 = 1
        (ALIGNED, [2**-0.5, 2**-1.5]),  # alpha_0 = 2 alpha_1, (4 alpha_1)(2 alpha_1) = 1
        (OPPOSITE, [1, 1]),  # infeasible subproblem: previous alpha (ones) kept
        (ZERO_AUX, [1, 1]),  # likewise
    ],
)
def test_nash_mtl_hand_cases(grads, alpha):
    d, w, got_alpha = ref.nash_mtl(grads, max_norm=0)
    np.testing.assert_allclose(got_alpha, alpha, atol=1e-6)
    np.testing.assert_allclose(d, got_alpha @ grads, atol=1e-12)
    d, w, _ = ref.nash_mtl(grads)  # default max_norm 1: clipped to norm 1 (minus the 1e-6)
    raw = np.linalg.norm(got_alpha @ grads)
    np.testing.assert_allclose(np.linalg.norm(d), min(raw, raw / (raw + 1e-6)), rtol=1e-6)
    assert_identity(d, w, grads)


@pytest.mark.parametrize(
    "grads, d, weights",
    [
        (ORTH, [1, 1], [1, 1]),
        (OPPOSITE, [-1, 0], [-0.2, 0.4]),  # rank 1: B = v v^T, v = (1, -2) / sqrt5
        (ALIGNED, [3, 0], [0.6, 1.2]),
        (ZERO_AUX, [1, 2], [1, 0]),
    ],
)
def test_aligned_mtl_hand_cases(grads, d, weights):
    got_d, got_w = ref.aligned_mtl(grads)
    np.testing.assert_allclose(got_d, d, atol=1e-12)
    np.testing.assert_allclose(got_w, weights, atol=1e-12)
    with pytest.raises(ValueError):
        ref.aligned_mtl(np.zeros((2, 3)))


def test_upgrad_hand_cases():
    d, w = ref.upgrad(ORTH)  # no conflict: each row's projection is itself
    np.testing.assert_allclose(w, [0.5, 0.5], atol=1e-12)
    d, w = ref.upgrad(ALIGNED)
    np.testing.assert_allclose(w, [0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(d, [1.5, 0], atol=1e-12)
    d, w = ref.upgrad(OPPOSITE)  # both rows projected to ~0 (up to the 1e-4 regularisation)
    np.testing.assert_allclose(d, [0, 0], atol=1e-3)


def test_dwa_weights():
    np.testing.assert_allclose(ref.dwa_weights(np.empty((0, 3))), [1, 1, 1])
    np.testing.assert_allclose(ref.dwa_weights([[1.0, 2.0, 3.0]]), [1, 1, 1])
    hist = [[9.0, 9.0], [1.0, 1.0], [2.0, 1.0]]  # only the last two epochs count: r = (2, 1)
    e = np.exp([1.0, 0.5])
    np.testing.assert_allclose(ref.dwa_weights(hist), 2 * e / e.sum())
    np.testing.assert_allclose(ref.dwa_weights(hist).sum(), 2)
    e1 = np.exp([2.0, 1.0])
    np.testing.assert_allclose(ref.dwa_weights(hist, temperature=1.0), 2 * e1 / e1.sum())


def test_rlw_weights():
    z = np.array([0.3, -1.2, 2.0])
    w = ref.rlw_weights(z)
    np.testing.assert_allclose(w, np.exp(z) / np.exp(z).sum())
    np.testing.assert_allclose(w.sum(), 1)


# ---------------------------------------------------------------- properties, random inputs

SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_pcgrad_two_tasks_leaves_no_conflict(seed):
    g = random_grads(seed, t=2)
    rng = np.random.default_rng(seed)
    orders = [list(rng.permutation(2)) for _ in range(2)]
    d, w = ref.pcgrad(g, orders)
    assert_identity(d, w, g)
    # Rebuild the projected rows from the definition: each is its row minus the conflicting
    # component along the other, and neither conflicts with the other's original.
    scale = np.abs(g @ g.T).max()
    pcs = [g[i] - min(g[i] @ g[j], 0.0) / (g[j] @ g[j] + 1e-8) * g[j] for i, j in ((0, 1), (1, 0))]
    assert pcs[0] @ g[1] >= -1e-7 * scale
    assert pcs[1] @ g[0] >= -1e-7 * scale
    np.testing.assert_allclose(d, pcs[0] + pcs[1], atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_pcgrad_weights_identity_many_tasks(seed):
    g = random_grads(seed, t=4)
    rng = np.random.default_rng(100 + seed)
    orders = [list(rng.permutation(4)) for _ in range(4)]
    for include_self in (True, False):
        d, w = ref.pcgrad(g, orders, include_self=include_self)
        assert_identity(d, w, g)


@pytest.mark.parametrize("seed", SEEDS)
def test_primary_projection_never_touches_primary(seed):
    g = random_grads(seed, t=4)
    d, w = ref.primary_projection(g)
    assert_identity(d, w, g)
    np.testing.assert_array_equal(w[1:], 1.0)
    # Each aux row's contribution is non-conflicting with the primary after projection.
    for i in range(1, 4):
        gi = g[i] - min(g[i] @ g[0], 0.0) / (g[0] @ g[0] + 1e-8) * g[0]
        assert gi @ g[0] >= -1e-7 * abs(g[i] @ g[0])


@pytest.mark.parametrize("seed", SEEDS)
def test_gradcosine_never_uses_a_conflicting_aux(seed):
    g = random_grads(seed, t=5)
    cos = np.array([g[0] @ g[i] / np.linalg.norm(g[0]) / np.linalg.norm(g[i]) for i in range(5)])
    for fn in (ref.gradcosine, ref.gradcosine_weighted):
        d, w = fn(g)
        assert_identity(d, w, g)
        assert w[0] == 1
        assert np.all(w[1:][cos[1:] <= 0] == 0)
    _, w = ref.gradcosine_weighted(g)
    np.testing.assert_allclose(w[1:], np.maximum(cos[1:], 0), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_cagrad_with_c_zero_is_the_mean(seed):
    g = random_grads(seed)
    for rescale in (0, 1, 2):
        d, w, _ = ref.cagrad(g, calpha=0.0, rescale=rescale)
        np.testing.assert_allclose(d, g.mean(axis=0), atol=1e-7)


@pytest.mark.parametrize("seed", SEEDS)
def test_cagrad_dual_matches_primal(seed):
    g = random_grads(seed)
    for c in (0.2, 0.5, 0.9):
        primal = ref.cagrad_primal(g, c)
        tight, w, _ = ref.cagrad(g, calpha=c, rescale=0, ftol=1e-12)
        assert_identity(tight, w, g)
        np.testing.assert_allclose(tight, primal, atol=1e-5 * np.linalg.norm(primal))
        # The primal's guarantee: within the ball around the mean, and no worse on its worst task.
        g0 = g.mean(axis=0)
        assert np.linalg.norm(primal - g0) <= c * np.linalg.norm(g0) * (1 + 1e-6)
        assert (g @ primal).min() >= (g @ g0).min() - 1e-9
        # scipy's default tolerance (the reference's) agrees to ~1e-3 only.
        default, _, _ = ref.cagrad(g, calpha=c, rescale=0)
        np.testing.assert_allclose(default, primal, atol=1e-2 * np.linalg.norm(primal))
    d1 = ref.cagrad(g, 0.5, rescale=1, ftol=1e-12)[0]
    d2 = ref.cagrad(g, 0.5, rescale=2, ftol=1e-12)[0]
    np.testing.assert_allclose(d1 * 1.25, d2 * 1.5, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_imtl_g_equal_projections(seed):
    g = random_grads(seed)
    units = g / np.linalg.norm(g, axis=1, keepdims=True)
    for generalized in (False, True):
        d, w = ref.imtl_g(g, generalized=generalized)
        assert_identity(d, w, g)
        np.testing.assert_allclose(w.sum(), 1, atol=1e-9)
        proj = units @ d
        np.testing.assert_allclose(proj, proj[0], atol=1e-8 * np.abs(proj).max())
    np.testing.assert_allclose(ref.imtl_g(g)[1], ref.imtl_g(g, True)[1], atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_nash_mtl_solves_the_bargaining_equations(seed):
    g = random_grads(seed, shared=1.0)  # correlated tasks: the subproblems are bounded
    d, w, alpha = ref.nash_mtl(g, max_norm=0)
    assert_identity(d, w, g)
    assert not np.allclose(alpha, 1)  # moved off the initial point
    # alpha_i (G G^T alpha)_i = 1 with the raw Gram matrix.
    np.testing.assert_allclose(alpha * ref.nash_residual(g, alpha), 0, atol=1e-6)
    # The reference's own stopping quantity is on the normalised Gram matrix: not zero there.
    nf = np.linalg.norm(g @ g.T)
    r_n = ref.nash_residual(g, alpha, normalized=True)
    np.testing.assert_allclose(r_n, 1 / (nf * alpha) - 1 / (alpha + 1e-10), atol=1e-6)
    # Warm-started from its own solution it stays (the state carried between steps).
    _, _, again = ref.nash_mtl(g, prev_alpha=alpha, max_norm=0)
    np.testing.assert_allclose(again, alpha, rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_mgda_is_near_the_min_norm_point(seed):
    g = random_grads(seed, t=int(2 + seed % 4))
    d, w, sol = ref.mgda(g)
    assert_identity(d, w, g)
    np.testing.assert_allclose(sol.sum(), 1, atol=1e-12)
    assert np.all(sol >= 0)
    dm, a = ref.min_norm_point(g)
    scale = (np.linalg.norm(g, axis=1) ** 2).max()
    excess = (d @ d - dm @ dm) / scale
    # Never below the true minimum; above it by at most the reference solver's inexactness
    # (0.999/0.001 edge values for two tasks, a 1e-5 stopping rule for more).
    assert -1e-9 <= excess <= 1e-2
    if len(g) == 2 and 0.001 < sol[0] < 0.999:
        np.testing.assert_allclose(d, dm, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_min_norm_point_kkt(seed):
    g = random_grads(seed, t=int(2 + seed % 4))
    d, a = ref.min_norm_point(g)
    # KKT over the simplex: every g_i . d >= ||d||^2, with equality where a_i > 0.
    scale = (np.linalg.norm(g, axis=1) ** 2).max()
    assert (g @ d >= d @ d - 1e-7 * scale).all()
    np.testing.assert_allclose((g @ d)[a > 1e-6], d @ d, atol=1e-6 * scale)


@pytest.mark.parametrize("seed", SEEDS)
def test_aligned_mtl_balances_the_singular_values(seed):
    g = random_grads(seed)
    d, w = ref.aligned_mtl(g)
    assert_identity(d, w, g)
    m = g @ g.T
    lmin = np.linalg.eigvalsh(m).min()
    # Full rank: d = 1^T B G with B = sqrt(lmin) M^{-1/2}, so G d = sqrt(lmin) M^{1/2} 1.
    expected = np.sqrt(lmin) * np.real(sqrtm(m)) @ np.ones(len(g))
    np.testing.assert_allclose(g @ d, expected, atol=1e-8 * np.abs(expected).max())


@pytest.mark.parametrize("seed", SEEDS)
def test_upgrad_lands_in_the_dual_cone(seed):
    g = random_grads(seed)
    t = len(g)
    d, w = ref.upgrad(g)
    assert_identity(d, w, g)
    # d . g_i >= 0 up to the 1e-4 regularisation of the normalised Gram matrix.
    k = g @ g.T
    assert (g @ d >= -1e-3 * np.trace(k) * np.abs(w).max()).all()
    # Each row's QP by its KKT conditions: v >= u, K_r v >= 0, (v - u) . K_r v = 0.
    kr = k / np.trace(k) + 1e-4 * np.eye(t)
    for i in range(t):
        u = np.eye(t)[i] / t
        v = ref._project_weight_vector(u, kr)
        assert (v >= u - 1e-12).all()
        assert (kr @ v >= -1e-10).all()
        np.testing.assert_allclose((v - u) @ (kr @ v), 0, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_dwa_and_rlw_sum(seed):
    rng = np.random.default_rng(seed)
    hist = rng.uniform(0.1, 3.0, size=(4, 3))
    np.testing.assert_allclose(ref.dwa_weights(hist).sum(), 3)
    np.testing.assert_allclose(ref.rlw_weights(rng.normal(size=3)).sum(), 1)
