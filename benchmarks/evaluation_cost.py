"""What does PGD on every test image cost the default run's evaluation? One variant's robustness
report (clean, FGSM, PGD-10, the ε curves, the sanity attacks, SPSA) with PGD-10 on the first
`pgd_examples` test images (the recipe's setting) and on all of them, side by side in one run:
wall seconds of each report and their ratio (absolute numbers depend on the machine's load;
the ratio much less), and the accuracies both report.

The model is the recipe's, trained for one short epoch so that its gradients are a trained
model's; an attack's cost does not depend on the weights (fixed steps, no early stop).

    python benchmarks/evaluation_cost.py [--recipe seed000_ft] [--variant none]
        [--set data.train_size=5000 ...] [--rounds 2] [--quick]

An untimed report on a few images first pays what a process pays once (AutoGraph's conversion
of the attack code, the traces); then rounds alternate the order of the rows, and each row's
figure is the median of its rounds.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

from side_by_side import alternating, recipe_of, recipe_parser  # noqa: E402

from tfaux import experiment  # noqa: E402
from tfaux.config import Recipe  # noqa: E402
from tfaux.evaluate.robustness import robustness  # noqa: E402

DEFAULT_SETTINGS = ("data.train_size=5000",)
QUICK_SETTINGS = ("data.train_size=512", "data.test_size=1200", "evaluation.curve_examples=100")
EVERY = "PGD on every test image"


def rows(recipe: Recipe) -> dict[str, Recipe]:
    """Row name → the recipe whose evaluation it times."""
    every = dataclasses.replace(recipe.evaluation, pgd_examples=None)
    return {
        f"PGD on {recipe.evaluation.pgd_examples or 'every'} test images (the recipe)": recipe,
        EVERY: dataclasses.replace(recipe, evaluation=every),
    }


def timed_report(model, splits, recipe: Recipe) -> dict:
    start = time.perf_counter()
    report = robustness(model, splits.test, recipe.evaluation, progress=False)
    return {
        "seconds": time.perf_counter() - start,
        "clean": report["clean"],
        "pgd": report["attacks"][report["pgd_attack"]],
        "pgd_examples": report["examples"][report["pgd_attack"]],
    }


def main(argv: list[str]) -> None:
    args = recipe_parser(__doc__.splitlines()[0], variant="none").parse_args(argv)
    recipe, settings = recipe_of(args, DEFAULT_SETTINGS, QUICK_SETTINGS)
    splits = experiment.load_splits(recipe)
    model, strategy = experiment.build_model(recipe, args.variant, splits.info)
    experiment.fit(model, splits, epochs=1, callbacks=[], strategy=strategy)
    robustness(model, splits.test.take(1), recipe.evaluation, progress=False)  # warm-up
    recipes = rows(recipe)
    timed = {name: [] for name in recipes}
    for round_, name in alternating(list(recipes), args.rounds):
        timed[name].append(timed_report(model, splits, recipes[name]))
        print(f"round {round_ + 1}, {name}: {timed[name][-1]['seconds']:.1f} s", flush=True)
    print(
        f"\n{args.recipe} '{args.variant}' after one epoch, {', '.join(settings)}; "
        f"{splits.info.num_test} test images; {args.rounds} rounds, median seconds\n"
    )
    median = {name: statistics.median(r["seconds"] for r in runs) for name, runs in timed.items()}
    every = median[EVERY]
    print("| evaluation | seconds (each round) | / every image | clean % | PGD-10 % (images) |")
    print("|---|---|---|---|---|")
    for name, runs in timed.items():
        rounds = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        last = runs[-1]
        print(
            f"| {name} | {median[name]:.1f} ({rounds}) | {median[name] / every:.3f} "
            f"| {100 * last['clean']:.2f} | {100 * last['pgd']:.2f} ({last['pgd_examples']}) |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
