"""What does monitoring cost a natural run? The same short fit of one variant with the old
per-epoch monitoring (validation PGD and image panels after every epoch, each monitor tracing
its own attack), with the new defaults (`MonitorConfig`), with no monitors, and as a plain Keras
`fit` without callbacks, side by side in one run: wall seconds of each fit, each monitor's own
seconds (`monitor_seconds`), their share of the fit and the ratios (absolute numbers depend on
the machine's load; ratios much less).

Every row trains the same weights (same seed, same batches; monitors never touch training):
the last column, the validation accuracy of every epoch, shows it.

    python benchmarks/monitor_cost.py [--recipe seed000_ft] [--variant fourier]
        [--set data.train_size=20000 ...] [--rounds 2] [--quick]

A first, untimed fit with every monitor on pays what a process pays once (AutoGraph's
conversion of the attack and panel functions, the first TensorBoard writer), as the first
variant of a run does; then rounds alternate the order of the rows (the second round runs them
backwards), and each row's figure is the median of its rounds.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

from side_by_side import alternating, recipe_of, recipe_parser  # noqa: E402

from tfaux import experiment  # noqa: E402
from tfaux.config import MonitorConfig, Recipe  # noqa: E402
from tfaux.overrides import apply_overrides  # noqa: E402
from tfaux.training.callbacks import SharedAttacker  # noqa: E402
from tfaux.training.monitor import ImageLogger  # noqa: E402

DEFAULT_SETTINGS = ("data.train_size=20000", "data.test_size=1000", "training.epochs=3")
QUICK_SETTINGS = ("data.train_size=1024", "data.test_size=256", "training.epochs=2")
BEFORE, PLAIN = "before: val PGD + images every epoch", "plain Keras fit (no callbacks)"


def setups(recipe: Recipe) -> dict[str, MonitorConfig | None]:
    """Row name → the monitoring it runs (None: a plain Keras fit, no callbacks at all)."""
    m = recipe.monitor
    return {
        BEFORE: dataclasses.replace(m, robust_every=1, images_every=1),
        "new defaults": m,
        "no monitors": dataclasses.replace(m, robust_examples=0, images_every=0),
        PLAIN: None,
    }


def timed_fit(recipe: Recipe, variant: str, setup: str, root: Path) -> dict:
    """One fit of `variant` as the runner trains it (its callbacks, TensorBoard included), or
    with no callbacks at all; its wall seconds, monitor seconds and validation accuracies."""
    monitor = setups(recipe)[setup]
    recipe = dataclasses.replace(recipe, monitor=monitor or recipe.monitor)
    splits = experiment.load_splits(recipe)
    model, strategy = experiment.build_model(recipe, variant, splits.info)
    loop = experiment.loop_of(recipe, variant)
    epochs = loop.epochs(recipe.training.epochs)
    callbacks = []
    if monitor is not None:
        root.mkdir(parents=True)
        callbacks = experiment.training_callbacks(
            recipe, loop, epochs, splits, history_file=root / "history.csv", log_dir=root / "tb"
        )
    if setup == BEFORE:  # as before monitors shared their attack: the panels trace their own
        for callback in callbacks:
            if isinstance(callback, ImageLogger):
                callback._attackers = SharedAttacker()
    start = time.perf_counter()
    history = experiment.fit(model, splits, epochs=epochs, callbacks=callbacks, strategy=strategy)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "monitors": experiment.monitor_seconds(callbacks),
        "val_accuracy": [round(float(a), 4) for a in history.history["val_accuracy"]],
    }


def print_table(rows: dict[str, list[dict]]) -> None:
    median = {name: statistics.median(r["seconds"] for r in runs) for name, runs in rows.items()}
    before, plain = median[BEFORE], median[PLAIN]
    print(
        "| monitoring | fit s (each round) | val PGD s | images s | monitors / fit "
        "| fit / plain fit | fit / before | val accuracy per epoch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    shares = {}
    for name, runs in rows.items():
        rounds = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        monitors = {
            key: statistics.median(r["monitors"].get(key, 0.0) for r in runs)
            for key in ("val_pgd", "images")
        }
        shares[name] = statistics.median(sum(r["monitors"].values()) / r["seconds"] for r in runs)
        accuracies = {tuple(r["val_accuracy"]) for r in runs}
        print(
            f"| {name} | {median[name]:.1f} ({rounds}) | {monitors['val_pgd']:.1f} "
            f"| {monitors['images']:.1f} | {100 * shares[name]:.1f} % "
            f"| {median[name] / plain:.3f} | {median[name] / before:.3f} "
            f"| {' or '.join(str(list(a)) for a in accuracies)} |"
        )
    print(
        f"\nmonitors' own share of the fit: before {100 * shares[BEFORE]:.1f} %, new defaults "
        f"{100 * shares['new defaults']:.1f} % (measured inside each fit, so the machine's load "
        "enters both sides; the wall-time ratios carry the run-to-run noise)"
    )


def main(argv: list[str]) -> None:
    args = recipe_parser(__doc__.splitlines()[0], variant="fourier").parse_args(argv)
    recipe, settings = recipe_of(args, DEFAULT_SETTINGS, QUICK_SETTINGS)
    recipe = dataclasses.replace(recipe, variants=(args.variant,), claims=(), export=False)
    rows = {name: [] for name in setups(recipe)}
    with tempfile.TemporaryDirectory() as tmp:
        warm_up = apply_overrides(recipe, ["training.epochs=1"])
        timed_fit(warm_up, args.variant, BEFORE, Path(tmp) / "warm-up")
        for round_, name in alternating(list(rows), args.rounds):
            root = Path(tmp) / f"{round_}-{len(rows[name])}-{name[:6].replace(' ', '_')}"
            rows[name].append(timed_fit(recipe, args.variant, name, root))
            print(f"round {round_ + 1}, {name}: {rows[name][-1]['seconds']:.1f} s", flush=True)
    print(
        f"\n{args.recipe} '{args.variant}', {', '.join(settings)}; {args.rounds} rounds, "
        "median fit seconds\n"
    )
    print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
