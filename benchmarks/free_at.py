"""Is Free-AT really free? Wall time of natural training, Free-AT (m replays, epochs ÷ m) and
PGD-k adversarial training on Fashion-MNIST from the same seed, with the clean and PGD-20 test
accuracy of each, measured in one run and printed as ratios (absolute numbers depend on the
machine; ratios much less).

Shafahi et al. (2019) claim Free-AT costs about as much as natural training (same number of
gradient steps: each batch is replayed m times for epochs/m epochs) and far less than PGD-7
training, at comparable robustness. Targets here (issue 13): Free / natural <= 1.05,
Free / PGD-7 <= 0.25.

Every run builds the same backbone with the same seed, gets the same batches (`tfaux.data.load`
with seed 0), is compiled like `tfaux.runner` compiles it (seed-000 SGD, jit_compile=False) and is
fit with shuffle=False, verbose=0 and no callbacks (no catastrophic-overfitting guard, no
validation), so `fit` wall time is training alone. The first step of a run holds the tracing of
its train step (Free-AT's m replays are unrolled, so it traces longer); the table also gives the
time after that first step. Runs are sequential, not round-robin: each is one long fit.

    python benchmarks/free_at.py [--quick] [--backbone resnet8] [--width 1.0] [--epochs 4]
        [--train-size 10000] [--test-size 1000] [--replays 4] [--pgd-steps 7]

`--quick` (640 training and 128 test images; under ~2 minutes on 2 cores) only checks that the
script works: at that size tracing and epoch starts dominate, so its ratios are not the
benchmark's.
"""

from __future__ import annotations

import argparse
import time

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfaux import data  # noqa: E402
from tfaux.attacks import PGD  # noqa: E402
from tfaux.config import AdversarialConfig, DataConfig, ModelConfig, Recipe  # noqa: E402
from tfaux.data.pipeline import labels_of  # noqa: E402
from tfaux.experiment import build_model  # noqa: E402
from tfaux.training import sgd_momentum  # noqa: E402
from tfaux.training.loops.free import free_epochs  # noqa: E402

# --quick changes the defaults only: options given explicitly still win.
QUICK = {"train_size": 640, "test_size": 128}


class _FirstStep(keras.callbacks.Callback):
    """Seconds from the start of `fit` to the end of its first training step (tracing)."""

    def on_train_begin(self, logs=None):
        self.start, self.seconds = time.perf_counter(), None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.start


def train(args, loop: str, config: AdversarialConfig, epochs: int) -> dict:
    """Builds, compiles and fits one run; returns its timings and test accuracies."""
    splits = data.load(
        "fashion_mnist",
        batch_size=args.batch,
        seed=0,
        train_size=args.train_size,
        test_size=args.test_size,
    )
    recipe = Recipe(
        "free_at",
        data=DataConfig(batch_size=args.batch),
        model=ModelConfig(backbone=args.backbone, width=args.width),
        adversarial=config,
    )
    model, _ = build_model(recipe, f"none@{loop}", splits.info, compile=False)
    model.compile(optimizer=sgd_momentum(), jit_compile=False)
    first = _FirstStep()
    start = time.perf_counter()
    model.fit(splits.train, epochs=epochs, shuffle=False, verbose=0, callbacks=[first])
    seconds = time.perf_counter() - start
    steps = int(model.optimizer.iterations.numpy())  # Free-AT: m per batch
    clean, robust = evaluate(model, splits.test, args.eps)
    return {
        "epochs": epochs,
        "gradient_steps": steps,
        "seconds": seconds,
        "after_first": seconds - first.seconds,
        "clean": clean,
        "pgd20": robust,
    }


def evaluate(model, test, eps: float) -> tuple[float, float]:
    """Clean and PGD-20 (L∞ ε, one random start, true labels) accuracy on the test split."""
    pgd = PGD(model, steps=20)
    clean = robust = n = 0
    for i, (x, y) in enumerate(test):
        y = labels_of(y).numpy()
        clean += int(np.sum(np.argmax(pgd.model.predict(x).numpy(), -1) == y))
        x_adv = pgd(x, y, eps=eps, seed=i)
        robust += int(np.sum(np.argmax(pgd.model.predict(x_adv).numpy(), -1) == y))
        n += len(y)
    return clean / n, robust / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check")
    parser.add_argument("--backbone", default="resnet8")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=4, help="E: natural and PGD epochs")
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--replays", type=int, default=4, help="Free-AT's m")
    parser.add_argument("--pgd-steps", type=int, default=7)
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(**QUICK)
    args = parser.parse_args()

    e, m, k = args.epochs, args.replays, args.pgd_steps
    runs = {
        "natural": ("standard", AdversarialConfig(eps=args.eps), e),
        f"Free-AT m={m}": ("free", AdversarialConfig(eps=args.eps, replays=m), free_epochs(e, m)),
        f"PGD-{k} AT": ("pgd", AdversarialConfig(eps=args.eps, pgd_steps=k), e),
    }
    results = {name: train(args, *run) for name, run in runs.items()}

    print(
        f"{args.backbone} (width {args.width:g}) on {args.train_size} Fashion-MNIST training "
        f"images, batch {args.batch}, seed 0; ε={args.eps:g}; test: first {args.test_size} images"
    )
    print(
        "| run | epochs | gradient steps | fit wall s | s after 1st step | clean acc "
        f"| PGD-20 ε={args.eps:g} acc |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['epochs']} | {r['gradient_steps']} | {r['seconds']:.1f} "
            f"| {r['after_first']:.1f} | {100 * r['clean']:.1f} | {100 * r['pgd20']:.1f} |"
        )

    natural, free, pgd_at = (results[name] for name in runs)
    print(
        "\n| ratio | fit wall time | after 1st step | target | PGD-20 acc, Free-AT vs the other |"
    )
    print("|---|---|---|---|---|")
    for label, other, target in [
        ("Free-AT / natural", natural, "<= 1.05"),
        (f"Free-AT / PGD-{k} AT", pgd_at, "<= 0.25"),
    ]:
        print(
            f"| {label} | {free['seconds'] / other['seconds']:.2f} "
            f"| {free['after_first'] / other['after_first']:.2f} | {target} "
            f"| {100 * free['pgd20']:.1f} vs {100 * other['pgd20']:.1f} |"
        )


if __name__ == "__main__":
    main()
