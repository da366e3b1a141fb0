"""Evaluating a trained variant: validation accuracy, the robustness report, the -C benchmark
against the run's CE reference, the Fourier heat map, seed 003/004's input robustness, and
the per-example records behind every number (paired tests read them)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux.config import Recipe
from tfaux.data.corrupted_set import COMMON, VALIDATION, corrupted_set
from tfaux.data.pipeline import mirrors_keep_labels
from tfaux.data.sources import dataset_spec
from tfaux.evaluate import robustness
from tfaux.evaluate.augmented import augmented_accuracy
from tfaux.evaluate.corruption import (
    corruption_error,
    corruption_errors,
    save_corruption_correct,
)
from tfaux.evaluate.disturbances import disturbance_accuracy
from tfaux.evaluate.fourier_heatmap import fourier_heatmap, save_heatmap
from tfaux.experiment import first_examples, load_trained
from tfaux.models import primary_classifier
from tfaux.names import count
from tfaux.results import VariantResult
from tfaux.training.monitor import write_heatmap, write_hparams
from tfaux.variant import STANDARD, Variant

log = logging.getLogger("tfaux")


def evaluate_variant(
    recipe, variant, splits, run_dir: Path, surrogate, progress: bool, cset=None
) -> VariantResult:
    """Validation accuracy and the robustness report of a trained variant (cached on disk).

    Beside `<variant>.json`, per test example (paired tests between variants on the same
    images): `<variant>.correct.npz`, keyed by the columns of `evidence.headline_metrics` (and
    every other attack, and "robust"), and `<variant>.corruption.npz` with the -C benchmark.
    """
    result_file = run_dir / "variants" / f"{variant}.json"
    if result_file.exists():
        log.info("%s: already evaluated, reusing %s", variant, result_file)
        return VariantResult.from_dict(json.loads(result_file.read_text()))
    model = trained_model(recipe, variant, splits.info, run_dir)
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
    write_hparams(run_dir / "tensorboard" / variant, hparams(recipe, variant), _metrics(result))
    result_file.write_text(json.dumps(result, indent=2))
    return VariantResult.from_dict(result)


def _selected_epoch_metrics(train: dict) -> dict:
    """The validation PGD accuracy of the selected epoch (from the training history), which a
    robust recipe's objective picks the best variant by; none when that epoch did not measure
    it (`monitor.robust_every`)."""
    history, epoch = train["history"], train["selection"]["epoch"]
    if "val_pgd_accuracy" not in history or epoch is None:
        return {}
    value = float(history["val_pgd_accuracy"][epoch - 1])
    return {"val_pgd_accuracy": value} if math.isfinite(value) else {}


def hparams(recipe: Recipe, variant: str) -> dict:
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
    """A variant's headline numbers as hparams metrics (FGSM at each of its ε), from the
    result being built."""
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
    return mirrors_keep_labels(recipe.data.dataset, recipe.data.flip)


def trained_model(
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


def corrupted_test_set(recipe: Recipe, splits, progress: bool):
    """The cached "-C" version of the first `corruption.examples` test images, or None."""
    config = recipe.corruption
    if not config.enabled:
        return None
    x, y = _test_prefix(splits, config.examples)
    # One directory per constants, so switching back and forth reuses both sets.
    name = f"{splits.info.name}-{len(x)}-{config.constants}"
    if dataset_spec(recipe.data.dataset).num_classes is None:
        # Your own data ("folder", "tfds:<name>"): its name says nothing about its images.
        digest = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:12]
        name = f"{name.replace(':', '_')}-{digest}"
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


def reference_errors(recipe: Recipe, splits, run_dir: Path, cset, progress: bool):
    """Errors of the CE reference: the `corruption.reference` backbone (AlexNet, as seed 001
    eq. 8), trained by this recipe with the standard loop and evaluated on the same -C set.

    Cached as `<key>.corruption.json` and, per example (paired tests of CE between variants
    resample the reference's images too), `<key>.corruption.npz`; a run from before the npz
    existed is evaluated again for it.
    """
    if cset is None:
        return None
    key = reference_key(recipe)
    cached, correct_file = reference_files(recipe, run_dir)
    if has_reference_errors(recipe, run_dir):
        return json.loads(cached.read_text())
    # Trained with the variants (`run`), where every worker of a multi-worker job takes part.
    model = trained_model(reference_recipe(recipe), "none", splits.info, run_dir, key=key)
    predict = _predictor(primary_classifier(model))
    errors = corruption_errors(predict, cset, progress=progress, per_example=True)
    save_corruption_correct(correct_file, errors.pop("correct"))
    errors = {"name": key, **errors, "correct": correct_file.name}
    cached.write_text(json.dumps(errors, indent=2))
    return errors


def reference_key(recipe: Recipe) -> str:
    """The name the CE reference's files go by in a run's `variants/` ("reference_alexnet")."""
    return f"reference_{recipe.corruption.reference}"


def reference_files(recipe: Recipe, run_dir: Path) -> tuple[Path, Path]:
    """The CE reference's errors (`.corruption.json`) and per-example record (`.npz`)."""
    key = reference_key(recipe)
    return (
        run_dir / "variants" / f"{key}.corruption.json",
        run_dir / "variants" / f"{key}.corruption.npz",
    )


def has_reference_errors(recipe: Recipe, run_dir: Path) -> bool:
    return all(path.exists() for path in reference_files(recipe, run_dir))


def reference_recipe(recipe: Recipe) -> Recipe:
    """The recipe of the CE reference: its backbone, the standard loop (the caller trains
    "none"), `corruption.reference_epochs` epochs (default 3 × the variants')."""
    epochs = recipe.corruption.reference_epochs or 3 * recipe.training.epochs
    return dataclasses.replace(
        recipe,
        model=dataclasses.replace(recipe.model, backbone=recipe.corruption.reference),
        training=dataclasses.replace(recipe.training, epochs=epochs),
    )


def corruption_summary(
    recipe: Recipe, variants: dict[str, VariantResult], reference: dict, examples: int
) -> tuple[dict, dict[str, VariantResult]]:
    """The run's -C summary (`examples`: the test images the -C set holds, which a small test
    split caps below `corruption.examples`), and every variant with its CE and mCE (%) against
    the reference as its `corruption_error`."""
    variants = {
        name: result.replace(corruption_error=corruption_error(result.corruption, reference))
        for name, result in variants.items()
    }
    chosen = recipe.corruption.corruptions
    common = sum(c in COMMON for c in chosen)
    validation = sum(c in VALIDATION for c in chosen)
    summary = {
        "reference": reference["name"],
        "reference_epochs": reference_recipe(recipe).training.epochs,
        "epochs": recipe.training.epochs,
        "reference_errors": reference,
        "examples": examples,
        "definition": "CE_c = sum_s E(c,s) / sum_s E_ref(c,s) in %; mCE = mean over the "
        f"{count(common, 'common corruption')} run (of {len(COMMON)}), val. mCE over the "
        f"{count(validation, 'validation one')} run (of {len(VALIDATION)}); severities "
        f"{', '.join(map(str, recipe.corruption.severities))}; a CE column per corruption",
    }
    return summary, variants


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


def surrogate_model(recipe: Recipe, info, run_dir: Path) -> keras.Model | None:
    """A standard-trained variant for the transfer check: "none" if present, else None."""
    standard = [v for v in recipe.variants if Variant.parse(v).loop == STANDARD]
    if not standard:
        log.info("no standard-trained variant: the transfer sanity check is skipped")
        return None
    model = trained_model(recipe, "none" if "none" in standard else standard[0], info, run_dir)
    return primary_classifier(model)
