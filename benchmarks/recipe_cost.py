"""What would a recipe's training cost? Each variant's measured time per optimizer step, on the
recipe's own data, batch and settings, times the optimizer steps it trains (natural training's:
every variant spends the same), per seed: the compute plan of a reproduction, from step rates
measured side by side in one run (the machine's speed varies by ±40 % from day to day).

    python benchmarks/recipe_cost.py seed000_ft seed001_aux [--set data.train_size=20000 ...]
        [--steps 8] [--repeats 2]

Training only: evaluation (attacks, AutoAttack, the -C set) is priced apart, from its own runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402

from tfaux.cli import discover  # noqa: E402
from tfaux.data.pipeline import repeated  # noqa: E402
from tfaux.experiment import build_model, load_splits, steps_per_epoch  # noqa: E402
from tfaux.overrides import apply_overrides  # noqa: E402
from tfaux.runner import reference_recipe  # noqa: E402

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


class _BatchTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times, self._last = [], time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.times.append(now - self._last)
        self._last = now


def seconds_per_step(recipe, variant: str, splits, steps: int, repeats: int) -> float:
    """Median wall time of one optimizer step of `variant` (a fit batch ÷ its optimizer
    steps: Free-AT's replays), after a warm-up epoch that traces the step."""
    model, _ = build_model(recipe, variant, splits.info)
    train, _ = repeated(splits.train)
    model.fit(train, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # trace
    timer, times = _BatchTimes(), []
    for _ in range(repeats):
        model.fit(
            train, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[timer]
        )
        times += timer.times[1:]  # the first batch of a fit pays its start
    per_batch = statistics.median(times)
    return per_batch / getattr(model, "steps_per_batch", 1)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--set", action="append", default=[], dest="assignments")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="seeds the plan runs")
    args = parser.parse_args(argv)
    found = discover(RECIPES)
    print("| recipe | variant | ms/step | optimizer steps | train min/seed |")
    print("|---|---|---|---|---|")
    totals = {}
    for name in args.recipes:
        recipe = apply_overrides(found[name][0], args.assignments)
        splits = load_splits(recipe)
        jobs = [(recipe, v) for v in recipe.variants]
        if recipe.corruption.enabled:  # the CE reference trains too
            jobs.append((reference_recipe(recipe), "none"))
        minutes = 0.0
        for job_recipe, variant in jobs:
            job_steps = job_recipe.training.epochs * steps_per_epoch(job_recipe, splits.info)
            seconds = seconds_per_step(job_recipe, variant, splits, args.steps, args.repeats)
            label = variant if job_recipe is recipe else f"CE reference ({variant})"
            print(
                f"| {name} | {label} | {1000 * seconds:.0f} | {job_steps:,} | "
                f"{job_steps * seconds / 60:.1f} |"
            )
            minutes += job_steps * seconds / 60
        totals[name] = minutes
    print()
    print(f"| recipe | train min per seed | × {args.seeds} seeds (h) |")
    print("|---|---|---|")
    for name, minutes in totals.items():
        print(f"| {name} | {minutes:.1f} | {args.seeds * minutes / 60:.2f} |")
    print(f"| all | {sum(totals.values()):.0f} | {args.seeds * sum(totals.values()) / 60:.2f} |")
    if not math.isfinite(sum(totals.values())):
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
