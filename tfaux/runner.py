"""Run a recipe end to end: data → one model per variant → train → evaluate → report → export.

A run lives in `runs/<recipe>-<timestamp>/`. Each finished variant leaves its weights and its
result on disk, and training keeps a `BackupAndRestore` backup, so the same command started again
after a crash resumes the unfinished run instead of starting over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras

from tfaux import reporting
from tfaux.config import Recipe, comparison_baseline
from tfaux.distribute import create_strategy, is_chief, remove_worker_dirs, writable_dir
from tfaux.experiment import check_recipe, load_splits, log_to
from tfaux.provenance import code_commit
from tfaux.results import RunResult, RunResults, VariantResult
from tfaux.running.directory import run_directory
from tfaux.running.evaluation import (
    corrupted_test_set,
    corruption_summary,
    evaluate_variant,
    has_reference_errors,
    reference_errors,
    reference_key,
    reference_recipe,
    surrogate_model,
)
from tfaux.running.export import export_variant
from tfaux.running.sweep import sweep
from tfaux.running.training import train_variant

__all__ = [
    "BUDGET_TOLERANCE",
    "RunResult",
    "compare_budgets",
    "reference_recipe",
    "run",
    "run_directory",
]

log = logging.getLogger("tfaux")
BUDGET_TOLERANCE = 0.02  # a variant spending more than 2 % more or less is marked


def run(
    recipe: Recipe,
    *,
    runs_dir: str | Path = "runs",
    savedmodels_dir: str | Path = "savedmodels",
    fresh: bool = False,
    progress: bool = True,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
) -> RunResult:
    """Runs every variant of `recipe` and writes config, logs, results, plot and export.

    Args:
        recipe: the experiment.
        runs_dir: parent of the run directory.
        savedmodels_dir: parent of the exported SavedModel.
        fresh: start a new run even if an unfinished run of the same config exists.
        progress: show progress bars.
        callbacks: extra Keras callbacks for every variant's `fit` (e.g. a profiler), after
            the run's own; they see the epoch logs the run's callbacks wrote.

    Returns:
        The run directory, its results.json as written (a sweep's: its summary) and the export
        location.
    """
    check_recipe(recipe)  # a typo fails now, not after hours of training
    create_strategy(recipe.training.strategy)  # multi_worker: before any other TF op
    splits = load_splits(recipe)  # missing data fails before a run directory exists
    info = splits.info
    check_recipe(recipe, info.image_shape)  # layer names need the image shape
    if recipe.backbones or recipe.seeds:
        return sweep(
            recipe,
            run,
            runs_dir=Path(runs_dir),
            savedmodels_dir=Path(savedmodels_dir),
            fresh=fresh,
            progress=progress,
            callbacks=callbacks,
        )
    run_dir = run_directory(Path(runs_dir), recipe, fresh)
    log_to(writable_dir(run_dir) / "log.txt")
    log.info("run %s: %s", run_dir, json.dumps(recipe.to_dict()))
    log.info(
        "data %s: %d train / %d val / %d test, mean %s std %s",
        info.name,
        info.num_train,
        info.num_val,
        info.num_test,
        info.mean,
        info.std,
    )
    log.info(
        "data per class (train): %s", dict(zip(info.class_names, info.class_counts, strict=True))
    )
    for note in info.notes:
        log.info("data: %s", note)

    # Training: every worker of a multi-worker job takes part.
    for variant in recipe.variants:
        train_variant(recipe, variant, run_dir, progress, callbacks)
    if recipe.corruption.enabled and not has_reference_errors(recipe, run_dir):
        key = reference_key(recipe)  # the CE reference
        train_variant(reference_recipe(recipe), "none", run_dir, progress, callbacks, key=key)
    if not is_chief():  # evaluation, reports and export are the chief's
        remove_worker_dirs()
        return RunResult(run_dir, {}, None)
    # Evaluation, on undistributed models.
    cset = corrupted_test_set(recipe, splits, progress)
    reference = reference_errors(recipe, splits, run_dir, cset, progress)
    surrogate = surrogate_model(recipe, splits.info, run_dir)
    variants: dict[str, VariantResult] = {}
    for variant in recipe.variants:
        variants[variant] = evaluate_variant(
            recipe, variant, splits, run_dir, surrogate, progress, cset
        )
        log.info("%s: %s", variant, json.dumps(variants[variant].to_dict()))

    best_by = "val_pgd_accuracy" if recipe.objective == "robust" else "val_accuracy"
    best = max(variants, key=lambda v: _criterion(variants[v], best_by))
    budget_rule = compare_budgets(recipe, variants)
    corruption = None
    if reference is not None:
        corruption, variants = corruption_summary(recipe, variants, reference, len(cset))
    export_dir = None
    if recipe.export:
        export_dir = export_variant(
            recipe, best, variants[best], splits, run_dir, Path(savedmodels_dir)
        )
    results = RunResults(
        recipe=recipe.name,
        run=run_dir.name,
        dataset=dataclasses.asdict(info),
        backbone=recipe.model.backbone,
        variants=variants,
        best_variant=best,
        best_by=best_by,
        baseline=comparison_baseline(recipe),
        budget_rule=budget_rule,
        commit=code_commit(),
        corruption=corruption,
        export=None if export_dir is None else str(export_dir),
    )
    results = reporting.write_report(run_dir, results, recipe.claims)
    log.info("results in %s", run_dir)
    return RunResult(run_dir, results.to_dict(), export_dir)


def _criterion(result: VariantResult, best_by: str) -> float:
    """A variant's value of the run's best-by metric; -1 where it was not measured."""
    value = getattr(result, best_by)
    return -1.0 if value is None else value


def compare_budgets(recipe: Recipe, variants: dict[str, VariantResult | dict]) -> dict:
    """Each variant's declared budget quantity relative to the baseline's, and whether it is
    within `BUDGET_TOLERANCE` of it (marked in the table when not); adds "relative" and "within"
    to every variant's "budget" (nothing for `budget="none"`). Returns the rule."""
    quantity = None if recipe.budget == "none" else recipe.budget
    if quantity is not None:
        budgets = {name: _budget(result) for name, result in variants.items()}
        reference = budgets[comparison_baseline(recipe)][quantity]
        for budget in budgets.values():
            value = budget[quantity]
            # In the counts' own units: exactly 2 % off is within (1.02 - 1 > 0.02 in floats).
            within = abs(value - reference) <= BUDGET_TOLERANCE * reference
            budget.update(relative=round(value / reference, 4), within=within)
    return {"quantity": quantity, "tolerance": BUDGET_TOLERANCE}


def _budget(result: VariantResult | dict) -> dict:
    """A variant's budget dict itself (the marks are added to it in place)."""
    return result.budget if isinstance(result, VariantResult) else result["budget"]
