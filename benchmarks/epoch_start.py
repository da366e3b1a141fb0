"""Do epochs and evaluation passes start at full speed? First-step time / steady step time for
every epoch of a 3-epoch fit and for repeated evaluation passes: tfaux's runner against Keras'
default way of feeding the same pipelines, side by side in one run.

The stall this measures: a tf.data iterator with autotuning runs a model thread, and the
iterator's destructor joins it. Keras makes a new iterator per epoch (and per validation pass),
so the old one is destroyed when the next epoch starts; on 2 busy cores the join took 2-4 s now
and then (`py-spy dump --native` shows the main thread in `~LogicalThreadWrapper` under
`RootDataset::Iterator::~Iterator`). tfaux turns autotuning off in its pipelines and gives `fit`
one iterator per split for the whole fit (`tfaux.data.pipeline.repeated`).

Rows: "runner" trains through `tfaux.experiment` as the runner does (its pipelines, callbacks,
validation and per-epoch PGD accuracy; a callback records every training and validation batch);
"Keras default"
fits the same model and data with a new iterator per epoch and autotuning on; "new iterator,
autotune off" isolates the autotuning model. Evaluation passes (compiled clean predictions and
PGD-10 over the test split, a new iterator each pass) run on the trained model with autotuning
off and on. Goal: ratio <= 2 for every epoch after the first (whose first step traces the train
step) and every pass after the first of its kind.

    python benchmarks/epoch_start.py [--train-size 20000] [--epochs 3] [--passes 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402

from tfaux import build, data, experiment  # noqa: E402
from tfaux.attacks import PGD  # noqa: E402
from tfaux.config import DataConfig, MonitorConfig, Recipe, TrainingConfig  # noqa: E402
from tfaux.data.pipeline import labels_of  # noqa: E402
from tfaux.models import primary_classifier  # noqa: E402
from tfaux.training import sgd_momentum  # noqa: E402

GOAL = 2.0


class BatchTimes(keras.callbacks.Callback):
    """Seconds of every training batch per epoch, and of every validation batch per epoch,
    measured from the end of the previous batch (or the epoch/pass start): so the time of making
    a new iterator, and of destroying the old one, falls on the first batch, where users see it.
    Keeps the trained model for the evaluation passes."""

    def on_train_begin(self, logs=None):
        self.train, self.validation = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.train.append([])
        self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.train[-1].append(now - self._last)
        self._last = now

    def on_test_begin(self, logs=None):
        self.validation.append([])
        self._last_test = time.perf_counter()

    def on_test_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.validation[-1].append(now - self._last_test)
        self._last_test = now


def ratio(times: list[float]) -> tuple[float, float, float]:
    """(first, steady, first / steady); steady is the median of the full batches after the first
    (a short last batch would lower it)."""
    steady = statistics.median(times[1:-1] if len(times) > 2 else times[1:])
    return times[0], steady, times[0] / steady


def timed_passes(make_iterable, step, passes: int) -> list[list[float]]:
    """Per-batch seconds of `passes` passes of `step(batch)` over fresh iterables."""
    result = []
    for _ in range(passes):
        times, last = [], time.perf_counter()
        for batch in make_iterable():
            step(batch)
            now = time.perf_counter()
            times.append(now - last)
            last = now
        result.append(times)
    return result


def runner_fit(args, root: Path) -> BatchTimes:
    """A one-variant recipe trained as the runner trains it (`tfaux.experiment`: its pipelines,
    callbacks and `fit`), timed by a `BatchTimes` callback."""
    recipe = Recipe(
        name="epoch_start",
        variants=("none",),
        data=DataConfig(train_size=args.train_size, test_size=args.test_size),
        training=TrainingConfig(epochs=args.epochs),
        monitor=MonitorConfig(robust_examples=args.robust_examples, images_every=0),
        export=False,
    )
    splits = experiment.load_splits(recipe)
    model, strategy = experiment.build_model(recipe, "none", splits.info)
    loop = experiment.loop_of(recipe, "none")
    callbacks = experiment.training_callbacks(
        recipe, loop, args.epochs, splits, history_file=root / "history.csv", log_dir=root / "tb"
    )
    timer = BatchTimes()
    experiment.fit(
        model, splits, epochs=args.epochs, callbacks=[*callbacks, timer], strategy=strategy
    )
    return timer


def keras_fit(args, autotune: bool) -> BatchTimes:
    """The same backbone and data fit the Keras way: `fit(train, validation_data=val)`."""
    splits = load(args, autotune)
    info = splits.info
    keras.utils.set_random_seed(0)
    model = build("resnet8", input_shape=info.image_shape, num_classes=info.num_classes,
                  mean=info.mean, std=info.std)  # fmt: skip
    model.compile(optimizer=sgd_momentum(), jit_compile=False)
    timer = BatchTimes()
    model.fit(splits.train, validation_data=splits.val, epochs=args.epochs, verbose=0,
              shuffle=False, callbacks=[timer])  # fmt: skip
    return timer


def load(args, autotune: bool):
    return data.load(
        "fashion_mnist", batch_size=128, seed=0, train_size=args.train_size,
        test_size=args.test_size, autotune=autotune,
    )  # fmt: skip


def evaluation_passes(args, model, autotune: bool) -> dict[str, list[list[float]]]:
    """Per-batch seconds of repeated clean and PGD-10 passes over the test split."""
    test = load(args, autotune).test
    pgd = PGD(primary_classifier(model), steps=10)
    return {
        "clean predictions": timed_passes(
            lambda: test, lambda b: pgd.model.predict(b[0]).numpy(), args.passes
        ),
        "PGD-10": timed_passes(
            lambda: test,
            lambda b: pgd(b[0], labels_of(b[1]), eps=0.1, seed=0).numpy(),
            args.passes,
        ),
    }


def print_table(fits: dict, passes: dict) -> None:
    print("| run | epoch or pass | first step s | steady step s | first / steady | goal <= 2 |")
    print("|---|---|---|---|---|---|")
    for name, timer in fits.items():
        rows = [(f"train epoch {e}", t, e == 0) for e, t in enumerate(timer.train)]
        rows += [(f"validation after epoch {e}", t, e == 0) for e, t in enumerate(timer.validation)]
        _rows(name, rows)
    for name, kinds in passes.items():
        _rows(name, [(f"{kind} #{i + 1}", t, i == 0) for kind, p in kinds.items()
                     for i, t in enumerate(p)])  # fmt: skip
    print()
    runner, keras_default = fits["runner"], fits["Keras default"]
    for epoch in range(1, len(runner.train)):
        a, b = sum(keras_default.train[epoch]), sum(runner.train[epoch])
        print(f"epoch {epoch} wall: Keras default {a:.1f} s, runner {b:.1f} s, ratio {a / b:.2f}")


def _rows(name: str, rows) -> None:
    for label, times, traces in rows:
        first, steady, q = ratio(times)
        verdict = "(traces)" if traces else ("yes" if q <= GOAL else "**no**")
        print(f"| {name} | {label} | {first:.2f} | {steady:.3f} | {q:.1f} | {verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--passes", type=int, default=3, help="evaluation passes of each kind")
    parser.add_argument("--robust-examples", type=int, default=256, help="per-epoch PGD subset")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    args = parser.parse_args()
    if args.quick:
        args.train_size, args.test_size, args.epochs, args.passes = 1024, 512, 2, 2
    with tempfile.TemporaryDirectory() as root:
        runner = runner_fit(args, Path(root))
    fits = {
        "runner": runner,
        "Keras default": keras_fit(args, autotune=True),
        "new iterator, autotune off": keras_fit(args, autotune=False),
    }
    passes = {
        "passes, autotune off (tfaux)": evaluation_passes(args, runner.model, autotune=False),
        "passes, autotune on": evaluation_passes(args, runner.model, autotune=True),
    }
    print(
        f"ResNet-8, {args.train_size} Fashion-MNIST training images, batch 128, {args.epochs} "
        f"epochs; evaluation passes over the first {args.test_size} test images"
    )
    print_table(fits, passes)


if __name__ == "__main__":
    main()
