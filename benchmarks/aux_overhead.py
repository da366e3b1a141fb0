"""What do auxiliary heads cost? Training img/s of plain vs +Recon vs +FT vs +both on one
backbone, and exported-SavedModel vs Keras-model inference latency — measured side by side in
one run and printed as ratios (absolute numbers depend on the machine; ratios much less).

    python benchmarks/aux_overhead.py [--backbone resnet8] [--steps 30] [--batch 128]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfaux import build, create_task  # noqa: E402
from tfaux.export import saved_model  # noqa: E402

VARIANTS = {
    "plain": (),
    "+recon": ("recon",),
    "+fourier": ("fourier",),
    "+both": ("recon", "fourier"),
}


def compiled_model(backbone: str, tasks, x, y, batch: int, steps: int):
    keras.utils.set_random_seed(0)
    model = build(
        backbone,
        input_shape=x.shape[1:],
        num_classes=10,
        tasks=[create_task(t, 0.01) for t in tasks],
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).take(steps).cache()
    model.fit(data, epochs=1, verbose=0, shuffle=False)  # trace and warm up
    return model, data


def warmed_up(model, x, y, batch: int, steps: int):
    """`model` compiled with SGD and traced on `steps` cached batches; returns (model, data)."""
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).take(steps).cache()
    model.fit(data, epochs=1, verbose=0, shuffle=False)  # trace and warm up
    return model, data


def random_data_info(x: np.ndarray, num_classes: int = 10):
    """A `DatasetInfo` for `random_images`, so `tfaux.experiment.build_model` builds on them."""
    from tfaux.data import DatasetInfo

    return DatasetInfo(
        name="fashion_mnist",
        num_classes=num_classes,
        class_names=tuple(map(str, range(num_classes))),
        image_shape=tuple(x.shape[1:]),
        mean=(0.5,) * x.shape[-1],
        std=(0.29,) * x.shape[-1],
        num_train=len(x),
        num_val=0,
        num_test=0,
    )


def random_images(steps: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """`steps` batches of random 28x28x1 images and labels (step time does not depend on them)."""
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch, 28, 28, 1), dtype=np.float32)
    return x, rng.integers(0, 10, len(x))


def step_time_arguments(doc: str, steps: int = 20) -> argparse.Namespace:
    """The step-time benchmarks' options (backbone, steps, batch, repeats, --quick), parsed."""
    args = step_time_parser(doc, steps).parse_args()
    if args.quick:
        args.steps, args.repeats = 3, 1
    return args


def step_time_parser(doc: str, steps: int = 20) -> argparse.ArgumentParser:
    """The step-time benchmarks' common options (backbone, steps, batch, repeats, --quick)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--backbone", default="resnet8")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 steps, 1 repeat")
    return parser


def median_step_times(models: dict, repeats: int) -> dict[str, float]:
    """Median training step time (s) of every `(model, data)`, measured round robin so that a
    slow phase of the machine hits every variant alike."""
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, (model, data) in models.items():
            times[name] += step_times(model, data).steps
    return {name: statistics.median(t) for name, t in times.items()}


class _StepTimes(keras.callbacks.Callback):
    """Wall time of every training step; the first step of an epoch is kept apart."""

    def __init__(self):
        super().__init__()
        self.steps, self.first = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._last, self._index = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        (self.first if self._index == 0 else self.steps).append(now - self._last)
        self._last, self._index = now, self._index + 1


def step_times(model, data) -> _StepTimes:
    timer = _StepTimes()
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    return timer


def inference_latency(fn, x, repeats: int) -> float:
    fn(x)  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet8")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.random((args.steps * args.batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, len(x))

    print(
        f"training throughput, {args.backbone} on 28x28x1, batch {args.batch}, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    print("| variant | img/s (median step) | ratio to plain | first step of each epoch, s |")
    print("|---|---|---|---|")
    models = {
        name: compiled_model(args.backbone, tasks, x, y, args.batch, args.steps)
        for name, tasks in VARIANTS.items()
    }
    # Round robin, so a slow phase of the machine hits every variant alike. Throughput comes
    # from the median step time; the first step of each epoch is reported apart because it
    # sometimes stalls for seconds (docs/results.md) and would swamp a 30-step epoch.
    timers = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, (model, data) in models.items():
            timers[name].append(step_times(model, data))
    rates, first_steps = {}, {}
    for name, runs in timers.items():
        rates[name] = args.batch / statistics.median(t for r in runs for t in r.steps)
        first_steps[name] = [round(t, 2) for r in runs for t in r.first]
    for name in VARIANTS:
        print(
            f"| {name} | {rates[name]:.0f} | {rates[name] / rates['plain']:.2f} "
            f"| {first_steps[name]} |"
        )

    model = models["+both"][0]
    batch = x[: args.batch]

    @tf.function
    def keras_fn(images):
        return model(images, training=False)["logits"]

    with tempfile.TemporaryDirectory() as tmp:
        serving = tf.saved_model.load(str(saved_model(model, f"{tmp}/m"))).signatures[
            "serving_default"
        ]
        exported = inference_latency(lambda im: serving(images=im)["logits"], batch, 50)
        keras_all = inference_latency(lambda im: model(im, training=False)["logits"], batch, 50)
        keras_compiled = inference_latency(keras_fn, batch, 50)
    print(f"\ninference latency, batch {args.batch} (model trained with both aux heads)")
    print("| model | ms/batch | ratio to exported |\n|---|---|---|")
    for name, seconds in [
        ("exported SavedModel (logits only)", exported),
        ("Keras model, tf.function (unused heads pruned)", keras_compiled),
        ("Keras model, eager call, all heads", keras_all),
    ]:
        print(f"| {name} | {1000 * seconds:.1f} | {seconds / exported:.2f} |")


if __name__ == "__main__":
    main()
