"""Per-step schedules: one-cycle and step decay against numpy references, serialization round
trips, and the rate an optimizer actually applies at step k."""

import json

import keras
import numpy as np
import pytest

from tfaux.config import Recipe, TrainingConfig
from tfaux.experiment import step_learning_rates
from tfaux.training.schedules import one_cycle, sgd_momentum, step_decay

# Start, inside the warm-up, its last step and end, the cosine, the end, beyond the end.
CYCLE_STEPS = (0, 1, 10, 19, 20, 21, 40, 60, 80, 99, 100, 101, 1000)
# Around each boundary of 300 "epochs" of one step: 100, 200, 290 (seed 001's epochs).
STEP_STEPS = (0, 1, 99, 100, 101, 199, 200, 201, 289, 290, 291, 299, 300, 10_000)


def _one_cycle_reference(step, *, peak, total, warmup, final):
    """Written from the definition: linear 0 → peak over `warmup` steps, cosine to
    final·peak at `total`, constant after."""
    s = float(step)
    if s < warmup:
        return peak * s / warmup
    t = min(s, total)
    cosine = 0.5 * (1 + np.cos(np.pi * (t - warmup) / (total - warmup)))
    return peak * (final + (1 - final) * cosine)


def _step_reference(step, *, learning_rate, boundary_steps, factor):
    """PyTorch `MultiStepLR`: one more factor from each boundary step on."""
    return learning_rate * factor ** np.searchsorted(boundary_steps, step, side="right")


def _rates(schedule, steps):
    # An int64 step, as `optimizer.iterations` passes it.
    return np.array([float(schedule(keras.ops.convert_to_tensor(s, "int64"))) for s in steps])


@pytest.mark.parametrize("final", [0.0, 0.1])
def test_one_cycle_matches_numpy_reference(final):
    schedule = one_cycle(0.2, total_steps=100, warmup_fraction=0.2, final_fraction=final)
    expected = [
        _one_cycle_reference(s, peak=0.2, total=100, warmup=20, final=final) for s in CYCLE_STEPS
    ]
    np.testing.assert_allclose(_rates(schedule, CYCLE_STEPS), expected, rtol=1e-5, atol=1e-7)
    # Anchors by hand: half-way up, the peak, half-way down, the floor, held after the end.
    at = dict(zip(CYCLE_STEPS, _rates(schedule, CYCLE_STEPS), strict=True))
    floor = 0.2 * final
    assert at[0] == 0.0
    assert at[10] == pytest.approx(0.1)
    assert at[20] == pytest.approx(0.2)
    assert at[60] == pytest.approx((0.2 + floor) / 2)
    assert at[100] == pytest.approx(floor, abs=1e-7)
    assert at[1000] == pytest.approx(floor, abs=1e-7)


def test_one_cycle_without_warmup_starts_at_the_peak():
    schedule = one_cycle(0.1, total_steps=50, warmup_fraction=0.0)
    steps = (0, 1, 25, 49, 50, 80)
    expected = [_one_cycle_reference(s, peak=0.1, total=50, warmup=0, final=0.0) for s in steps]
    np.testing.assert_allclose(_rates(schedule, steps), expected, rtol=1e-5, atol=1e-7)
    assert _rates(schedule, [0])[0] == pytest.approx(0.1)


def test_step_decay_matches_numpy_reference():
    schedule = step_decay(0.1, total_steps=300)
    expected = [
        _step_reference(s, learning_rate=0.1, boundary_steps=[100, 200, 290], factor=0.1)
        for s in STEP_STEPS
    ]
    np.testing.assert_allclose(_rates(schedule, STEP_STEPS), expected, rtol=1e-5)
    at = dict(zip(STEP_STEPS, _rates(schedule, STEP_STEPS), strict=True))
    # The first step of "epoch 100" is the first at 0.01, as in the paper's 0-based PyTorch loop.
    assert at[99] == pytest.approx(0.1) and at[100] == pytest.approx(0.01)
    assert at[290] == pytest.approx(1e-4) and at[10_000] == pytest.approx(1e-4)


def test_step_decay_with_several_steps_per_epoch_and_custom_boundaries():
    # 3 steps per epoch of 300 epochs: the decays fall on the first step of epochs 100, 200, 290.
    schedule = step_decay(0.1, total_steps=900)
    steps = (0, 299, 300, 599, 600, 869, 870, 899, 2000)
    expected = [
        _step_reference(s, learning_rate=0.1, boundary_steps=[300, 600, 870], factor=0.1)
        for s in steps
    ]
    np.testing.assert_allclose(_rates(schedule, steps), expected, rtol=1e-5)
    # ImageNet's recipe (÷10 at epochs 30 and 60 of 90), ×0.2 instead of ÷10.
    schedule = step_decay(0.4, total_steps=90, boundaries=(1 / 3, 2 / 3), factor=0.2)
    steps = (0, 29, 30, 59, 60, 89, 90)
    expected = [
        _step_reference(s, learning_rate=0.4, boundary_steps=[30, 60], factor=0.2) for s in steps
    ]
    np.testing.assert_allclose(_rates(schedule, steps), expected, rtol=1e-5)


SCHEDULES = {
    "one_cycle": (
        lambda: one_cycle(0.2, total_steps=100, final_fraction=0.05),
        lambda s: _one_cycle_reference(s, peak=0.2, total=100, warmup=20, final=0.05),
    ),
    "step_decay": (
        lambda: step_decay(0.1, total_steps=300),
        lambda s: _step_reference(s, learning_rate=0.1, boundary_steps=[100, 200, 290], factor=0.1),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_serialization_round_trip(name):
    make, _ = SCHEDULES[name]
    schedule = make()
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    steps = CYCLE_STEPS + STEP_STEPS
    np.testing.assert_array_equal(_rates(restored, steps), _rates(schedule, steps))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_optimizer_config_round_trip_resumes_at_the_same_rate(name):
    """What `BackupAndRestore` relies on: the rate is a function of the restored step alone."""
    make, reference = SCHEDULES[name]
    optimizer = sgd_momentum(make(), 0.9, 5e-4)
    config = json.loads(json.dumps(optimizer.get_config()))
    restored = keras.optimizers.SGD.from_config(config)
    assert restored.get_config()["learning_rate"] == optimizer.get_config()["learning_rate"]
    restored.build([keras.Variable(np.zeros(3, "float32"))])
    for k in (0, 20, 57, 150, 295, 400):
        restored.iterations.assign(k)
        assert float(restored.learning_rate) == pytest.approx(reference(k), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_sgd_applies_the_scheduled_rate_at_each_step(name):
    """Plain SGD on a constant gradient of 1 moves the variable by exactly the rate of each
    step, so the sum of the moves checks every rate used, not just the one reported."""
    make, reference = SCHEDULES[name]
    optimizer = sgd_momentum(make(), momentum=0.0, weight_decay=None)
    variable = keras.Variable(0.0)
    moved = 0.0
    for k in range(110):  # through one_cycle's warm-up, cosine and end, step_decay's first cut
        assert int(optimizer.iterations) == k
        assert float(optimizer.learning_rate) == pytest.approx(reference(k), rel=1e-5, abs=1e-7)
        optimizer.apply([keras.ops.ones(())], [variable])
        moved += reference(k)
    assert float(variable) == pytest.approx(-moved, rel=1e-4)


def test_saved_model_file_keeps_the_schedule_position(tmp_path):
    schedule = one_cycle(0.2, total_steps=100)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=sgd_momentum(schedule, 0.9, 5e-4), loss="mse")
    x = np.random.default_rng(0).normal(size=(24, 4)).astype("float32")
    model.fit(x, x[:, :2], batch_size=8, epochs=1, verbose=0)  # 3 steps
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert int(loaded.optimizer.iterations) == 3
    assert float(loaded.optimizer.learning_rate) == pytest.approx(
        _one_cycle_reference(3, peak=0.2, total=100, warmup=20, final=0.0), rel=1e-5
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peak_learning_rate": 0.0, "total_steps": 10},
        {"peak_learning_rate": 0.1, "total_steps": 0},
        {"peak_learning_rate": 0.1, "total_steps": 10, "warmup_fraction": 1.0},
        {"peak_learning_rate": 0.1, "total_steps": 10, "final_fraction": 1.5},
    ],
)
def test_one_cycle_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="Received: peak_learning_rate="):
        one_cycle(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"learning_rate": -0.1},
        {"learning_rate": 0.1, "factor": 0.0},
        {"learning_rate": 0.1, "boundaries": (2 / 3, 1 / 3)},
        {"learning_rate": 0.1, "boundaries": (0.5, 1.0)},
        {"learning_rate": 0.1, "boundaries": ()},
    ],
)
def test_step_decay_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="Received: learning_rate="):
        step_decay(total_steps=300, **kwargs)


def test_step_decay_applies_coinciding_cuts_together_in_a_short_run():
    # 2 steps: the boundaries 1/3, 2/3 and 29/30 fall on steps 1, 1 and 2.
    schedule = step_decay(0.1, total_steps=2)
    rates = [float(schedule(step)) for step in range(4)]
    np.testing.assert_allclose(rates, [0.1, 0.1 * 0.01, 0.1 * 0.001, 0.1 * 0.001], rtol=1e-6)


def test_step_learning_rates_are_the_schedule_per_step_or_the_logged_rate_per_epoch():
    # The rates a stretch of a finished fit took (Auxiliary Training's stage 2, issue 24).
    step = Recipe("x", training=TrainingConfig(epochs=3, learning_rate=0.1, schedule="step"))
    rates = step_learning_rates(step, 40, {}, 75, 120)
    # ÷10 from steps 40, 80 and 116 (1/3, 2/3, 29/30 of 120): the last 45 steps.
    expected = [0.01] * 5 + [0.001] * 36 + [0.0001] * 4
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    plateau = Recipe("x", training=TrainingConfig(epochs=3, learning_rate=0.1))
    logged = {"learning_rate": [0.1, 0.02, 0.004]}
    np.testing.assert_allclose(
        step_learning_rates(plateau, 4, logged, 3, 12), [0.1] + [0.02] * 4 + [0.004] * 4
    )
    with pytest.raises(ValueError, match="Expected 0 <= start <= stop"):
        step_learning_rates(plateau, 4, logged, 5, 4)
