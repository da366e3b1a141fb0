"""Training one variant of a run: its model, the run's callbacks, a resumable fit, and its
weights and `<key>.train.json` (history, selected epoch, budget, seconds) in `variants/`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tfaux.config import Recipe
from tfaux.distribute import writable_dir
from tfaux.experiment import build_model as build_variant
from tfaux.experiment import (
    example_passes,
    fit,
    load_splits,
    loop_of,
    monitor_seconds,
    selection_of,
    step_learning_rates,
    steps_of,
    steps_per_epoch,
    training_callbacks,
)
from tfaux.training.resume import RunBackup, TrainingDivergedError

log = logging.getLogger("tfaux")


def train_variant(
    recipe: Recipe,
    variant: str,
    run_dir: Path,
    progress: bool,
    extra_callbacks=(),
    key: str | None = None,
) -> None:
    """Trains `variant` unless its weights exist; writes weights and `<key>.train.json`.

    `key` (default: the variant) names its files, so the CE reference can live beside it.
    Each variant gets freshly built pipelines: iterating one tf.data pipeline again continues its
    shuffle and augmentation streams, so a shared one gave every variant other batches.
    """
    key = key or variant
    weights_file = run_dir / "variants" / f"{key}.weights.h5"
    if weights_file.exists():
        return
    splits = load_splits(recipe)
    variants_dir = writable_dir(run_dir / "variants")  # the chief's; a temporary one elsewhere
    loop = loop_of(recipe, variant)
    model, strategy = build_variant(recipe, variant, splits.info)
    epochs = loop.epochs(recipe.training.epochs)
    callbacks = [
        *training_callbacks(
            recipe,
            loop,
            epochs,
            splits,
            history_file=variants_dir / f"{key}.history.csv",
            log_dir=writable_dir(run_dir / "tensorboard" / key),
            progress=key if progress else None,
        ),
        *extra_callbacks,
    ]
    # Last: it restores the state the callbacks above reset when training begins.
    checkpoints = run_dir / "checkpoints" / key
    # Kept until the weights file exists: a kill in between resumes instead of starting over.
    backup = RunBackup(checkpoints, callbacks, write_dir=writable_dir(checkpoints), keep=True)
    fit(model, splits, epochs=epochs, callbacks=[*callbacks, backup], strategy=strategy)
    if backup.diverged_epoch is not None:
        epoch = backup.diverged_epoch
        kept = (
            f"the backup of the last good epoch ({epoch}) is kept in {backup.read_dir}"
            if epoch
            else "no epoch had finished, so there is no backup"
        )
        raise TrainingDivergedError(
            f"{key}: the training loss became NaN or infinite in epoch {epoch + 1}; training "
            f"stopped and {kept}. Lower training.learning_rate or check the data, then run "
            "again (a changed recipe starts a new run)."
        )
    history = backup.history  # every epoch, those before a resume included
    # Every step taken, those the loss scaling skipped too (apart); resumed runs: restored.
    steps = steps_of(callbacks)
    selection = selection_of(callbacks)
    # Every run of this fit, those before a resume included; monitoring included.
    seconds = round(backup.seconds, 1)
    per_epoch = steps_per_epoch(recipe, splits.info)
    loop_results = loop.results(
        history,
        steps_per_epoch=per_epoch,
        optimizer_steps=steps["optimizer_steps"],
        learning_rates=lambda start, stop: step_learning_rates(
            recipe, per_epoch, history, start, stop
        ),
    )
    train = {
        "loop": loop.name,
        "selection": selection,
        "budget": {
            **steps,  # optimizer_steps, skipped_steps
            # Forward-backward passes over training examples, attack steps and replays counted.
            "example_passes": example_passes(
                recipe, variant, splits.info, steps["optimizer_steps"]
            ),
            "train_seconds": seconds,
        },
        "train_seconds": seconds,
        # Each monitor's share of train_seconds (val PGD, image panels, the guard).
        "monitor_seconds": monitor_seconds(callbacks),
        "epochs_run": len(history.get("loss", [])),
        "resumed_from_epoch": backup.resumed_from,
        "loop_results": loop_results,  # the loop's own entries (Auxiliary Training's "merging")
        "history": history,
    }
    (variants_dir / f"{key}.train.json").write_text(json.dumps(train, default=float))
    model.save_weights(variants_dir / weights_file.name)  # last: its presence means "trained"
    backup.remove()
    log.info("%s history: %s", key, json.dumps(history, default=float))
    for name, value in loop_results.items():
        log.info("%s %s: %s", key, name, json.dumps(value))
