"""Test set-up: two logical CPU devices, so distribution tests run on any machine; a check that
no test writes into the checkout."""

import os
from pathlib import Path

from tfaux.console import quiet_tensorflow_start

quiet_tensorflow_start()  # xdist workers would print TensorFlow's start-up after pytest's summary

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfaux.data.sources import load_raw  # noqa: E402

# Must happen before TensorFlow initializes its devices, i.e. before any test runs an op.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


# Under `pytest -n N` with N >= the cores, the N processes share them: one compute thread each
# keeps them from oversubscribing the machine (each would start a thread per core), and the CLI
# runs the tests start inherit it.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) >= (os.cpu_count() or 1):
    tf.config.threading.set_intra_op_parallelism_threads(1)
    os.environ["TF_NUM_INTRAOP_THREADS"] = "1"


CHECKOUT = Path(__file__).resolve().parents[1]


def _outputs() -> set[Path]:
    """Everything under the checkout's default output folders (their README aside)."""
    found = set()
    for folder in ("runs", "savedmodels"):
        found |= {p for p in (CHECKOUT / folder).glob("*") if p.name != "README.md"}
    return found


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean():
    """Tests write only to temporary directories: a test that ran a recipe with the default
    `runs/` or `savedmodels/` fails the session here (it once left runs/seed003_...)."""
    before = _outputs()
    yield
    new = sorted(str(p.relative_to(CHECKOUT)) for p in _outputs() - before)
    assert not new, f"tests wrote into the checkout: {new}; pass tmp_path as --runs-dir"


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session: separate instances
    in one process can reuse collective instance keys and abort synchronized BatchNorm with
    "Shape mismatch in the collective instance" (seen when two test files each made their own)."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy


@pytest.fixture(scope="session")
def digits_model():
    """A small CNN trained for a few epochs on scikit-learn's digits, and 150 test digits."""
    raw = load_raw("digits")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(raw.x_train / 255.0, raw.y_train, epochs=8, batch_size=32, verbose=0)
    return model, raw.x_test[:150].astype("float32") / 255.0, raw.y_test[:150].astype("int32")
