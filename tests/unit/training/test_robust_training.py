"""Robust-training loops: FGSM/PGD adversarial training, Free-AT (δ, schedules), the guard."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import loop_recipe, random_images, tiny_model, with_loop
from tfaux import data
from tfaux.attacks import PGD
from tfaux.config import AdversarialConfig
from tfaux.models import build
from tfaux.models.aux_model import AuxModel
from tfaux.tasks import FourierTask
from tfaux.training import sgd_momentum
from tfaux.training.callbacks import CatastrophicOverfittingGuard
from tfaux.training.loop import create_loop
from tfaux.training.loops.free import FreeATModel, FreeSchedule, free_epochs

X, Y = random_images(16, (16, 16, 1), seed=1), np.arange(16) % 4


SMALL = AdversarialConfig(eps=0.1, pgd_steps=2, replays=2)


def _wrapped(loop, config=SMALL, tasks=(), **kw):
    model = tiny_model(tasks, **kw)
    return with_loop(model, loop, adversarial=config)


@pytest.mark.parametrize("loop", ["fgsm", "fgsm_rs", "pgd", "free", "free_ema", "free_gamma"])
def test_each_loop_fits_a_step_and_changes_the_weights(loop):
    model = _wrapped(loop, tasks=[FourierTask(0.01)])
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    history = model.fit(X, Y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    assert set(history.history) >= {"loss", "logits_loss", "fourier_loss", "accuracy"}
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize("loop", ["fgsm", "fgsm_rs", "pgd"])
def test_adversarial_inputs_are_in_budget_and_harder(loop):
    model = _wrapped(loop, AdversarialConfig(eps=0.1, pgd_steps=3))
    model.compile(optimizer="sgd", jit_compile=False)
    x_adv = model.perturb(tf.constant(X), tf.constant(Y)).numpy()
    assert np.abs(x_adv - X).max() <= 0.1 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1

    def loss(x):
        logits = model(x, training=False)["logits"]
        ce = keras.losses.sparse_categorical_crossentropy(Y, logits, from_logits=True)
        return ce.numpy().mean()

    assert loss(x_adv) > loss(X)


def test_clean_fraction_keeps_the_first_part_of_the_batch_clean():
    model = _wrapped("pgd", AdversarialConfig(eps=0.1, pgd_steps=2, clean_fraction=0.25))
    model.compile(optimizer="sgd", jit_compile=False)
    x_adv = model.perturb(tf.constant(X), tf.constant(Y)).numpy()
    np.testing.assert_array_equal(x_adv[:4], X[:4])
    assert np.abs(x_adv[4:] - X[4:]).max() > 0


@pytest.mark.parametrize("loop", ["pgd", "free_gamma"])
def test_loop_config_round_trip(loop):
    model = _wrapped(loop)
    revived = type(model).from_config(model.get_config())
    assert type(revived) is type(model)
    for key in model.LOOP_PARAMS:
        assert getattr(revived, key) == getattr(model, key), key


def _linear_free_model(beta: float, replays: int) -> FreeATModel:
    """A fixed linear classifier (learning rate 0): ∇ₓ has a constant sign, so δ is predictable."""
    keras.utils.set_random_seed(0)
    images = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(images))
    model = FreeATModel(
        inputs=images, outputs={"logits": logits}, eps=0.1, replays=replays, batch_size=4,
        delta_ema=beta,
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    return model


def test_free_delta_persists_across_replays_and_batches():
    # With an EMA β = 0.5 and a constant gradient sign s, δ follows (1-β)ε, (1-β²)ε, ...:
    # 0.05 after one replay, 0.075 after two, 0.0875 after a third in the next batch. A δ reset
    # per replay or per batch would stay at 0.05.
    model = _linear_free_model(beta=0.5, replays=2)
    x = np.full((4, 4, 4, 1), 0.5, "float32")
    y = np.zeros(4, "int32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(np.abs(model.delta().numpy()), 0.075, rtol=1e-5)
    model.set_schedule(0.1, 1)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(np.abs(model.delta().numpy()), 0.0875, rtol=1e-5)
    # the direction is the loss-increasing one: toward class 1's weights
    w = model.get_layer("dense").kernel.numpy()
    np.testing.assert_array_equal(
        np.sign(model.delta().numpy().reshape(4, 16)), np.tile(np.sign(w[:, 1] - w[:, 0]), (4, 1))
    )


def test_free_delta_stays_in_the_ball_and_the_pixel_range_and_slices_a_short_batch():
    model = _wrapped("free", AdversarialConfig(eps=0.1, replays=3))
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    x = X[:13]  # batches of 8 and 5: the short batch uses the first 5 rows of δ
    model.fit(x, Y[:13], batch_size=8, epochs=2, verbose=0, shuffle=False)
    delta = model.delta().numpy()
    assert delta.shape == (8, 16, 16, 1)
    assert np.abs(delta).max() <= 0.1 + 1e-6
    assert np.all(x[8:13] + delta[:5] >= -1e-6) and np.all(x[8:13] + delta[:5] <= 1 + 1e-6)
    assert np.abs(delta).max() > 0.05
    assert not any("delta" in w.name for w in model.weights)  # δ is state, not a weight


def test_gamma_spreads_the_replays_that_use_delta():
    model = _wrapped("free_gamma", AdversarialConfig(replays=4, gamma=0.5))
    assert [model._uses_delta(r) for r in range(4)] == [False, True, False, True]


def test_free_schedule_grows_m_and_eps_and_retraces():
    schedule = FreeSchedule(0.1, replays=4, ramp_epochs=4)
    eps, replays = zip(*(schedule.at(e) for e in range(5)), strict=True)
    assert eps == pytest.approx((0.025, 0.05, 0.075, 0.1, 0.1))
    assert replays == (2, 3, 3, 4, 4)  # m = 1.75, 2.5, 3.25, 4: halves round up
    assert free_epochs(8, 4) == 2 and free_epochs(8, 4, schedule) == 3  # 2 + 3 + 3 >= 8
    assert create_loop("pgd", loop_recipe()).epochs(8) == 8
    assert create_loop("free", loop_recipe(adversarial=AdversarialConfig(replays=4))).epochs(8) == 2
    model = _wrapped("free", AdversarialConfig(eps=0.1, replays=4))
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    history = model.fit(
        X, Y, batch_size=8, epochs=2, verbose=0, callbacks=[FreeSchedule(0.1, 4, ramp_epochs=2)]
    )
    assert history.history["free_replays"] == [3, 4]
    assert history.history["free_eps"] == pytest.approx([0.05, 0.1])


def test_guard_logs_and_rolls_back_to_the_best_epoch(monkeypatch):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    guard = CatastrophicOverfittingGuard(X, Y, eps=0.1, steps=2, drop=0.2, action="rollback")
    measured = iter([0.5, 0.6, 0.1, 0.6])
    snapshots = []
    monkeypatch.setattr(guard, "accuracy", lambda: next(measured))

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    history = model.fit(X, Y, batch_size=8, epochs=4, verbose=0, callbacks=[Snapshot(), guard])
    assert history.history["train_pgd_accuracy"] == [0.5, 0.6, 0.1]  # stopped after the collapse
    assert guard.collapsed_at == 2
    for restored, best in zip(model.get_weights(), snapshots[1], strict=True):
        np.testing.assert_array_equal(restored, best)


def test_guard_measures_real_pgd_accuracy():
    model = tiny_model()
    guard = CatastrophicOverfittingGuard(X, Y, eps=0.1, steps=2)
    guard.set_model(model)
    guard.on_train_begin()
    pgd = PGD(model, steps=2)
    x_adv = pgd(X, Y, eps=0.1, seed=0)
    expected = np.mean(np.argmax(pgd.model.predict(x_adv).numpy(), -1) == Y)
    assert guard.accuracy() == pytest.approx(expected)


@pytest.mark.slow
def test_pgd_training_beats_standard_training_under_pgd_on_real_digits():
    digits = data.load("digits", batch_size=32, seed=0)
    info = digits.info
    accuracy = {}
    for loop in ("standard", "pgd"):
        keras.utils.set_random_seed(0)
        model = build(
            "small_cnn", input_shape=info.image_shape, num_classes=10, mean=info.mean,
            std=info.std,
        )  # fmt: skip
        model = with_loop(
            model, loop, batch_size=32, adversarial=AdversarialConfig(eps=0.1, pgd_steps=5)
        )
        model.compile(optimizer=sgd_momentum(learning_rate=0.05), jit_compile=False)
        model.fit(digits.train, epochs=8, verbose=0, shuffle=False)
        pgd, correct, total = PGD(model, steps=10), 0, 0
        for x, y in digits.test:
            x_adv = pgd(x, y, eps=0.1)
            correct += int(np.sum(np.argmax(pgd.model.predict(x_adv), -1) == y.numpy()))
            total += len(y)
        accuracy[loop] = correct / total
    assert accuracy["pgd"] > accuracy["standard"] + 0.1, accuracy
    assert isinstance(model, AuxModel)
