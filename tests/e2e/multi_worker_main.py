"""One worker of tests/e2e/test_multi_worker.py:
`python -m tests.e2e.multi_worker_main OUT SCRATCH`.

TF_CONFIG names the cluster and this worker's task. Trains the tiny AuxModel on the shared
in-memory data under `create_strategy("multi_worker")`, writes weights, a TensorBoard log and a
marker through `writable_dir(OUT)`, and leaves its final weights and a JSON summary in SCRATCH
(the test's own channel, not routed). Before training, it tries `fit` once without each patch
of the Keras shim and reports the error, so the test shows each bug still exists.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from tfaux import distribute  # imports TensorFlow without running an op

GLOBAL_BATCH = 8
EPOCHS = 2
LEARNING_RATE = 0.1


def training_data():
    """36 images: four full global batches and a short one, which workers split."""
    import numpy as np

    from tests.helpers import random_images

    return random_images(36, (16, 16, 1), seed=1), np.arange(36, dtype="int32") % 4


def dataset():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(training_data()).batch(GLOBAL_BATCH)


def compiled_model(weights):
    """The tiny model with `weights`, synchronized BatchNorm, SGD (in the caller's scope)."""
    import keras

    from tests.helpers import tiny_model
    from tfaux.models import batch_norm

    model = tiny_model(norm=batch_norm(synchronized=True))
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), jit_compile=False)
    return model


def keras_bug(patch: str, strategy, initial) -> str | None:
    """The error of one `fit` step without the shim's `patch`, or None if it trains.

    Both bugs raise before any collective runs (while building or tracing), identically on
    every worker, so the workers stay in step for the real training afterwards.
    """
    with distribute._without_patch(patch), strategy.scope():
        model = compiled_model(initial)
        try:
            model.fit(
                distribute.shard_by_data(dataset()), steps_per_epoch=1, shuffle=False, verbose=0
            )
        except Exception as error:  # any failure is the finding
            return f"{type(error).__name__}: {error}"[:500]
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("scratch", type=Path)
    args = parser.parse_args(argv)

    # The strategy comes first: it must configure collectives before TensorFlow starts.
    strategy = distribute.create_strategy("multi_worker")

    import keras
    import numpy as np

    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    initial = np.load(args.scratch / "initial.npz")
    initial = [initial[k] for k in initial.files]
    keras_bugs = {name: keras_bug(name, strategy, initial) for name in distribute._keras_patches}
    with strategy.scope():
        model = compiled_model(initial)
    out = distribute.writable_dir(args.out, strategy)
    history = model.fit(
        distribute.shard_by_data(dataset()),
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(str(out / "tensorboard"))],
    )
    # Every worker saves (saving may involve collectives); only the chief's land in OUT.
    model.save_weights(out / "model.weights.h5")
    (out / f"written_by_worker_{index}.txt").write_text(f"pid {os.getpid()}\n")
    np.savez(args.scratch / f"weights-{index}.npz", *model.get_weights())
    summary = {
        "index": index,
        "pid": os.getpid(),
        "chief": distribute.is_chief(strategy),
        "chief_pid": distribute.chief_value(os.getpid(), strategy),
        "replicas": strategy.num_replicas_in_sync,
        "shim": distribute._shim_applied,
        "keras_bugs": keras_bugs,
        "keras": keras.__version__,
        "wrote_to": str(out),
        "history": history.history,
    }
    distribute.remove_worker_dirs()
    summary["wrote_to_exists_after_cleanup"] = Path(summary["wrote_to"]).exists()
    (args.scratch / f"summary-{index}.json").write_text(json.dumps(summary, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
