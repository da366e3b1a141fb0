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

from tests.helpers import random_images, tiny_model
from tfaux.config import LOOPS, AdversarialConfig, AuxTrainingConfig, RandomSignConfig
from tfaux.training import adversarial, auxiliary_training
from tfaux.training.loops import loop_callbacks, loop_epochs, loop_norm, loop_tasks, with_loop

X = random_images(16, (16, 16, 1), seed=1)  # two steps of 8: one per replica count is too few
Y = np.arange(16) % 4
ADVERSARIAL = AdversarialConfig(eps=0.1, pgd_steps=2, replays=2, ramp_epochs=1, guard="off")
AUXILIARY = AuxTrainingConfig(corruptions=("rotation",), merge_epoch=0)  # batch [clean, T(x)]


def _model(loop):
    return tiny_model(
        loop_tasks(loop, AUXILIARY, 4),
        norm=loop_norm(loop, AUXILIARY, 0.9, synchronized=True),
        # p = 1: every replica draws the same signs
        random_sign=RandomSignConfig(probability=1.0) if loop == "random_sign" else None,
    )


def _steps(loop, strategy, weights):
    with strategy.scope():
        model = _model(loop)
        model.set_weights(weights)
        model = with_loop(model, loop, ADVERSARIAL, batch_size=8, auxiliary=AUXILIARY)
        model.random_start = False  # adversarial loops: a random start draws per replica
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    epochs = loop_epochs(loop, 1, ADVERSARIAL)
    callbacks = loop_callbacks(loop, ADVERSARIAL, lambda: None, AUXILIARY, epochs)
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    return history.history, model.get_weights()


# "auxiliary_no_distill" and "auxiliary_no_merge" are "auxiliary" with one loss term switched off
# (the same step, the same reductions); every other loop is here.
@pytest.mark.parametrize(
    "loop", [loop for loop in LOOPS if loop not in ("auxiliary_no_distill", "auxiliary_no_merge")]
)
def test_two_replicas_train_like_one(loop, mirrored, monkeypatch):
    monkeypatch.setattr(  # deterministic corruptions: their severities differ per replica
        auxiliary_training,
        "random_corruption",
        lambda x, name, seed: tf.clip_by_value(
            x * {"gaussian_noise": 0.5, "rotation": 1.5}[name], 0, 1
        ),
    )
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
