"""Square Attack: budget and range, reproducibility, the reference's pattern, schedule and L2
update (per channel on RGB), exact results on a linear model, a gradient-masked model PGD cannot
attack, one trace."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from tfaux.attacks import PGD, Square, logits_fn
from tfaux.attacks.square import eta_pattern, l2_window_update

QUERIES = 300
EPS = {"linf": 0.1, "l2": 1.0}
NORMS = sorted(EPS)


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits upsampled to 16x16 in [0, 1]; a ridge-regression linear classifier
    (closed form, so deterministic) and 128 held-out images."""
    data = load_digits()
    x = np.kron(data.images / 16.0, np.ones((2, 2)))[..., None].astype(np.float32)
    features = np.c_[x[:1500].reshape(1500, -1), np.ones(1500)]
    targets = np.eye(10)[data.target[:1500]]
    weights = np.linalg.solve(features.T @ features + np.eye(257), features.T @ targets)
    return weights[:-1], weights[-1], x[1500:1628], data.target[1500:1628]


class _Quantize(keras.layers.Layer):
    """Rounds to 8 bits with no gradient: the forward pass is the model's, the gradient is 0."""

    def call(self, x):
        return tf.stop_gradient(tf.round(x * 255.0) / 255.0)


def _linear(digits, masked=False) -> keras.Model:
    kernel, bias, _, _ = digits
    inputs = keras.Input((16, 16, 1))
    hidden = _Quantize()(inputs) if masked else inputs
    outputs = keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    model.get_layer("logits").set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def attacks(digits):
    model_fn = logits_fn(_linear(digits))
    return model_fn, {norm: Square(model_fn, norm=norm, queries=QUERIES) for norm in NORMS}


def _fooled(model_fn, x, y):
    return np.argmax(model_fn(x).numpy(), -1) != y


@pytest.mark.parametrize("norm", NORMS)
def test_square_stays_in_budget_and_range_and_keeps_misclassified(digits, attacks, norm):
    _, _, x, y = digits
    model_fn, square = attacks[0], attacks[1][norm]
    x_adv = square(x, y, eps=EPS[norm], seed=0).numpy()
    assert x_adv.shape == x.shape and x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    delta = (x_adv - x).reshape(len(x), -1)
    if norm == "linf":
        assert np.abs(delta).max() <= EPS[norm] + 1e-6
    else:
        assert np.linalg.norm(delta, axis=1).max() <= EPS[norm] + 1e-4
    wrong = _fooled(model_fn, x, y)
    fooled = _fooled(model_fn, x_adv, y)
    assert 0 < wrong.sum() < fooled.sum()
    np.testing.assert_array_equal(x_adv[wrong], x[wrong])  # never attacked
    # Images the attack did not fool come back clean, as in the reference
    np.testing.assert_array_equal(x_adv[~fooled], x[~fooled])
    queries = square.queries_used.numpy()
    assert np.all(queries[wrong] == 0)
    assert np.all(queries[~fooled] == QUERIES + 1)  # the initialization is one query
    # The per-example early stop: a fooled image stops querying (most well before the budget)
    found = queries[fooled & ~wrong]
    assert found.min() >= 1 and found.max() <= QUERIES + 1 and np.median(found) < QUERIES / 2


@pytest.mark.parametrize("norm", NORMS)
def test_same_seed_same_images_other_seed_other_images(digits, attacks, norm):
    _, _, x, y = digits
    square = attacks[1][norm]
    a = square(x, y, eps=EPS[norm], seed=5).numpy()
    queries = square.queries_used.numpy()
    b = square(x, y, eps=EPS[norm], seed=5).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(queries, square.queries_used.numpy())
    c = square(x, y, eps=EPS[norm], seed=6).numpy()
    assert np.abs(a - c).max() > 0.01


def test_square_beats_pgd_on_a_gradient_masked_model(digits):
    """A zero gradient leaves PGD with its random start only; Square needs only logits."""
    _, _, x, y = digits
    model = _linear(digits, masked=True)
    model_fn = logits_fn(model)
    pgd = PGD(model, steps=10)(x, y, eps=EPS["linf"], seed=0)
    square = Square(model_fn, queries=QUERIES)(x, y, eps=EPS["linf"], seed=0)
    clean = 1.0 - _fooled(model_fn, x, y).mean()
    pgd_accuracy = 1.0 - _fooled(model_fn, pgd, y).mean()
    square_accuracy = 1.0 - _fooled(model_fn, square, y).mean()
    assert clean > 0.8
    assert pgd_accuracy >= clean - 0.05  # measured: 0.844 clean, 0.836 PGD, 0.367 Square
    assert square_accuracy <= pgd_accuracy - 0.25


def _close_to_boundary(digits, eps: float, norm: str) -> np.ndarray:
    """Correctly classified images that the *optimal* attack on the linear model fools within
    ε (box constraint [0, 1] included): L∞ moves each pixel ε against w_y − w_j and clips; the
    L2-closest point of a half-space in the box is clip(x − λ·v) for the λ reaching it
    (bisection)."""
    kernel, bias, x, y = digits
    x = x.reshape(len(x), -1).astype(np.float64)
    close = np.zeros(len(x), bool)
    for j in range(10):
        v, b = kernel[:, y].T - kernel[:, j], bias[y] - bias[j]  # margin y over j: v·x + b

        def margin(point, v=v, b=b):
            return (v * point).sum(1) + b

        if norm == "linf":
            reached = margin(np.clip(x - eps * np.sign(v), 0, 1)) < 0
        else:
            low, high = np.zeros(len(x)), np.full(len(x), 1e3)
            for _ in range(100):
                middle = (low + high) / 2
                above = margin(np.clip(x - middle[:, None] * v, 0, 1)) > 0
                low, high = np.where(above, middle, low), np.where(above, high, middle)
            point = np.clip(x - high[:, None] * v, 0, 1)
            reached = (margin(point) <= 0) & (np.linalg.norm(point - x, axis=1) < eps)
        close |= (j != y) & reached
    correct = np.argmax(x @ kernel + bias, -1) == y
    return close & correct


@pytest.mark.parametrize("norm", NORMS)
def test_square_fools_images_within_half_the_budget_of_the_boundary(digits, attacks, norm):
    _, _, x, y = digits
    model_fn, square = attacks[0], attacks[1][norm]
    close = _close_to_boundary(digits, EPS[norm] / 2, norm)
    assert close.sum() >= 15
    fooled = _fooled(model_fn, square(x, y, eps=EPS[norm], seed=1), y)
    assert fooled[close].mean() >= 0.9  # measured: 1.0 for both norms
    # and never beyond what the optimal attack reaches at ε
    newly_fooled = fooled & ~_fooled(model_fn, x, y)
    assert not np.any(newly_fooled & ~_close_to_boundary(digits, EPS[norm] + 1e-4, norm))


@pytest.mark.parametrize("norm", NORMS)
def test_one_trace_across_eps_seeds_and_batch_sizes(digits, norm):
    _, _, x, y = digits
    square = Square(logits_fn(_linear(digits)), norm=norm, queries=20)
    for eps in (EPS[norm], EPS[norm] / 2):
        for seed in (0, 1):
            square(x[:8], y[:8], eps=eps, seed=seed)
    square(x[:5], y[:5], eps=EPS[norm], seed=0)
    assert square.tracing_counts() == {"16x16x1": 1}


def _reference_eta_rectangles(x, y):
    """fra31/auto-attack `SquareAttack.eta_rectangles`, transcribed to numpy."""
    delta = np.zeros([x, y], np.float32)
    x_c, y_c = x // 2 + 1, y // 2 + 1
    corner = [x_c - 1, y_c - 1]
    for counter in range(max(x_c, y_c)):
        delta[
            max(corner[0], 0) : min(corner[0] + (2 * counter + 1), x),
            max(0, corner[1]) : min(corner[1] + (2 * counter + 1), y),
        ] += 1.0 / (counter + 1) ** 2
        corner[0] -= 1
        corner[1] -= 1
    return delta / np.sqrt((delta**2).sum())


def _reference_eta(s):
    delta = np.zeros([s, s], np.float32)
    delta[: s // 2] = _reference_eta_rectangles(s // 2, s)
    delta[s // 2 :] = -_reference_eta_rectangles(s - s // 2, s)
    return delta / np.sqrt((delta**2).sum())


@pytest.mark.parametrize("side", [1, 2, 3, 4, 5, 8, 13, 31])
def test_eta_matches_the_reference_loop(side):
    np.testing.assert_allclose(
        eta_pattern(tf.constant(side)).numpy(), _reference_eta(side), atol=1e-6
    )


def _reference_side(i, queries, p_init, n_features, c, norm, rescale=True):
    """fra31/auto-attack `p_selection` (with or without rescale_schedule) and the side s it
    gives."""
    it = int(i / queries * 10000) if rescale else i
    halvings = sum(it > bound for bound in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
    p = p_init / 2**halvings
    if norm == "linf":
        return max(int(round(np.sqrt(p * n_features / c))), 1)
    s = max(int(round(np.sqrt(p * n_features / c))), 3)
    return s + 1 if s % 2 == 0 else s


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("queries, rescale", [(300, True), (5000, True), (5000, False)])
def test_square_side_follows_the_reference_schedule(norm, queries, rescale):
    square = Square(lambda x: x, norm=norm, queries=queries, rescale=rescale)
    scale = queries / 10000 if rescale else 1
    iterations = sorted({0, 1, queries - 1} | {
        round(bound * scale) + offset
        for bound in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
        for offset in (-1, 0, 1)
    } - {queries, queries + 1})  # fmt: skip
    side = tf.function(lambda i: square._side(i, (32, 32, 3)))
    for i in iterations:
        expected = _reference_side(i, queries, 0.8, 32 * 32 * 3, 3, norm, rescale)
        assert int(side(tf.constant(i))) == expected, i


def _reference_l2_update(delta, corners, s, eta, signs, eps):
    """fra31/auto-attack `SquareAttack.attack_single_run`, L2 branch, from `delta_curr` to its
    assignment, for one example in the reference's NCHW (delta [H, W, C]; corners (vh, vw, vh2,
    vw2); eta already transposed or not; signs [C]), in float64. Returns [H, W, C]."""
    vh, vw, vh2, vw2 = corners
    delta_curr = delta.transpose(2, 0, 1)[None].astype(np.float64)
    c = delta_curr.shape[1]
    new_deltas_mask = np.zeros_like(delta_curr)
    new_deltas_mask[:, :, vh : vh + s, vw : vw + s] = 1.0
    norms_window_1 = np.sqrt(
        (delta_curr[:, :, vh : vh + s, vw : vw + s] ** 2).sum((-2, -1), keepdims=True)
    )
    new_deltas_mask_2 = np.zeros_like(delta_curr)
    new_deltas_mask_2[:, :, vh2 : vh2 + s, vw2 : vw2 + s] = 1.0
    norms_image = np.sqrt((delta_curr**2).sum())
    mask_image = np.maximum(new_deltas_mask, new_deltas_mask_2)
    norms_windows = np.sqrt(((delta_curr * mask_image) ** 2).sum((-2, -1), keepdims=True))
    new_deltas = np.ones([1, c, s, s]) * eta.reshape(1, 1, s, s) * signs.reshape(1, c, 1, 1)
    old_deltas = delta_curr[:, :, vh : vh + s, vw : vw + s] / (1e-12 + norms_window_1)
    new_deltas += old_deltas
    new_deltas = (
        new_deltas
        / (1e-12 + np.sqrt((new_deltas**2).sum((-2, -1), keepdims=True)))
        * np.sqrt(np.maximum(eps**2 - norms_image**2, 0.0) / c + norms_windows**2)
    )
    delta_curr[:, :, vh2 : vh2 + s, vw2 : vw2 + s] = 0.0
    delta_curr[:, :, vh : vh + s, vw : vw + s] = new_deltas
    return delta_curr[0].transpose(1, 2, 0)


def test_l2_window_update_budgets_each_channel_as_the_reference():
    """On RGB each channel of the new window gets that channel's own mass in the two squares
    plus a third of the unused budget, so the perturbation has norm ε before its rescaling
    (giving each channel the mass of all three made it up to √3 ε: 1.03–1.35 ε on these)."""
    rng = np.random.default_rng(0)
    side, channels, s, eps = 12, 3, 5, 1.0
    # Disjoint squares, overlapping ones, the same one twice; the last two leave budget unused.
    corners = [(0, 0, 6, 6), (2, 3, 4, 5), (3, 3, 3, 3), (6, 1, 0, 7), (1, 6, 6, 2)]
    used = np.array([1.0, 1.0, 1.0, 0.6, 0.3])  # ‖δ‖ / ε
    delta = rng.normal(size=(len(corners), side, side, channels)) * [1.0, 0.3, 2.0]
    delta *= (eps * used / np.linalg.norm(delta.reshape(len(corners), -1), axis=1))[
        :, None, None, None
    ]
    delta = delta.astype(np.float32)
    etas = [_reference_eta(s).T if rng.random() > 0.5 else _reference_eta(s) for _ in corners]
    signs = np.sign(2 * rng.random((len(corners), channels)) - 1)
    window, window_2, pattern = (
        np.zeros((len(corners), side, side, k), np.float32) for k in (1, 1, channels)
    )
    for b, (vh, vw, vh2, vw2) in enumerate(corners):
        window[b, vh : vh + s, vw : vw + s] = 1.0
        window_2[b, vh2 : vh2 + s, vw2 : vw2 + s] = 1.0
        pattern[b, vh : vh + s, vw : vw + s] = etas[b][..., None] * signs[b]

    ours = l2_window_update(delta, window, window_2, pattern, eps).numpy()

    for b, (vh, vw, _, _) in enumerate(corners):
        expected = _reference_l2_update(delta[b], corners[b], s, etas[b], signs[b], eps)
        np.testing.assert_allclose(ours[b], expected, atol=1e-6)
        # Per channel: its own mass in both squares plus an equal share of the unused budget
        both = np.maximum(window[b], window_2[b])
        unused = max(eps**2 - (delta[b] ** 2).sum(), 0.0)
        window_norms = np.sqrt((ours[b, vh : vh + s, vw : vw + s] ** 2).sum((0, 1)))
        moved = ((delta[b] * both) ** 2).sum((0, 1))
        np.testing.assert_allclose(window_norms, np.sqrt(moved + unused / channels), rtol=1e-5)
        # Elsewhere δ is kept, and the second square is emptied
        np.testing.assert_array_equal(ours[b][both[..., 0] == 0], delta[b][both[..., 0] == 0])
        emptied = (window_2[b] == 1) & (window[b] == 0)
        assert np.all(ours[b][emptied[..., 0]] == 0)
    # So the perturbation has norm ε before its rescaling
    norms = np.linalg.norm(ours.reshape(len(corners), -1), axis=1)
    np.testing.assert_allclose(norms, eps, rtol=1e-5)


@pytest.fixture(scope="module")
def rgb_digits(digits):
    """The digits with small noise of their own in each channel, and a linear model on the
    channels' mean (the grayscale ridge classifier spread over the channels)."""
    kernel, bias, x, y = digits
    rng = np.random.default_rng(1)
    x_rgb = np.clip(x + rng.normal(scale=0.05, size=(*x.shape[:3], 3)), 0, 1).astype(np.float32)
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    # Flatten orders an image's values pixel by pixel, channels innermost
    weights = [np.repeat(kernel / 3, 3, axis=0).astype(np.float32), bias.astype(np.float32)]
    model.get_layer("logits").set_weights(weights)
    return logits_fn(model), x_rgb, y


def test_l2_square_on_rgb_stays_in_budget_and_range(rgb_digits):
    model_fn, x, y = rgb_digits
    x_adv = Square(model_fn, norm="l2", queries=QUERIES)(x, y, eps=EPS["l2"], seed=0).numpy()
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    delta = (x_adv - x).reshape(len(x), -1)
    assert np.linalg.norm(delta, axis=1).max() <= EPS["l2"] + 1e-4
    wrong, fooled = _fooled(model_fn, x, y), _fooled(model_fn, x_adv, y)
    assert fooled.sum() >= wrong.sum() + 10  # measured: 21 wrong, 39 fooled
    np.testing.assert_array_equal(x_adv[~fooled], x[~fooled])


def test_l2_square_on_grayscale_is_what_it_was_before_the_per_channel_budget(digits, attacks):
    """With one channel the per-channel budget is the whole image's: the same search, step by
    step (values recorded with the code before the change, commit 4f8d88c)."""
    _, _, x, y = digits
    square = Square(attacks[0], norm="l2", queries=100)
    x_adv = square(x[:24], y[:24], eps=1.5, seed=3).numpy()
    queries = [5, 57, 101, 101, 101, 101, 74, 2, 101, 101, 101, 27]
    queries += [101, 101, 22, 101, 101, 101, 101, 101, 43, 101, 0, 37]
    assert square.queries_used.numpy().tolist() == queries
    delta = (x_adv - x[:24]).reshape(24, -1)
    fooled = {0: 3.87682, 1: 3.72821, 6: 3.40183, 7: 3.11678, 11: 0.40283, 14: 4.17972}
    fooled.update({20: 6.85543, 23: 3.61806})
    sums = np.zeros(24)
    sums[list(fooled)] = list(fooled.values())
    np.testing.assert_allclose(delta.sum(1), sums, atol=1e-4)


def test_square_rejects_bad_arguments(digits):
    _, _, x, y = digits
    model_fn = logits_fn(_linear(digits))
    with pytest.raises(ValueError, match="Unknown norm 'l1'"):
        Square(model_fn, norm="l1")
    with pytest.raises(ValueError, match="Received: queries=0"):
        Square(model_fn, queries=0)
    with pytest.raises(ValueError, match="Received: p_init=1.5"):
        Square(model_fn, p_init=1.5)
    with pytest.raises(ValueError, match="Received: eps=-0.1"):
        Square(model_fn)(x, y, eps=-0.1)
    with pytest.raises(ValueError, match="one label per image"):
        Square(model_fn)(x, y[:3], eps=0.1)
    with pytest.raises(ValueError, match="side >= 5 for L2"):
        Square(model_fn, norm="l2")(np.zeros((2, 4, 4, 1), np.float32), [0, 1], eps=0.5)


# === The reference, transcribed to numpy (NHWC), for a statistical comparison ===
def _reference_square(predict, x, y, eps, queries, norm, seed):
    """fra31/auto-attack `SquareAttack.perturb` with one restart: its shared square per
    iteration, numpy's RNG for torch's. Returns the adversarial images."""
    rng = np.random.default_rng(seed)

    def sign(shape):
        return np.sign(2 * rng.random(shape) - 1).astype(np.float32)

    def corner(length, s):
        return int((length - s) * rng.random())

    def eta(s):
        return _reference_eta(s).T if rng.random() > 0.5 else _reference_eta(s)

    def norm_2(z):
        return np.sqrt((z**2).reshape(len(z), -1).sum(-1)).reshape(-1, 1, 1, 1)

    def margin(z, y):
        logits = predict(z).copy()
        rows = np.arange(len(z))
        correct, logits[rows, y] = logits[rows, y].copy(), -np.inf
        return correct - logits.max(-1)

    attacked = np.argmax(predict(x), -1) == y
    x0, y0 = x[attacked], y[attacked]
    n, h, w, c = x0.shape
    if norm == "linf":
        x_best = np.clip(x0 + eps * sign([n, 1, w, c]), 0, 1)
    else:
        delta, s = np.zeros_like(x0), h // 5
        for top in range((h - 5 * s) // 2, h - s + 1, s):
            for left in range((h - 5 * s) // 2, w - s + 1, s):
                delta[:, top : top + s, left : left + s] += eta(s)[:, :, None] * sign([n, 1, 1, c])
        x_best = np.clip(x0 + delta / (norm_2(delta) + 1e-12) * eps, 0, 1)
    margin_min = margin(x_best, y0)
    for i in range(queries):
        idx = np.nonzero(margin_min > 0)[0]
        if not len(idx):
            break
        x_curr, x_best_curr = x0[idx], x_best[idx]
        halvings = sum(
            int(i / queries * 10000) > b for b in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
        )
        s = int(round(np.sqrt(0.8 / 2**halvings * h * w)))
        if norm == "linf":
            s = max(s, 1)
            top, left = corner(h, s), corner(w, s)
            step = np.zeros([h, w, c], np.float32)
            step[top : top + s, left : left + s] = 2 * eps * sign([1, 1, c])
            x_new = np.clip(np.clip(x_best_curr + step, x_curr - eps, x_curr + eps), 0, 1)
        else:
            s = max(s, 3) + (max(s, 3) % 2 == 0)
            delta = x_best_curr - x_curr
            top, left, top2, left2 = corner(h, s), corner(w, s), corner(h, s), corner(w, s)
            window = (slice(None), slice(top, top + s), slice(left, left + s))
            both = np.zeros_like(delta)
            both[window] = 1
            both[:, top2 : top2 + s, left2 : left2 + s] = 1
            norm_window = np.sqrt((delta[window] ** 2).sum((1, 2), keepdims=True))
            norm_image = norm_2(delta)
            norm_windows = np.sqrt(((delta * both) ** 2).sum((1, 2), keepdims=True))
            new = eta(s)[None, :, :, None] * sign([len(idx), 1, 1, c])
            new = new + delta[window] / (1e-12 + norm_window)
            scale = np.sqrt(np.maximum(eps**2 - norm_image**2, 0) / c + norm_windows**2)
            new = new / (1e-12 + np.sqrt((new**2).sum((1, 2), keepdims=True))) * scale
            delta[:, top2 : top2 + s, left2 : left2 + s] = 0
            delta[window] = new
            x_new = np.clip(x_curr + delta / (norm_2(delta) + 1e-12) * eps, 0, 1)
        new_margin = margin(x_new, y0[idx])
        better = new_margin < margin_min[idx]
        margin_min[idx] = np.where(better, new_margin, margin_min[idx])
        x_best[idx] = np.where(better[:, None, None, None], x_new, x_best_curr)
    x_adv, fooled = x.copy(), np.argmax(predict(x_best), -1) != y0
    x_adv[np.nonzero(attacked)[0][fooled]] = x_best[fooled]
    return x_adv


@pytest.mark.parametrize("norm", NORMS)
def test_square_is_as_strong_as_the_reference(digits, norm):
    """Same robust accuracy as the reference transcribed to numpy, over seeds (measured on 256
    images, 5 seeds, 100 and 1000 queries: within 0.01 everywhere)."""
    kernel, bias, x, y = digits
    model_fn = logits_fn(_linear(digits))

    def predict(z):
        return z.reshape(len(z), -1) @ kernel + bias

    def accuracy(x_adv):
        return np.mean(np.argmax(predict(x_adv), -1) == y)

    square = Square(model_fn, norm=norm, queries=100)
    ours = [accuracy(square(x, y, eps=EPS[norm], seed=s).numpy()) for s in range(3)]
    reference = [
        accuracy(_reference_square(predict, x, y, EPS[norm], 100, norm, s)) for s in range(3)
    ]
    assert accuracy(x) - np.mean(ours) > 0.15  # the attack does something
    assert abs(np.mean(ours) - np.mean(reference)) < 0.04, (ours, reference)
