"""Benchmark any tfaux export the way RobustBench benchmarks a model: AutoAttack on test images.

The export is attacked through its serving signature only (loaded as a Keras layer), never
through tfaux's model code, so what is measured is what is deployed.

Example:
    report = benchmark("savedmodels/robust_baselines-...", dataset="fashion_mnist", eps=0.1,
                       examples=500)
    report["robust"]  # % of the 500 images still correct after every attack
"""

from __future__ import annotations

import os

import keras
import numpy as np

from tfaux.attacks.names import AUTOATTACK_ATTACKS
from tfaux.attacks.projected_gradient import PGD
from tfaux.attacks.threat_model import check_eps
from tfaux.deploy import dataset_images, load
from tfaux.evaluate.autoattack import AutoAttack

CHOICES = ("autoattack", "pgd", *AUTOATTACK_ATTACKS)
"""What `attacks` may name: the whole standard AutoAttack, PGD-20 (the cheap number), or single
AutoAttack attacks."""


def classifier(directory: str | os.PathLike) -> tuple[keras.Model, dict]:
    """A tfaux export as a Keras model returning its logits, and its metadata."""
    export = load(directory)  # checks it is a tfaux export
    layer = keras.layers.TFSMLayer(str(export.directory), call_endpoint="serving_default")
    images = keras.Input(export.input_shape)
    return keras.Model(images, layer(images)["logits"]), export


def parse_attacks(text: str) -> tuple[str, ...]:
    """ "autoattack", "pgd,square", ... → the names, checked."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in CHOICES]
    if unknown or not names:
        raise ValueError(f"Expected attacks from {', '.join(CHOICES)}. Received: {text!r}")
    return names


def benchmark(
    directory: str | os.PathLike,
    *,
    dataset: str | None = None,
    eps: float,
    examples: int = 500,
    attacks: tuple[str, ...] = ("autoattack",),
    norm: str = "linf",
    version: str = "standard",
    seed: int = 0,
    state_path: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Clean and robust accuracy (%) of an export on the first `examples` test images.

    Args:
        directory: the export (a SavedModel with tfaux's metadata.json).
        dataset: whose test images (default: the dataset the export was trained on).
        eps: the budget in pixel units of [0, 1] images.
        examples: how many test images.
        attacks: see `CHOICES`; "autoattack" is AutoAttack's `version` in full.
        norm: "linf" or "l2".
        version: AutoAttack's version.
        seed: seeds every random start.
        state_path: AutoAttack's resumable state file.
        progress: show progress.

    Returns:
        {"clean", "robust" (worst case per example), one key per attack (accuracy after it),
         "examples", "eps", "norm", "checks", "trustworthy"}, accuracies in percent.
    """
    check_eps(eps, norm)
    if examples <= 0:
        raise ValueError(f"Expected examples > 0. Received: examples={examples}")
    model, export = classifier(directory)
    dataset = dataset or export.metadata.get("dataset")
    if not dataset:
        raise ValueError(
            f"Expected --dataset (the export's metadata names none). Received: {directory}"
        )
    x, y = dataset_images(export, dataset, examples)
    robust = None
    report: dict = {}
    checks = []
    wanted = set(AUTOATTACK_ATTACKS if "autoattack" in attacks else ()) | set(attacks)
    chosen = tuple(name for name in AUTOATTACK_ATTACKS if name in wanted)
    if chosen:
        result = AutoAttack(
            model,
            eps=eps,
            norm=norm,
            version=version,
            attacks=None if "autoattack" in attacks else chosen,
            seed=seed,
        ).run(x, y, state_path=state_path, progress=progress)
        clean, robust, checks = result.clean, result.robust.copy(), result.checks
        report.update({name: _percent(accuracy) for name, accuracy in result.after.items()})
    if "pgd" in attacks:
        pgd = PGD(model, norm=norm, steps=20)
        attacked = pgd.model
        predicted = np.concatenate(
            [
                np.argmax(
                    attacked.predict(pgd(x[i : i + 250], y[i : i + 250], eps=eps, seed=seed)), -1
                )
                for i in range(0, len(x), 250)
            ]
        )
        fooled = predicted != y
        report[pgd.label(check_eps(eps, norm))] = _percent(np.mean(~fooled))
        if robust is None:
            clean = np.argmax(attacked.predict(x), -1) == y
            robust = clean.copy()
        robust &= ~fooled
    return {
        "clean": _percent(np.mean(clean)),
        "robust": _percent(np.mean(robust)),
        **report,
        "examples": int(len(x)),
        "eps": float(eps),
        "norm": norm,
        "dataset": dataset,
        "checks": [check.to_dict() for check in checks],
        "trustworthy": all(check.passed is not False for check in checks),
    }


def _percent(fraction) -> float:
    """A fraction as a percentage with two decimals (92.6, not 92.60000000000001)."""
    return round(100 * float(fraction), 2)
