"""Run a recipe end to end: data → one model per variant → train → evaluate → report → export.

A run lives in `runs/<recipe>-<timestamp>/`. Each finished variant leaves its weights and its
result on disk, and training keeps a `BackupAndRestore` backup, so the same command started again
after a crash resumes the unfinished run instead of starting over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux import reporting
from tfaux.config import (
    Recipe,
    comparison_baseline,
)
from tfaux.data.corrupted_set import corrupted_set
from tfaux.data.sources import dataset_spec
from tfaux.distribute import (
    create_strategy,
    is_chief,
    remove_worker_dirs,
    writable_dir,
)
from tfaux.evaluate import robustness
from tfaux.evaluate.augmented import augmented_accuracy
from tfaux.evaluate.corruption import (
    corruption_error,
    corruption_errors,
    save_corruption_correct,
)
from tfaux.evaluate.disturbances import disturbance_accuracy
from tfaux.evaluate.fourier_heatmap import fourier_heatmap, save_heatmap
from tfaux.experiment import build_model as build_variant
from tfaux.experiment import (
    check_recipe,
    example_passes,
    first_examples,
    fit,
    load_splits,
    load_trained,
    log_to,
    loop_of,
    monitor_seconds,
    selection_of,
    step_learning_rates,
    steps_of,
    steps_per_epoch,
    training_callbacks,
)
from tfaux.export import saved_model
from tfaux.models import primary_classifier
from tfaux.provenance import code_commit
from tfaux.training.monitor import write_heatmap, write_hparams
from tfaux.training.resume import RunBackup, TrainingDivergedError
from tfaux.variant import STANDARD, Variant

log = logging.getLogger("tfaux")
BUDGET_TOLERANCE = 0.02  # a variant spending more than 2 % more or less is marked


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    results: dict
    export_dir: Path | None


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
        The run directory, the results dict (also in results.json) and the export location.
    """
    check_recipe(recipe)  # a typo fails now, not after hours of training
    create_strategy(recipe.training.strategy)  # multi_worker: before any other TF op
    splits = load_splits(recipe)  # missing data fails before a run directory exists
    info = splits.info
    check_recipe(recipe, info.image_shape)  # layer names need the image shape
    if recipe.backbones:
        return _run_backbones(
            recipe, Path(runs_dir), Path(savedmodels_dir), fresh, progress, callbacks
        )
    if recipe.seeds:
        return _run_seeds(recipe, Path(runs_dir), Path(savedmodels_dir), fresh, progress, callbacks)
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

    # Training: every worker of a multi-worker job takes part.
    for variant in recipe.variants:
        _train_variant(recipe, variant, run_dir, progress, callbacks)
    if recipe.corruption.enabled and not _has_reference_errors(recipe, run_dir):
        key = _reference_key(recipe)  # the CE reference
        _train_variant(reference_recipe(recipe), "none", run_dir, progress, callbacks, key=key)
    if not is_chief():  # evaluation, reports and export are the chief's
        remove_worker_dirs()
        return RunResult(run_dir, {}, None)
    # Evaluation, on undistributed models.
    cset = _corrupted_test_set(recipe, splits, progress)
    reference = _reference_errors(recipe, splits, run_dir, cset, progress)
    surrogate = _surrogate(recipe, splits.info, run_dir)
    variants = {}
    for variant in recipe.variants:
        variants[variant] = _evaluate_variant(
            recipe, variant, splits, run_dir, surrogate, progress, cset
        )
        log.info("%s: %s", variant, json.dumps(variants[variant]))

    best_by = "val_pgd_accuracy" if recipe.objective == "robust" else "val_accuracy"
    best = max(variants, key=lambda v: variants[v].get(best_by, -1.0))
    results = {
        "recipe": recipe.name,
        "run": run_dir.name,
        "dataset": dataclasses.asdict(info),
        "backbone": recipe.model.backbone,
        "variants": variants,
        "best_variant": best,
        "best_by": best_by,
        "baseline": comparison_baseline(recipe),
        "budget_rule": compare_budgets(recipe, variants),
        "commit": code_commit(),
    }
    if reference is not None:
        results["corruption"] = _corruption_summary(recipe, variants, reference)
    export_dir = None
    if recipe.export:
        export_dir = _export(recipe, best, variants[best], splits, run_dir, Path(savedmodels_dir))
        results["export"] = str(export_dir)
    reporting.write_report(run_dir, results, recipe.claims)
    log.info("results in %s", run_dir)
    return RunResult(run_dir, results, export_dir)


def compare_budgets(recipe: Recipe, variants: dict) -> dict:
    """Each variant's declared budget quantity relative to the baseline's, and whether it is
    within `BUDGET_TOLERANCE` of it (marked in the table when not); adds "relative" and "within"
    to every variant's "budget" (nothing for `budget="none"`). Returns the rule."""
    quantity = None if recipe.budget == "none" else recipe.budget
    if quantity is not None:
        reference = variants[comparison_baseline(recipe)]["budget"][quantity]
        for result in variants.values():
            value = result["budget"][quantity]
            # In the counts' own units: exactly 2 % off is within (1.02 - 1 > 0.02 in floats).
            within = abs(value - reference) <= BUDGET_TOLERANCE * reference
            result["budget"].update(relative=round(value / reference, 4), within=within)
    return {"quantity": quantity, "tolerance": BUDGET_TOLERANCE}


def _run_seeds(recipe: Recipe, runs_dir: Path, savedmodels_dir: Path, fresh, progress, callbacks):
    """One complete run per seed under `<run>/seeds/`, then mean ± 95 % CI of every metric and
    the paired difference of every variant to the baseline over seeds.

    A finished seed is read back, an unfinished one resumes: the same command continues.
    Only the first seed exports its best model.
    """
    run_dir = run_directory(runs_dir, recipe, fresh)
    singles = {
        seed: dataclasses.replace(
            recipe,
            name=f"{recipe.name}-seed{seed}",
            seeds=(),
            training=dataclasses.replace(recipe.training, seed=seed),
            export=recipe.export and seed == recipe.seeds[0],
        )
        for seed in recipe.seeds
    }
    if recipe.corruption.enabled and recipe.training.strategy != "multi_worker":
        _share_reference(singles[recipe.seeds[0]], list(singles.values()), run_dir, progress)
    per_seed = _run_each(singles, run_dir / "seeds", savedmodels_dir, progress, callbacks)
    log_to(run_dir / "log.txt")
    summary = reporting.seed_summary(recipe.name, run_dir.name, per_seed, claims=recipe.claims)
    summary["commit"] = code_commit()
    reporting.write_seed_report(run_dir, summary)
    first = per_seed[recipe.seeds[0]]
    return RunResult(run_dir, summary, first.export_dir)


def _run_backbones(
    recipe: Recipe, runs_dir: Path, savedmodels_dir: Path, fresh, progress, callbacks
):
    """One complete run per backbone of `recipe.backbones` under `<run>/backbones/` (seed 000
    compares five architectures), then one table of every backbone's variants with each one's
    comparison to the baseline. Finished backbones are read back; only the first exports."""
    run_dir = run_directory(runs_dir, recipe, fresh)
    singles = {
        backbone: dataclasses.replace(
            recipe,
            name=f"{recipe.name}-{backbone}",
            backbones=(),
            model=dataclasses.replace(recipe.model, backbone=backbone),
            export=recipe.export and backbone == recipe.backbones[0],
        )
        for backbone in recipe.backbones
    }
    per_backbone = _run_each(singles, run_dir / "backbones", savedmodels_dir, progress, callbacks)
    log_to(run_dir / "log.txt")
    summary = reporting.backbone_summary(recipe.name, run_dir.name, per_backbone)
    summary["commit"] = code_commit()
    reporting.write_backbone_report(run_dir, summary)
    return RunResult(run_dir, summary, per_backbone[recipe.backbones[0]].export_dir)


def _run_each(singles: dict, parent: Path, savedmodels_dir: Path, progress, callbacks) -> dict:
    """Each recipe of `singles` as a complete run under `parent`: a finished one is read back,
    an unfinished one resumes, so the same command continues a sweep."""
    results = {}
    for key, single in singles.items():
        finished = _finished_run(parent, single)
        results[key] = (
            RunResult(finished, json.loads((finished / "results.json").read_text()), None)
            if finished
            else run(
                single,
                runs_dir=parent,
                savedmodels_dir=savedmodels_dir,
                progress=progress,
                callbacks=callbacks,
            )
        )
    return results


def _finished_run(runs_dir: Path, recipe: Recipe) -> Path | None:
    """The newest finished run of exactly this config under `runs_dir`, if any."""
    config = _what_trains(json.loads(json.dumps(recipe.to_dict())))
    for candidate in sorted(runs_dir.glob(f"{recipe.name}-*"), reverse=True):
        if (candidate / "results.json").exists() and (
            _what_trains(json.loads((candidate / "config.json").read_text())) == config
        ):
            return candidate
    return None


def _what_trains(config: dict) -> dict:
    """A recipe's config without its claims: a claim changes what is judged, not what is
    trained, so a sweep's finished runs are read back (and judged anew) after a claim is
    added or corrected, and an unfinished run resumes."""
    return {key: value for key, value in config.items() if key != "claims"}


def _train_variant(
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


def _evaluate_variant(
    recipe, variant, splits, run_dir: Path, surrogate, progress: bool, cset=None
) -> dict:
    """Validation accuracy and the robustness report of a trained variant (cached on disk).

    Beside `<variant>.json`, per test example (paired tests between variants on the same
    images): `<variant>.correct.npz`, keyed by the columns of `evidence.headline_metrics` (and
    every other attack, and "robust"), and `<variant>.corruption.npz` with the -C benchmark.
    """
    result_file = run_dir / "variants" / f"{variant}.json"
    if result_file.exists():
        log.info("%s: already evaluated, reusing %s", variant, result_file)
        return json.loads(result_file.read_text())
    model = _trained_model(recipe, variant, splits.info, run_dir)
    train = json.loads((run_dir / "variants" / f"{variant}.train.json").read_text())
    val = model.evaluate(splits.val, verbose=0, return_dict=True)
    classifier = primary_classifier(model)  # evaluation needs the logits only: heads stay idle
    report = robustness(
        classifier,
        splits.test,
        recipe.evaluation,
        surrogate=surrogate,
        progress=progress,
        desc=f"{variant}: test",
        context=variant,
    )
    correct, correct_file = report.pop("correct"), f"{variant}.correct.npz"
    for check in report["sanity"]:
        if check["passed"] is False:
            log.warning("%s: robustness claim not trustworthy: %s", variant, check)
    pgd_label = report["pgd_attack"]
    result = {
        "tasks": list(Variant.parse(variant).tasks),
        "loop": train["loop"],
        "aux_weight": recipe.aux_weight,
        "val_accuracy": float(val["accuracy"]),
        **_selected_epoch_metrics(train),
        "test_accuracy": report["clean"],
        "fgsm_accuracy": report["fgsm"],
        "pgd_accuracy": report["attacks"][pgd_label],
        "pgd_attack": pgd_label,
        "robust_accuracy": report["attacks"][report["headline"]],  # AutoAttack's, if it ran
        "robust_attack": report["headline"],
        "trustworthy": report["trustworthy"],
        "robustness": report,
        "test_examples": report["num_examples"],
        "correct": correct_file,
        "selection": train["selection"],
        "budget": dict(train["budget"]),
        "train_seconds": train["train_seconds"],
        "monitor_seconds": train.get("monitor_seconds", {}),  # absent: trained before recorded
        "epochs_run": train["epochs_run"],
        "parameters": int(model.count_params()),
        "deployed_parameters": int(classifier.count_params()),
        "weights": f"{variant}.weights.h5",
        **train.get("loop_results", {}),  # absent from runs trained before it was recorded
    }
    if cset is not None:
        errors = corruption_errors(
            _predictor(classifier), cset, progress=progress, per_example=True
        )
        corruption_correct = errors.pop("correct")
        result["corruption"] = errors
        result["corruption_correct"] = f"{variant}.corruption.npz"
        save_corruption_correct(
            run_dir / "variants" / result["corruption_correct"], corruption_correct
        )
    if recipe.corruption.heatmap_examples:
        result["heatmap"] = _heatmap(
            recipe,
            classifier,
            splits,
            run_dir / "variants" / variant,
            run_dir / "tensorboard" / variant,
            progress,
        )
    inputs, inputs_correct = _input_robustness(
        recipe, variant, model, classifier, splits, surrogate
    )
    result.update(inputs)
    np.savez(run_dir / "variants" / correct_file, **correct, **inputs_correct)
    write_hparams(run_dir / "tensorboard" / variant, _hparams(recipe, variant), _metrics(result))
    result_file.write_text(json.dumps(result, indent=2))
    return result


def _selected_epoch_metrics(train: dict) -> dict:
    """The validation PGD accuracy of the selected epoch (from the training history), which a
    robust recipe's objective picks the best variant by; none when that epoch did not measure
    it (`monitor.robust_every`)."""
    history, epoch = train["history"], train["selection"]["epoch"]
    if "val_pgd_accuracy" not in history or epoch is None:
        return {}
    value = float(history["val_pgd_accuracy"][epoch - 1])
    return {"val_pgd_accuracy": value} if math.isfinite(value) else {}


def _hparams(recipe: Recipe, variant: str) -> dict:
    """A variant's settings as TensorBoard hparams: λ per task, loop, weighting, ε, m, LR."""
    tasks = sorted({task for v in recipe.variants for task in Variant.parse(v).tasks})
    parsed = Variant.parse(variant)
    weights = parsed.weights(recipe.aux_weight)
    t, a = recipe.training, parsed.recipe(recipe).adversarial  # "@fgsm[eps=0.3]": 0.3
    return {
        "variant": variant,
        "loop": parsed.loop,
        "augmentation": parsed.augmentation or "none",
        "weighting": parsed.weighting,
        **{f"lambda_{task}": weights.get(task, 0.0) for task in tasks},
        "eps": a.eps,
        "replays": a.replays,
        "learning_rate": t.learning_rate,
        "optimizer": t.optimizer,
        "seed": t.seed,
    }


def _metrics(result: dict) -> dict:
    """A variant's headline numbers as hparams metrics (FGSM at each of its ε)."""
    metrics = {key: result[key] for key in ("val_accuracy", "test_accuracy", "pgd_accuracy")}
    metrics.update({f"fgsm_accuracy_{eps}": v for eps, v in result["fgsm_accuracy"].items()})
    return metrics


def _input_robustness(recipe, variant, model, classifier, splits, surrogate) -> tuple[dict, dict]:
    """Seed 003's disturbances, seed 004's augmented accuracies and denoiser report, and the
    per-example correctness behind each accuracy, keyed by its `evidence.headline_metrics`
    column (the disturbances' "clean" left out: the robustness report's is the test set's)."""
    config, result, correct = recipe.evaluation, {}, {}
    reporting_tasks = [task for task in model.tasks if task.reports]
    if not (config.disturbances or config.augmented or reporting_tasks):
        return result, correct
    x, y = _test_prefix(splits, splits.info.num_test)
    flip = _flip_invariant(recipe)
    seed = recipe.training.seed
    if config.disturbances:
        result["disturbances"], disturbed = disturbance_accuracy(
            _predictor(classifier), x, y, seed=seed, flip=flip, return_correct=True
        )
        correct.update({name: v for name, v in disturbed.items() if name != "clean"})
    if config.augmented:
        result["augmented"] = {}
        for name in config.augmented:
            result["augmented"][name], hits = augmented_accuracy(
                classifier,
                x,
                y,
                name,
                seed=seed,
                flip=flip,
                surrogate=surrogate,
                eps=recipe.evaluation.eps,
                return_correct=True,
            )
            correct[name] = hits["augmented"]
            if "fgsm_augmented" in hits:
                correct[f"FGSM(baseline) + {name}"] = hits["fgsm_augmented"]
    for task in reporting_tasks:  # the tasks' own reports (the denoiser's)
        result.update(task.report(model, x, y, recipe=recipe, flip=flip))
    return result, correct


def _flip_invariant(recipe: Recipe) -> bool:
    """Whether mirroring keeps the labels of the recipe's dataset (not for digits)."""
    return dataset_spec(recipe.data.dataset).flip_invariant


def _trained_model(
    recipe: Recipe, variant: str, info, run_dir: Path, key: str | None = None
) -> keras.Model:
    """The variant's trained model, in float32 (see `load_trained`)."""
    return load_trained(
        recipe, variant, info, run_dir / "variants" / f"{key or variant}.weights.h5"
    )


# === Corruption benchmark and Fourier heat map (seed 001) ===
def _test_prefix(splits, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` test images and labels, as arrays (the test split is not shuffled)."""
    return first_examples(splits.test, n)


def _corrupted_test_set(recipe: Recipe, splits, progress: bool):
    """The cached "-C" version of the first `corruption.examples` test images, or None."""
    config = recipe.corruption
    if not config.enabled:
        return None
    x, y = _test_prefix(splits, config.examples)
    # One directory per constants, so switching back and forth reuses both sets.
    name = f"{splits.info.name}-{len(x)}-{config.constants}"
    return corrupted_set(
        x,
        y,
        Path(config.cache_dir).expanduser() / name,
        corruptions=config.corruptions,
        severities=config.severities,
        seed=recipe.training.seed,
        constants=config.constants,
        progress=progress,
    )


def _reference_errors(recipe: Recipe, splits, run_dir: Path, cset, progress: bool):
    """Errors of the CE reference: the `corruption.reference` backbone (AlexNet, as seed 001
    eq. 8), trained by this recipe with the standard loop and evaluated on the same -C set.

    Cached as `<key>.corruption.json` and, per example (paired tests of CE between variants
    resample the reference's images too), `<key>.corruption.npz`; a run from before the npz
    existed is evaluated again for it.
    """
    if cset is None:
        return None
    key = _reference_key(recipe)
    cached, correct_file = _reference_files(recipe, run_dir)
    if _has_reference_errors(recipe, run_dir):
        return json.loads(cached.read_text())
    # Trained with the variants (`run`), where every worker of a multi-worker job takes part.
    model = _trained_model(reference_recipe(recipe), "none", splits.info, run_dir, key=key)
    predict = _predictor(primary_classifier(model))
    errors = corruption_errors(predict, cset, progress=progress, per_example=True)
    save_corruption_correct(correct_file, errors.pop("correct"))
    errors = {"name": key, **errors, "correct": correct_file.name}
    cached.write_text(json.dumps(errors, indent=2))
    return errors


def _reference_key(recipe: Recipe) -> str:
    """The name the CE reference's files go by in a run's `variants/` ("reference_alexnet")."""
    return f"reference_{recipe.corruption.reference}"


def _reference_files(recipe: Recipe, run_dir: Path) -> tuple[Path, Path]:
    """The CE reference's errors (`.corruption.json`) and per-example record (`.npz`)."""
    key = _reference_key(recipe)
    return (
        run_dir / "variants" / f"{key}.corruption.json",
        run_dir / "variants" / f"{key}.corruption.npz",
    )


def _has_reference_errors(recipe: Recipe, run_dir: Path) -> bool:
    return all(path.exists() for path in _reference_files(recipe, run_dir))


def _share_reference(first: Recipe, singles: list[Recipe], run_dir: Path, progress: bool):
    """One CE reference for every seed of a sweep: trained with the first seed in the sweep's
    own directory, evaluated once, and its errors copied into each seed's run before it starts.

    The reference is a fixed normalizer (the paper divides by one AlexNet's errors); one per
    seed added its own training noise to every CE difference and cost the sweep n × its
    training (3 × the variants' epochs each). A multi-worker sweep keeps one per seed: its
    workers would race for the copies.
    """
    if not _has_reference_errors(first, run_dir):
        key = _reference_key(first)
        _train_variant(reference_recipe(first), "none", run_dir, progress, key=key)
        splits = load_splits(first)
        cset = _corrupted_test_set(first, splits, progress)
        _reference_errors(first, splits, run_dir, cset, progress)
    for single in singles:
        if _finished_run(run_dir / "seeds", single) is None:
            seed_dir = run_directory(run_dir / "seeds", single, fresh=False)  # run() resumes it
            for source, target in zip(
                _reference_files(first, run_dir), _reference_files(single, seed_dir), strict=True
            ):
                writable_dir(target.parent)
                if not target.exists():
                    shutil.copyfile(source, target)


def reference_recipe(recipe: Recipe) -> Recipe:
    """The recipe of the CE reference: its backbone, the standard loop (the caller trains
    "none"), `corruption.reference_epochs` epochs (default 3 × the variants')."""
    epochs = recipe.corruption.reference_epochs or 3 * recipe.training.epochs
    return dataclasses.replace(
        recipe,
        model=dataclasses.replace(recipe.model, backbone=recipe.corruption.reference),
        training=dataclasses.replace(recipe.training, epochs=epochs),
    )


def _corruption_summary(recipe: Recipe, variants: dict, reference: dict) -> dict:
    """CE and mCE (%) of every variant against the reference, as its "corruption_error"."""
    for result in variants.values():
        result["corruption_error"] = corruption_error(result["corruption"], reference)
    return {
        "reference": reference["name"],
        "reference_epochs": reference_recipe(recipe).training.epochs,
        "epochs": recipe.training.epochs,
        "reference_errors": reference,
        "examples": recipe.corruption.examples,
        "definition": "CE_c = sum_s E(c,s) / sum_s E_ref(c,s) in %; mCE = mean over the 15 "
        "common corruptions, val. mCE over the 4 validation ones; a CE column per corruption",
    }


def _predictor(classifier: keras.Model):
    """The compiled logits of a `primary_classifier` in inference mode."""

    @tf.function(reduce_retracing=True)
    def predict(x):
        return classifier(x, training=False)

    return predict


def _heatmap(recipe: Recipe, classifier, splits, stem: Path, log_dir: Path, progress: bool) -> dict:
    config = recipe.corruption
    x, y = _test_prefix(splits, config.heatmap_examples)
    heatmap = fourier_heatmap(classifier, x, y, eps=config.heatmap_eps, progress=progress)
    path = save_heatmap(heatmap, stem.parent / f"{stem.name}.heatmap.npy")
    write_heatmap(log_dir, heatmap, title=stem.name)
    return {"file": path.name, "mean_accuracy": float(heatmap.mean()), "examples": len(x)}


def _surrogate(recipe: Recipe, info, run_dir: Path) -> keras.Model | None:
    """A standard-trained variant for the transfer check: "none" if present, else None."""
    standard = [v for v in recipe.variants if Variant.parse(v).loop == STANDARD]
    if not standard:
        log.info("no standard-trained variant: the transfer sanity check is skipped")
        return None
    model = _trained_model(recipe, "none" if "none" in standard else standard[0], info, run_dir)
    return primary_classifier(model)


def _export(recipe: Recipe, variant: str, result: dict, splits, run_dir: Path, parent: Path):
    model = _trained_model(recipe, variant, splits.info, run_dir)
    info = splits.info
    return saved_model(
        model,
        parent / run_dir.name,
        class_names=info.class_names,
        metadata={
            "run": run_dir.name,
            "recipe": recipe.to_dict(),
            "variant": variant,
            "dataset": info.name,
            "metrics": {
                k: result[k]
                for k in ("val_accuracy", "test_accuracy", "fgsm_accuracy", "pgd_accuracy")
            },
        },
    )


def run_directory(runs_dir: Path, recipe: Recipe, fresh: bool) -> Path:
    """A new `runs/<recipe>-<timestamp>`, or the newest unfinished run of the same config.

    A multi-worker run is `runs/<recipe>-<hash of the config>` instead: every worker computes
    the same name without talking to the others (a timestamp would differ between them), and
    the same command started again finds it.
    """
    config = json.loads(json.dumps(recipe.to_dict()))  # tuples → lists, as read back from disk
    if recipe.training.strategy == "multi_worker":
        trains = json.dumps(_what_trains(config), sort_keys=True)
        digest = hashlib.sha256(trains.encode()).hexdigest()[:10]
        run_dir = runs_dir / f"{recipe.name}-{digest}"
        if (run_dir / "results.json").exists() or (fresh and run_dir.exists()):
            raise ValueError(
                f"Expected no finished multi-worker run of this recipe. Received: {run_dir} "
                "exists; delete it or pass another --runs-dir"
            )
        if is_chief():
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(config, indent=2))
        return run_dir
    if not fresh:
        for candidate in sorted(runs_dir.glob(f"{recipe.name}-*"), reverse=True):
            config_file = candidate / "config.json"
            if (
                not (candidate / "results.json").exists()
                and config_file.exists()
                and _what_trains(json.loads(config_file.read_text())) == _what_trains(config)
            ):
                return candidate
    run_dir = runs_dir / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_dir / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    return run_dir
