"""How fast is our AutoAttack? Measured side by side in one run on one exported model:

a. Per attack that both have (APGD-CE, APGD-DLR: 100 iterations, 1 restart; Square: `--queries`
   queries, p_init 0.8), ours (`tfaux.attacks`) vs IBM ART's (`AutoProjectedGradientDescent`,
   `SquareAttack`) on the same Keras model and the same test images, every image attacked:
   seconds, robust accuracy, and the speed ratio ART / ours (goal >= 3).
b. APGD's cost per iteration over one compiled input-gradient pass (forward + backward of the CE
   w.r.t. the images) on the same batch: the loop's overhead over the gradient work it cannot
   avoid (goal <= 1.15).
c. Our standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square with 5,000 queries, each on the points
   still robust) on the same images, and PGD-10 beside it: the gap a robustness claim hides when
   it stops at PGD.

The model is loaded from a SavedModel through its serving signature (`keras.layers.TFSMLayer`),
as `python recipes/run.py evaluate` loads it. Timings are medians over `--repeats` round-robin
repeats (each attack warmed up on the batch shape first).

    python benchmarks/autoattack.py SAVEDMODEL_DIR [--images 500] [--eps 0.1] [--repeats 1]
        [--queries 1000] [--quick]

`--quick` (32 images, 10 iterations, 50 queries) only checks that the script works.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfaux.attacks import PGD, Square, logits_fn  # noqa: E402
from tfaux.attacks.apgd import APGD  # noqa: E402
from tfaux.benchmark import classifier  # noqa: E402
from tfaux.deploy import dataset_images  # noqa: E402
from tfaux.evaluate.autoattack import AutoAttack  # noqa: E402


def art_attacks(model: keras.Model, eps: float, steps: int, queries: int, batch: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ART warns that PyTorch is missing
        from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack
        from art.estimators.classification import TensorFlowV2Classifier
    estimator = TensorFlowV2Classifier(
        model,
        nb_classes=int(model.output.shape[-1]),
        input_shape=tuple(model.input_shape[1:]),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )

    def apgd(loss):
        attack = AutoProjectedGradientDescent(
            estimator, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=steps, targeted=False,
            nb_random_init=1, batch_size=batch, loss_type=loss, verbose=False,
        )  # fmt: skip
        return lambda x, y: attack.generate(x, y)

    square = SquareAttack(
        estimator, norm=np.inf, eps=eps, max_iter=queries, p_init=0.8, nb_restarts=1,
        batch_size=batch, verbose=False,
    )  # fmt: skip
    return {
        "APGD-CE": apgd("cross_entropy"),
        "APGD-DLR": apgd("difference_logits_ratio"),
        "Square": lambda x, y: square.generate(x, y),
    }


def our_attacks(model: keras.Model, eps: float, steps: int, queries: int, batch: int) -> dict:
    ce, dlr = APGD(model, loss="ce", steps=steps), APGD(model, loss="dlr", steps=steps)
    square = Square(logits_fn(model), queries=queries)

    def batched(attack):
        def run(x, y):
            return np.concatenate(
                [attack(x[i : i + batch], y[i : i + batch]) for i in range(0, len(x), batch)]
            )

        return run

    return {
        "APGD-CE": batched(lambda x, y: ce(x, y, eps=eps).numpy()),
        "APGD-DLR": batched(lambda x, y: dlr(x, y, eps=eps).numpy()),
        "Square": batched(lambda x, y: square(x, y, eps=eps).numpy()),
    }


def accuracy(model: keras.Model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=250, verbose=0), -1) == y))


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("savedmodel")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images, args.steps, args.queries = 32, 10, 50
    tf.get_logger().setLevel("ERROR")  # ART's classifier retraces per batch size and says so
    model, export = classifier(args.savedmodel)
    x, y = dataset_images(export, args.dataset or export.metadata["dataset"], args.images)
    y = y.astype("int32")
    print(
        f"model: {args.savedmodel} ({export.metadata.get('variant', '?')}), {len(x)} test "
        f"images, L∞ ε={args.eps:g}, clean accuracy {100 * accuracy(model, x, y):.1f}%"
    )

    # a. The attacks both have, every image attacked, round-robin.
    ours = our_attacks(model, args.eps, args.steps, args.queries, args.batch)
    art = art_attacks(model, args.eps, args.steps, args.queries, args.batch)
    for name in ours:  # trace ours on the batch shapes (ART has nothing to trace ahead)
        ours[name](x[: args.batch], y[: args.batch])
    seconds = {(who, name): [] for who in ("ours", "ART") for name in ours}
    robust = {}
    for _ in range(args.repeats):
        for name in ours:
            for who, attacks in (("ours", ours), ("ART", art)):
                elapsed, x_adv = timed(attacks[name], x, y)
                seconds[(who, name)].append(elapsed)
                robust[(who, name)] = accuracy(model, x_adv, y)
    print("\na. the attacks both have (every image attacked; robust accuracy %)")
    print("| attack | ours s | ART s | ART / ours | ours acc | ART acc |")
    print("|---|---|---|---|---|---|")
    total = {"ours": 0.0, "ART": 0.0}
    for name in ours:
        a, b = (statistics.median(seconds[(w, name)]) for w in ("ours", "ART"))
        total["ours"] += a
        total["ART"] += b
        print(
            f"| {name} | {a:.1f} | {b:.1f} | {b / a:.1f}x | {100 * robust[('ours', name)]:.1f} "
            f"| {100 * robust[('ART', name)]:.1f} |"
        )
    print(
        f"| all three | {total['ours']:.1f} | {total['ART']:.1f} | "
        f"{total['ART'] / total['ours']:.1f}x | | |"
    )

    # b. APGD per iteration vs one input-gradient pass, same batch.
    xb = tf.constant(x[: args.batch])
    yb = tf.constant(y[: args.batch])
    fn = logits_fn(model)

    @tf.function
    def gradient(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(yb, fn(images)))
        return tape.gradient(loss, images)

    apgd = APGD(model, loss="ce", steps=args.steps)
    apgd(xb, yb, eps=args.eps)
    gradient(xb)
    per_iteration, per_gradient = [], []
    for _ in range(max(args.repeats, 3)):
        elapsed, _ = timed(lambda: apgd(xb, yb, eps=args.eps).numpy())
        per_iteration.append(elapsed / (args.steps + 1))  # +1: the gradient at the start
        start = time.perf_counter()
        for _ in range(args.steps):
            gradient(xb).numpy()
        per_gradient.append((time.perf_counter() - start) / args.steps)
    a, b = statistics.median(per_iteration), statistics.median(per_gradient)
    print(f"\nb. APGD per iteration {1000 * a:.1f} ms, one input-gradient pass {1000 * b:.1f} ms")
    print(f"   ratio {a / b:.2f} (batch {len(xb)})")

    # c. Standard AutoAttack and PGD-10 on the same images.
    autoattack = AutoAttack(model, eps=args.eps, steps=args.steps, queries=5000 if not
                            args.quick else args.queries, batch_size=args.batch)  # fmt: skip
    elapsed, result = timed(autoattack.run, x, y)
    pgd = PGD(model, steps=10)(x, y, eps=args.eps)
    pgd_accuracy = accuracy(model, pgd.numpy(), y)
    print(f"\nc. standard AutoAttack: {elapsed:.0f} s ({result.seconds})")
    after = ", ".join(f"{k} {100 * v:.1f}" for k, v in result.after.items())
    print(f"   clean {100 * result.clean_accuracy:.1f}, after {after}")
    print(
        f"   AutoAttack {100 * result.robust_accuracy:.1f} vs PGD-10 {100 * pgd_accuracy:.1f}: "
        f"gap {100 * (pgd_accuracy - result.robust_accuracy):.1f} points on {len(x)} images"
    )
    failed = [f"{c.name} ({c.detail})" for c in result.checks if c.passed is False]
    print(f"   checks: {'all passed' if not failed else 'FAILED ' + '; '.join(failed)}")


if __name__ == "__main__":
    main()
