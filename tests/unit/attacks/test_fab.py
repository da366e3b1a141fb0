"""FAB and FAB-T: exact on linear models, projections against an LP/QP solver, budget and pixel
range, misclassified points left alone, one trace for all ε, target ranks and seeds."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linprog, minimize

from tests.helpers import random_images, tiny_model
from tfaux.attacks import FAB, FABTargeted, logits_fn
from tfaux.attacks.fab import project_l2, project_linf

ORDERS = {"linf": np.inf, "l2": 2}


def _norms(delta, norm):
    return np.linalg.norm(delta.reshape(len(delta), -1), ord=ORDERS[norm], axis=1)


def _least_squares_on_plane(w, need, bounds):
    """min ‖d‖₂ s.t. <w, d> = need, d within bounds: scipy's SLSQP."""
    plane = {"type": "eq", "fun": lambda v: w @ v - need, "jac": lambda v: w}
    options = {"ftol": 1e-12, "maxiter": 500}
    return minimize(
        lambda v: v @ v, np.zeros(len(w)), jac=lambda v: 2 * v, method="SLSQP", bounds=bounds,
        constraints=[plane], options=options,
    ).x  # fmt: skip


def _predict(model_fn, x):
    return np.argmax(model_fn(tf.constant(x)).numpy(), -1)


@pytest.fixture(scope="module")
def linear():
    """A 4-class linear model on 4x4x1 images whose classes 2 and 3 never win: FAB-T against
    the runner-up then solves a binary linear problem, whose minimal distance is known."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, 4)).astype(np.float32)
    # The 0|1 boundary passes through the grey image, so images near it are near the boundary.
    bias = np.array([-(weights[:, 0] - weights[:, 1]).sum() / 2, 0, -50, -50], np.float32)
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    model.layers[-1].set_weights([weights, bias])
    x = (0.4 + 0.2 * rng.random((8, 4, 4, 1))).astype(np.float32)
    logits = x.reshape(8, -1) @ weights + bias
    y = logits.argmax(1)
    assert set(y) == {0, 1}  # both classes present
    w = weights[:, y].T - weights[:, 1 - y].T  # margin direction, y against the runner-up
    margin = logits[np.arange(8), y] - logits[np.arange(8), 1 - y]
    distances, minimizers = {}, {}
    for norm, dual in (("linf", 1), ("l2", 2)):
        distances[norm] = margin / np.linalg.norm(w, ord=dual, axis=1)
        step = np.sign(w) if norm == "linf" else w / np.linalg.norm(w, axis=1, keepdims=True)
        minimizers[norm] = x.reshape(8, -1) - distances[norm][:, None] * step
    # The box does not bind: the unconstrained minimizers are images.
    for point in minimizers.values():
        assert point.min() > 0 and point.max() < 1
    return logits_fn(model), x, y, distances


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_minimal_is_the_distance_to_the_linear_boundary(linear, norm):
    model_fn, x, y, distances = linear
    x_min = FABTargeted(model_fn, norm=norm).minimal(x, y, target_rank=2, eps=0.1).numpy()
    assert np.all(_predict(model_fn, x_min) != y)
    ratio = _norms(x_min - x, norm) / distances[norm]
    # The overshoot eta = 1.05 and backward step beta = 0.9 settle at ~0.5 % beyond the plane.
    assert np.all(ratio >= 1.0 - 1e-4) and np.all(ratio <= 1.05), ratio


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_call_fools_exactly_the_points_within_eps(linear, norm):
    model_fn, x, y, distances = linear
    eps = float(np.median(distances[norm]))
    x_adv = FABTargeted(model_fn, norm=norm)(x, y, eps=eps, target_rank=2).numpy()
    near, far = distances[norm] < 0.99 * eps, distances[norm] > eps
    assert near.sum() >= 3 and far.sum() >= 3
    assert np.all(_predict(model_fn, x_adv[near]) != y[near])
    assert np.all(_norms(x_adv - x, norm)[near] <= eps)
    np.testing.assert_array_equal(x_adv[far], x[far])


@pytest.fixture(scope="module")
def linear4():
    """A 4-class linear model whose classes all win somewhere, with weights of unequal scale:
    the closest boundary is then often not the runner-up's (FAB-T's rank 2 would miss it). The
    minimal distance is min_j (f_y − f_j) / ‖w_y − w_j‖_q (q = 1 for L∞, 2 for L2)."""
    rng = np.random.default_rng(1)
    weights = (rng.normal(size=(16, 4)) * [1.0, 1.0, 0.4, 3.0]).astype(np.float32)
    bias = (-0.5 * weights.sum(0)).astype(np.float32)  # every class ties at the grey image
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    model.layers[-1].set_weights([weights, bias])
    n, rows = 12, np.arange(12)
    x = (0.5 + 0.1 * rng.normal(size=(n, 4, 4, 1))).astype(np.float32)
    logits = x.reshape(n, -1) @ weights + bias
    y = logits.argmax(1)
    assert set(y) == {0, 1, 2, 3}
    w = weights[:, y].T[:, None, :] - weights.T[None]  # [n, class j, pixel]: w_y − w_j
    margin = logits[rows, y][:, None] - logits
    runner_up = np.argsort(-logits, 1)[:, 1]
    distances = {}
    for norm, dual in (("linf", 1), ("l2", 2)):
        distance = margin / np.maximum(np.linalg.norm(w, ord=dual, axis=2), 1e-12)
        distance[rows, y] = np.inf
        closest = distance.argmin(1)
        assert np.sum(closest != runner_up) >= 4
        distances[norm] = distance[rows, closest]
        # The box does not bind: the unconstrained minimizers are images.
        wc = w[rows, closest]
        step = np.sign(wc) if norm == "linf" else wc / np.linalg.norm(wc, axis=1, keepdims=True)
        point = x.reshape(n, -1) - distances[norm][:, None] * step
        assert point.min() > 0 and point.max() < 1
    return logits_fn(model), x, y, distances


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_untargeted_minimal_is_the_distance_to_the_closest_boundary(linear4, norm):
    model_fn, x, y, distances = linear4
    x_min = FAB(model_fn, norm=norm).minimal(x, y, eps=0.1).numpy()
    assert np.all(_predict(model_fn, x_min) != y)
    ratio = _norms(x_min - x, norm) / distances[norm]
    # ~0.5 % beyond the plane, as FAB-T; 1 % also catches the wrong dual norm (3-5 % beyond).
    assert np.all(ratio >= 1.0 - 1e-4) and np.all(ratio <= 1.01), ratio


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_untargeted_call_fools_exactly_the_points_within_eps(linear4, norm):
    model_fn, x, y, distances = linear4
    eps = float(np.median(distances[norm]))
    x_adv = FAB(model_fn, norm=norm)(x, y, eps=eps).numpy()
    near, far = distances[norm] < 0.99 * eps, distances[norm] > eps
    assert near.sum() >= 3 and far.sum() >= 3
    assert np.all(_predict(model_fn, x_adv[near]) != y[near])
    assert np.all(_norms(x_adv - x, norm)[near] <= eps)
    np.testing.assert_array_equal(x_adv[far], x[far])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_matches_an_lp_qp_solver(norm):
    """The smallest d with <w, t + d> = b and t + d in [0, 1]^d, against scipy (L∞: a linear
    program, L2: SLSQP); where no such d exists, the box corner closest to the plane."""
    rng = np.random.default_rng(1)
    n, dim = 24, 12
    t = rng.random((n, dim)).astype(np.float32)
    w = rng.normal(size=(n, dim)).astype(np.float32)
    w[:4, :3] = 0  # coordinates the plane ignores
    scale = rng.choice([0.02, 0.2, 1.0], n) * np.abs(w).sum(1)  # near, box-bound, unreachable
    b = ((w * t).sum(1) + rng.normal(size=n) * scale).astype(np.float32)
    project = project_linf if norm == "linf" else project_l2
    d = project(tf.constant(t), tf.constant(w), tf.constant(b)).numpy()
    reachable, box_bound = 0, 0
    for i in range(n):
        bounds, need = list(zip(-t[i], 1 - t[i], strict=True)), b[i] - w[i] @ t[i]
        lp = linprog(  # min λ s.t. |d_j| <= λ, <w, d> = need, t + d in the box
            np.r_[np.zeros(dim), 1.0],
            A_ub=np.block([[np.eye(dim), -np.ones((dim, 1))], [-np.eye(dim), -np.ones((dim, 1))]]),
            b_ub=np.zeros(2 * dim),
            A_eq=np.r_[w[i], 0.0][None],
            b_eq=[need],
            bounds=[*bounds, (0, None)],
        )
        if lp.status != 0:  # unreachable
            corner = np.where(w[i] * np.sign(need) > 0, 1 - t[i], -t[i]) * (w[i] != 0)
            np.testing.assert_allclose(d[i], corner, atol=1e-6)
            continue
        reachable += 1
        at_box = np.isclose(d[i], -t[i], atol=1e-6) | np.isclose(d[i], 1 - t[i], atol=1e-6)
        box_bound += np.any(at_box & (w[i] != 0))
        assert abs(w[i] @ d[i] - need) < 1e-4 and np.all(-t[i] - 1e-6 <= d[i])
        assert np.all(d[i] <= 1 - t[i] + 1e-6)
        if norm == "linf":
            assert abs(np.abs(d[i]).max() - lp.x[-1]) < 1e-5
        else:
            np.testing.assert_allclose(d[i], _least_squares_on_plane(w[i], need, bounds), atol=1e-4)
    assert 0 < box_bound < reachable < n  # every branch: free, box-bound, unreachable


@pytest.fixture(scope="module")
def conv():
    """An untrained small CNN; labels are its predictions except for two wrong ones."""
    model_fn = logits_fn(tiny_model())
    x = random_images(8, (16, 16, 1), seed=3)
    y = _predict(model_fn, x)
    y[-2:] = (y[-2:] + 1) % 4
    return model_fn, x, y


@pytest.mark.parametrize("targeted", [True, False], ids=["fab-t", "fab"])
@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_budget_pixel_range_and_misclassified_points(conv, norm, eps, targeted):
    model_fn, x, y = conv
    if targeted:
        fab = FABTargeted(model_fn, norm=norm, steps=10, restarts=2)
        x_adv = fab(x, y, eps=eps, target_rank=2, seed=1).numpy()
    else:
        x_adv = FAB(model_fn, norm=norm, steps=10, restarts=2)(x, y, eps=eps, seed=1).numpy()
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.all(_norms(x_adv - x, norm) <= eps * (1 + 1e-6))
    fooled = _predict(model_fn, x_adv) != y
    assert fooled[:6].sum() >= 3  # accuracy drops (the minimal distances are ~0.07 and ~0.8)
    changed = np.any((x_adv != x).reshape(8, -1), axis=1)
    assert np.all(fooled[changed])  # kept only where adversarial
    np.testing.assert_array_equal(x_adv[-2:], x[-2:])  # misclassified: x itself, never "fixed"


def test_restarts_only_shrink_the_distance_and_are_seeded(conv):
    model_fn, x, y = conv
    one = FABTargeted(model_fn, steps=10).minimal(x, y, target_rank=2, eps=0.05)
    two = FABTargeted(model_fn, steps=10, restarts=2)
    a, b = two.minimal(x, y, 2, eps=0.05, seed=4), two.minimal(x, y, 2, eps=0.05, seed=4)
    np.testing.assert_array_equal(a, b)
    found = _predict(model_fn, one.numpy()) != y
    assert np.all(_norms(a.numpy() - x, "linf")[found] <= _norms(one.numpy() - x, "linf")[found])


def test_one_trace_for_all_eps_ranks_seeds_and_batch_sizes(linear):
    model_fn, x, y, _ = linear
    fab = FABTargeted(model_fn, steps=2, restarts=2)
    for target_rank in (2, 3):
        for eps in (0.05, 0.1):
            fab(x, y, eps=eps, target_rank=target_rank, seed=target_rank)
            fab.minimal(x[:3], y[:3], target_rank, eps=eps)
    assert fab.tracing_counts() == {"linf 4x4x1": 1}


def test_untargeted_one_trace_for_all_eps_seeds_and_batch_sizes(linear4):
    model_fn, x, y, _ = linear4
    fab = FAB(model_fn, norm="l2", steps=2, restarts=2)
    for seed, eps in enumerate((0.05, 0.1)):
        fab(x, y, eps=eps, seed=seed)
        fab.minimal(x[:3], y[:3], eps=eps, seed=seed)
    assert fab.tracing_counts() == {"l2 4x4x1": 1}


def test_invalid_arguments_raise_value_errors(linear):
    model_fn, x, y, _ = linear
    with pytest.raises(ValueError, match="Did you mean 'l2'"):
        FABTargeted(model_fn, norm="L2")
    with pytest.raises(ValueError, match="Received: steps=0"):
        FABTargeted(model_fn, steps=0)
    with pytest.raises(ValueError, match="Received: beta=1.5"):
        FABTargeted(model_fn, beta=1.5)
    fab = FABTargeted(model_fn, steps=1)
    for rank in (1, 5):
        with pytest.raises(ValueError, match=f"to 4 .*Received: target_rank={rank}"):
            fab(x, y, eps=0.1, target_rank=rank)
    with pytest.raises(ValueError, match="Received: eps=-0.1"):
        fab(x, y, eps=-0.1, target_rank=2)
    with pytest.raises(ValueError, match="as many labels"):
        fab(x, y[:3], eps=0.1, target_rank=2)
    with pytest.raises(ValueError, match="Received: restarts=0"):
        FAB(model_fn, restarts=0)
    with pytest.raises(ValueError, match="Received: eps=-0.1"):
        FAB(model_fn, steps=1)(x, y, eps=-0.1)
