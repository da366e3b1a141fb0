"""Every training loop under MirroredStrategy: 2 replicas give the loss and weights of 1.

Randomness that differs per replica by design (random starts, corruption severities, random
signs) is made deterministic here, so the comparison isolates how each loop splits and
reduces its batch.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import loop_model, loop_recipe, random_images, small_loop_settings
from tfaux.config import RandomSignConfig
from tfaux.training.loop import create_loop, list_loops
from tfaux.training.loops import adversarial, auxiliary_training, trades

X = random_images(16, (16, 16, 1), seed=1)  # two steps of 8: one per replica count is too few
Y = np.arange(16) % 4
SETTINGS = {
    **small_loop_settings(),  # Auxiliary Training's batch: [clean, T(x)]
    "random_sign": RandomSignConfig(probability=1.0),  # p = 1: every replica draws the same signs
}


def _trades_from_a_fixed_start(model, x, **kwargs):
    # TRADES' Gaussian start draws per replica; a start that is a function of the pixels does not.
    # No KL steps either: near x the KL's gradient is near zero, and the signs of its smallest
    # entries follow the rounding of the replicas' summed gradients (after TRADES' third pass,
    # 1e-8 weight differences moved 10 pixels of the second step's x′ by 2α).
    start = x + kwargs["eps"] * tf.cos(1e4 * x)
    return _TRADES_EXAMPLES(model, x, **{**kwargs, "start": start, "steps": 0})


_TRADES_EXAMPLES = trades.trades_examples


def _model(loop):
    return loop_model(loop, synchronized=True, **SETTINGS)


def _steps(loop, strategy, weights):
    with strategy.scope():
        model = _model(loop)
        model.set_weights(weights)
        model.random_start = False  # adversarial loops: a random start draws per replica
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    spec = create_loop(loop, loop_recipe(**SETTINGS))
    epochs = spec.epochs(1)
    callbacks = spec.callbacks(epochs)
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    return history.history, model.get_weights()


# "auxiliary_no_distill" and "auxiliary_no_merge" are "auxiliary" with one loss term switched off
# (the same step, the same reductions); every other loop is here.
@pytest.mark.parametrize(
    "loop",
    [loop for loop in list_loops() if loop not in ("auxiliary_no_distill", "auxiliary_no_merge")],
)
def test_two_replicas_train_like_one(loop, mirrored, monkeypatch):
    monkeypatch.setattr(  # deterministic corruptions: their severities differ per replica
        auxiliary_training,
        "random_corruption",
        lambda x, name, seed: tf.clip_by_value(
            x * {"gaussian_noise": 0.5, "rotation": 1.5}[name], 0, 1
        ),
    )
    monkeypatch.setattr(trades, "trades_examples", _trades_from_a_fixed_start)
    monkeypatch.setattr(  # auxiliary_pgd: no random start
        auxiliary_training,
        "adversarial_examples",
        functools.partial(adversarial.adversarial_examples, random_start=False),
    )
    weights = _model(loop).get_weights()
    one, w_one = _steps(loop, tf.distribute.get_strategy(), weights)
    two, w_two = _steps(loop, mirrored, weights)
    assert set(one) == set(two)
    for key in one:
        np.testing.assert_allclose(one[key], two[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(w_one, w_two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
