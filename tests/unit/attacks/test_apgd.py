"""APGD against its references: IBM ART's implementation, the paper's schedule, numpy losses and a
linear model whose adversarial distances are known."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import linear_problem, random_images, tiny_model
from tfaux.attacks import logits_fn
from tfaux.attacks.apgd import APGD, checkpoints, dlr_loss, targeted_dlr_loss


def _accuracy(model, x, y) -> np.ndarray:
    return np.argmax(logits_fn(model)(tf.constant(x)).numpy(), -1) == y


@pytest.mark.parametrize(
    "loss, art_loss", [("ce", "cross_entropy"), ("dlr", "difference_logits_ratio")]
)
def test_apgd_agrees_with_ibm_art_within_one_point(digits_model, loss, art_loss):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ART warns that PyTorch is missing
        from art.attacks.evasion import AutoProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    model, x, y = digits_model
    eps = 0.1
    ours = APGD(model, loss=loss, steps=100)(x, y, eps=eps).numpy()
    classifier = TensorFlowV2Classifier(
        model,
        nb_classes=10,
        input_shape=(8, 8, 1),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )
    art = AutoProjectedGradientDescent(
        classifier, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=100, targeted=False,
        nb_random_init=1, batch_size=len(x), loss_type=art_loss, verbose=False,
    ).generate(x, y)  # fmt: skip
    ours_robust, art_robust = _accuracy(model, ours, y), _accuracy(model, art, y)
    clean = _accuracy(model, x, y).mean()
    assert 0.2 < ours_robust.mean() < clean - 0.2  # a budget where the attack matters
    assert abs(ours_robust.mean() - art_robust.mean()) <= 0.01


def test_checkpoints_follow_the_papers_recurrence():
    """p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), checks at ⌈p_j·N⌉."""
    steps = 100
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    expected = [round(q * steps) - 1 for q in p[1:] if round(q * steps) <= steps]
    assert [i for i, _ in checkpoints(steps)] == expected
    assert [w for _, w in checkpoints(steps)][:3] == [22, 19, 16]


def test_dlr_losses_equal_numpy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(32, 10)).astype("float32")
    y = rng.integers(0, 10, size=32).astype("int32")
    t = (y + 1 + rng.integers(0, 9, size=32).astype("int32")) % 10
    s = np.sort(z, axis=1)
    zy = z[np.arange(32), y]
    other = np.max(np.where(np.eye(10)[y] > 0, -np.inf, z), axis=1)
    expected = -(zy - other) / (s[:, -1] - s[:, -3] + 1e-12)
    np.testing.assert_allclose(dlr_loss(tf.constant(z), tf.constant(y)).numpy(), expected, 1e-5)
    targeted = -(zy - z[np.arange(32), t]) / (s[:, -1] - 0.5 * (s[:, -3] + s[:, -4]) + 1e-12)
    np.testing.assert_allclose(
        targeted_dlr_loss(tf.constant(z), tf.constant(y), tf.constant(t)).numpy(), targeted, 1e-5
    )


@pytest.mark.parametrize("loss", ["ce", "dlr", "dlr_targeted"])
def test_apgd_finds_every_guaranteed_adversarial_example_of_a_linear_model(loss):
    model, x, y, distance = linear_problem()
    eps = 0.05
    x_adv = APGD(model, loss=loss, steps=20)(x, y, eps=eps).numpy()
    wrong = ~_accuracy(model, x_adv, y)
    assert np.all(wrong[distance < 0.99 * eps])
    assert not np.any(wrong[distance > eps])
    assert (distance < eps).sum() > 10 and (distance > eps).sum() > 10
    # Where nothing was found the clean image comes back.
    np.testing.assert_array_equal(x_adv[~wrong], x[~wrong])


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.5)])
def test_apgd_stays_in_budget_and_box_and_traces_once(norm, eps):
    model = tiny_model(num_classes=10)
    x, y = random_images(8, (16, 16, 1), seed=3), np.arange(8) % 10
    attack = APGD(model, norm=norm, loss="dlr_targeted", steps=8)
    results = [attack(x, y, eps=e, seed=s, target_rank=r) for e, s, r in
               [(eps, 0, 2), (eps / 2, 1, 3), (eps, 0, 2)]]  # fmt: skip
    assert attack.tracing_counts() == {"16x16x1": 1}
    np.testing.assert_array_equal(results[0], results[2])  # same seed, same images
    for result, budget in zip(results, (eps, eps / 2, eps), strict=True):
        delta = (result.numpy() - x).reshape(8, -1)
        size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)
        assert size.max() <= budget * (1 + 1e-5)
        assert 0 <= result.numpy().min() and result.numpy().max() <= 1


def test_apgd_never_returns_a_perturbed_misclassified_point():
    model = tiny_model(num_classes=10)
    x, y = random_images(16, (16, 16, 1), seed=4), np.arange(16) % 10
    wrong = ~_accuracy(model, x, y)
    assert wrong.any()
    x_adv = APGD(model, steps=5)(x, y, eps=0.05).numpy()
    np.testing.assert_array_equal(x_adv[wrong], x[wrong])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"norm": "l1"}, "Received: norm='l1'"),
        ({"loss": "hinge"}, "Received: loss='hinge'"),
        ({"steps": 0}, "Received: steps=0"),
        ({"rho": 1.5}, "Received: rho=1.5"),
    ],
)
def test_apgd_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        APGD(tiny_model(), **kwargs)


def test_apgd_counts_the_points_whose_gradient_is_zero_at_the_start():
    model, x, y, _ = linear_problem(32)
    inputs = keras.Input((4, 4, 1))
    frozen = keras.layers.Lambda(lambda t: keras.ops.stop_gradient(t))(inputs)
    masked = keras.Model(inputs, model(frozen))
    attack = APGD(masked, loss="dlr", steps=3)
    attack(x, y, eps=0.05)
    assert attack.zero_gradients == 32  # every point is classified correctly, none has a gradient
    honest = APGD(model, loss="dlr", steps=3)
    honest(x, y, eps=0.05)
    assert honest.zero_gradients == 0
