"""How fast is our PGD evaluation? Three comparisons on one briefly trained model, measured side
by side in one run and printed as ratios (absolute numbers depend on the machine; ratios much
less):

a. PGD-20 evaluation (attack + one predict per batch) with `tfaux.attacks.PGD` (a compiled
   `tf.while_loop`) vs cleverhans' `projected_gradient_descent` called as shipped (an eager Python
   loop over its `tf.function` gradient): images/s and the ratio ours/cleverhans. Both use
   L∞ ε=0.1, α=0.0125, a random start and the true labels; both predict with the same compiled
   `AttackedModel.predict`, so the ratio compares the attacks only.
b. PGD-k (k = 10, 20, attack alone; PGD-20 is timed inside (a), without its predicts) vs k ×
   one compiled input-gradient pass (forward + backward of the cross-entropy of the logits
   w.r.t. the images, inference mode) on the same batches: the ratio is the loop's overhead over
   the gradient work it cannot avoid (target <= 1.15).
c. The full robustness report (`tfaux.evaluate.robustness`, `EvalConfig()` defaults) vs PGD-20
   alone over the same test images: what the whole report costs in units of one PGD-20 pass.

Each attack in (a) and (b) is warmed up (traced) once per batch shape before timing; then all of
them are timed round-robin `--repeats` times, so a slow phase of the machine hits each alike, and
medians are reported. The report builds its own `AttackedModel`, so every call traces its attacks;
that is part of its cost, and (c) gives the ratio against PGD-20 on a fresh `AttackedModel`
(tracing included, like the report) and on a warm one.

    python benchmarks/attack_speed.py [--quick] [--backbone resnet20] [--images 512] [--batch 128]
        [--repeats 3] [--train-size 5000] [--report-repeats 1]

`--quick` (resnet8, 64 images in batches of 32, report prefixes scaled down alike; under ~2
minutes on 2 cores) only checks that the script works; its ratios are not the benchmark's.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import warnings

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from cleverhans.tf2.attacks.projected_gradient_descent import (  # noqa: E402
    projected_gradient_descent,
)

from tfaux import build, data  # noqa: E402
from tfaux.attacks import PGD, AttackedModel, logits_fn  # noqa: E402
from tfaux.config import EvalConfig  # noqa: E402
from tfaux.evaluate import robustness  # noqa: E402
from tfaux.evaluate.sanity import UntrustworthyRobustnessWarning  # noqa: E402
from tfaux.training import sgd_momentum  # noqa: E402

EPS = 0.1
STEPS = (10, 20)
# --quick changes the defaults only: options given explicitly still win.
QUICK = {"backbone": "resnet8", "images": 64, "batch": 32, "repeats": 2, "train_size": 500}
# The report's prefixes (curves 500, sanity 200, black-box 32 examples) are scaled by
# images / DEFAULT_IMAGES when fewer images are used (as in --quick).
DEFAULT_IMAGES = 512


def trained_model(backbone: str, splits, train_size: int) -> keras.Model:
    """`backbone` on Fashion-MNIST, one epoch of seed-000 SGD (none with --train-size 0)."""
    keras.utils.set_random_seed(0)
    info = splits.info
    model = build(
        backbone,
        input_shape=info.image_shape,
        num_classes=info.num_classes,
        mean=info.mean,
        std=info.std,
    )
    model.compile(optimizer=sgd_momentum(), jit_compile=False)
    if train_size:
        # A trained model matters for the report: SPSA stops early on examples already fooled.
        model.fit(splits.train, epochs=1, shuffle=False, verbose=0)
    return model


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check")
    parser.add_argument("--backbone", default="resnet20")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="test images")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="round-robin repeats of (a), (b)")
    parser.add_argument("--report-repeats", type=int, default=1, help="round-robin repeats of (c)")
    parser.add_argument(
        "--train-size", type=int, default=5000, help="training images for 1 epoch (0: random init)"
    )
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(**QUICK)
    args = parser.parse_args()

    splits = data.load(
        "fashion_mnist",
        batch_size=args.batch,
        seed=0,
        train_size=args.train_size or None,
        test_size=args.images,
    )
    model = trained_model(args.backbone, splits, args.train_size)
    batches = list(splits.test)
    n = sum(int(x.shape[0]) for x, _ in batches)
    model_fn = logits_fn(model)
    attacked = AttackedModel(model)
    pgd = {k: PGD(attacked, steps=k) for k in STEPS}
    alpha = pgd[20].alpha(EPS)  # 2.5 ε / 20 = 0.0125, Madry et al.'s step, as cleverhans gets it

    @tf.function(reduce_retracing=True)
    def grad_pass(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, model_fn(x))
        return tape.gradient(loss, x)

    def accuracy_of(x_adv, y) -> int:
        return int(np.sum(np.argmax(attacked.predict(x_adv).numpy(), -1) == y.numpy()))

    def ours_eval(some=batches):  # -> (correct, seconds in the attack calls alone)
        correct, attack_seconds = 0, 0.0
        for i, (x, y) in enumerate(some):
            start = time.perf_counter()
            x_adv = pgd[20](x, y, eps=EPS, seed=i)
            x_adv.numpy()  # the attack is done (as in the other timed functions)
            attack_seconds += time.perf_counter() - start
            correct += accuracy_of(x_adv, y)
        return correct, attack_seconds

    def cleverhans_eval(some=batches):
        correct = 0
        for x, y in some:
            x_adv = projected_gradient_descent(
                model_fn, x, EPS, alpha, 20, np.inf, clip_min=0.0, clip_max=1.0, y=y,
                rand_init=True, sanity_checks=False,
            )  # fmt: skip
            correct += accuracy_of(x_adv, y)
        return correct, None

    def pgd10_only(some=batches):
        for i, (x, y) in enumerate(some):
            pgd[10](x, y, eps=EPS, seed=i).numpy()

    def gradients_only(some=batches):
        for x, y in some:
            grad_pass(x, y).numpy()

    def predict_only(some=batches):
        for x, _ in some:
            attacked.predict(x).numpy()

    # PGD-20 alone for (b) is timed inside (a)'s evaluation: its attack calls without the predict.
    runs = {
        "ours": ours_eval,
        "cleverhans": cleverhans_eval,
        "pgd10": pgd10_only,
        "grad": gradients_only,
        "predict": predict_only,
    }
    # Warm up: trace every function once (the cleverhans loop traces per distinct batch shape).
    shapes = {tuple(x.shape): (x, y) for x, y in batches}
    for fn in runs.values():
        fn(list(shapes.values()))
    accuracy = {"ours": [], "cleverhans": []}
    times = {name: [] for name in [*runs, "pgd20"]}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - start)
            if name in accuracy:
                correct, attack_seconds = result
                accuracy[name].append(correct / n)
                if attack_seconds is not None:
                    times["pgd20"].append(attack_seconds)
    t = {name: statistics.median(values) for name, values in times.items()}

    print(
        f"{args.backbone} on {n} Fashion-MNIST test images, batch {args.batch}, "
        f"{'random init' if not args.train_size else f'1 epoch on {args.train_size} images'}; "
        f"median of {args.repeats} round-robin repeats"
    )
    print(f"\n(a) PGD-20 evaluation, L∞ ε={EPS:g}, α={alpha:g}, random start, + predict per batch")
    print(
        "| attack | img/s | s per pass | PGD-20 acc (each repeat) | speed ratio ours/cleverhans |"
    )
    print("|---|---|---|---|---|")
    for name, label in [
        ("ours", "tfaux `PGD` (tf.while_loop, compiled)"),
        ("cleverhans", "cleverhans `projected_gradient_descent` (eager, as shipped)"),
    ]:
        accs = ", ".join(f"{100 * a:.1f}" for a in accuracy[name])
        print(
            f"| {label} | {n / t[name]:.0f} | {t[name]:.2f} | {accs} "
            f"| {t['cleverhans'] / t[name]:.2f} |"
        )

    batches_n = len(batches)
    print("\n(b) PGD-k (attack alone) vs k x one input-gradient pass (tf.function, inference mode)")
    print(
        f"one gradient pass: {1000 * t['grad'] / batches_n:.1f} ms/batch; one predict: "
        f"{1000 * t['predict'] / batches_n:.1f} ms/batch"
    )
    print("| k | PGD-k ms/batch | k x grad pass ms/batch | ratio (target <= 1.15) |")
    print("|---|---|---|---|")
    for k in STEPS:
        pgd_ms, grad_ms = 1000 * t[f"pgd{k}"] / batches_n, 1000 * k * t["grad"] / batches_n
        print(f"| {k} | {pgd_ms:.1f} | {grad_ms:.1f} | {pgd_ms / grad_ms:.3f} |")

    # (c) The report vs PGD-20 alone over the same tf.data test split.
    scale = min(1.0, n / DEFAULT_IMAGES)
    defaults = EvalConfig()
    config = dataclasses.replace(
        defaults,
        curve_examples=max(1, round(defaults.curve_examples * scale)),
        sanity_examples=max(1, round(defaults.sanity_examples * scale)),
        blackbox_examples=max(1, round(defaults.blackbox_examples * scale)),
    )

    def pgd_alone(pgd20):
        for i, (x, y) in enumerate(splits.test):
            pgd20.model.predict(pgd20(x, y, eps=EPS, seed=i)).numpy()

    report_runs = {
        "report": lambda: robustness(model, splits.test, config, progress=False),
        "fresh": lambda: pgd_alone(PGD(model, steps=20)),
        "warm": lambda: pgd_alone(pgd[20]),  # traced and warmed up in (a)
    }
    report_times = {name: [] for name in report_runs}
    with warnings.catch_warnings():
        # A briefly trained model fails some sanity checks; they still run (and cost), unprinted.
        warnings.simplefilter("ignore", UntrustworthyRobustnessWarning)
        for _ in range(args.report_repeats):
            for name, fn in report_runs.items():
                report_times[name].append(timed(fn))
    r = {name: statistics.median(values) for name, values in report_times.items()}
    print(
        f"\n(c) robustness report (EvalConfig defaults; curves on {config.curve_examples}, sanity "
        f"on {config.sanity_examples}, SPSA/C&W on {config.blackbox_examples} examples) vs PGD-20 "
        f"alone over the same {n} images; median of {args.report_repeats}"
    )
    print("| run | s | report / this run |\n|---|---|---|")
    for name, label in [
        ("report", "robustness report (its own AttackedModel: tracing included)"),
        ("fresh", "PGD-20 + predict, fresh AttackedModel (tracing included)"),
        ("warm", "PGD-20 + predict, warm AttackedModel"),
    ]:
        print(f"| {label} | {r[name]:.2f} | {r['report'] / r[name]:.1f} |")


if __name__ == "__main__":
    main()
