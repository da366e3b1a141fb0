"""Seed 004 fidelity (issue 16): what Free-AT's δ ascends, the (ε, m) schedule, the denoiser's
noise report."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_images, tiny_model, with_loop
from tfaux.config import AdversarialConfig
from tfaux.tasks import ReconTask
from tfaux.training.loops.free import FreeATModel, FreeSchedule, free_epochs

EPS = 0.1
X, Y = random_images(8, (16, 16, 1), seed=3), np.arange(8) % 4


def _first_delta(delta_loss: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """δ after one replay of one batch (lr 0: the weights stay), and ∂CE/∂x, ∂total/∂x at x."""
    config = AdversarialConfig(eps=EPS, replays=1, free_delta_loss=delta_loss)
    # λ = 100: the reconstruction term dominates the total loss and its input gradient
    model = with_loop(tiny_model([ReconTask(100.0)]), "free", adversarial=config, batch_size=8)
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    x = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = model(x, training=True)
        ce = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(Y, outputs["logits"], from_logits=True)
        )
        # δ perturbs the input only: the reconstruction target is the clean image, a constant
        target = tf.stop_gradient(x)
        total = ce + 100.0 * tf.reduce_mean(tf.square(outputs["recon"] - target))
    grad_ce, grad_total = tape.gradient(ce, x).numpy(), tape.gradient(total, x).numpy()
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # δ starts at 0
    return model.delta().numpy(), grad_ce, grad_total


def _expected(gradient: np.ndarray) -> np.ndarray:
    return np.clip(X + EPS * np.sign(gradient), 0.0, 1.0) - X


@pytest.mark.parametrize("delta_loss", ["classifier", "total"])
def test_free_delta_ascends_the_cross_entropy_by_default_and_the_total_loss_as_an_option(
    delta_loss,
):
    delta, grad_ce, grad_total = _first_delta(delta_loss)
    # The two directions really differ here (else the test could not tell them apart)
    assert np.mean(np.sign(grad_ce) != np.sign(grad_total)) > 0.2
    gradient = grad_ce if delta_loss == "classifier" else grad_total
    # Compare where the gradient's sign is unambiguous (float rounding between graph and eager)
    clear = np.abs(gradient) > 1e-4 * np.abs(gradient).max()
    assert clear.mean() > 0.9
    np.testing.assert_allclose(delta[clear], _expected(gradient)[clear], atol=1e-6)


def test_free_delta_loss_is_validated_and_round_trips():
    with pytest.raises(ValueError, match="free_delta_loss"):
        AdversarialConfig(free_delta_loss="aux")
    config = AdversarialConfig(free_delta_loss="total")
    model = with_loop(tiny_model([ReconTask(1.0)]), "free", adversarial=config)
    assert model.delta_loss == "total"
    assert FreeATModel.from_config(model.get_config()).delta_loss == "total"
    assert with_loop(tiny_model(), "free_ema").delta_loss == "classifier"


@pytest.mark.parametrize(
    ("ramp", "expected"),
    [
        # t = 0.5: m = 1 + 0.5·3 = 2.5 rounds up to 3 (Python's round gives 2)
        (2, [(0.05, 3), (0.1, 4), (0.1, 4)]),
        # t = 0.25, 0.5, 0.75, 1: m = 1.75, 2.5, 3.25, 4 → 2, 3, 3, 4
        (4, [(0.025, 2), (0.05, 3), (0.075, 3), (0.1, 4), (0.1, 4)]),
    ],
)
def test_free_schedule_rounds_halves_up(ramp, expected):
    schedule = FreeSchedule(0.1, replays=4, ramp_epochs=ramp)
    got = [schedule.at(e) for e in range(len(expected))]
    assert [m for _, m in got] == [m for _, m in expected]
    assert [e for e, _ in got] == pytest.approx([e for e, _ in expected])
    # natural training's 8 optimizer steps: 3 + 4 + 4 (ramp 2), 2 + 3 + 3 (ramp 4)
    assert free_epochs(8, 4, schedule) == 3
