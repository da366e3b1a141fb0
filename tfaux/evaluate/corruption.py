"""Scoring a classifier on a common-corruption ("-C") set: errors per corruption, CE and mCE.

The score is the corruption error CE_c = Σ_s E_{s,c} / Σ_s E^ref_{s,c}, the error of a model
relative to a reference model (AlexNet in the paper; here any baseline you trained). The sets
themselves are made by `tfaux.data.corrupted_set`, the bar chart by
`tfaux.evaluate.corruption_plot`.

Reference:
    Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR 2019. Zhang et al., "Auxiliary Training: Towards Accurate and Robust
    Models", CVPR 2020, eq. 8.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from tfaux.data.corrupted_set import COMMON, VALIDATION, CorruptedSet
from tfaux.progress import progress_bar

log = logging.getLogger("tfaux")


def corruption_errors(
    predict: Callable,
    cset: CorruptedSet,
    *,
    batch_size: int = 256,
    progress: bool = True,
    per_example: bool = False,
) -> dict:
    """Top-1 error of a classifier on the clean images and on every (corruption, severity).

    Args:
        predict: maps a float32 NHWC batch in [0, 1] to class scores (numpy array, tensor, or a
            dict with "logits" as our multi-head models return); e.g. `model.predict_on_batch`.
        cset: from `corrupted_set`.
        batch_size: images per `predict` call.
        progress: show progress (a bar on a terminal).
        per_example: also return which images are classified correctly, for paired tests
            (a bootstrap of CE and mCE over the same test images) between models.

    Returns:
        {"clean_error": e, "errors": {corruption: {severity: e}}, "num_examples": n}, errors as
        fractions in [0, 1] and severities as ints; with `per_example`, also "correct":
        {"clean": bool[n], "corrupted": {corruption: {severity: bool[n]}}} (numpy, not JSON:
        `save_corruption_correct` writes it), each error being exactly 1 - its array's mean.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected a positive integer batch_size. Received: {batch_size!r}")
    labels = np.asarray(cset.labels)
    if labels.ndim == 2:
        labels = labels.argmax(-1)
    jobs = [(None, None)] + [(c, s) for c in cset.corruptions for s in cset.severities]
    correct: dict = {"clean": None, "corrupted": {c: {} for c in cset.corruptions}}
    for corruption, severity in progress_bar(
        jobs, desc="corruption errors", unit="set", enabled=progress
    ):
        if corruption is None:
            correct["clean"] = _correct(predict, cset.clean_images(), labels, batch_size)
        else:
            images = cset.images(corruption, severity)
            correct["corrupted"][corruption][severity] = _correct(
                predict, images, labels, batch_size
            )
    result = {
        "clean_error": _error(correct["clean"]),
        "errors": {
            c: {s: _error(hits) for s, hits in by.items()} for c, by in correct["corrupted"].items()
        },
        "num_examples": len(labels),
    }
    return {**result, "correct": correct} if per_example else result


def save_corruption_correct(path: str | os.PathLike, correct: dict) -> Path:
    """Writes `corruption_errors(..., per_example=True)["correct"]` as an npz file.

    The layout (`load_corruption_correct` reads it back): "clean" → bool[n] and
    "<corruption>/<severity>" → bool[n] (e.g. "gaussian_noise/3"), one array per key so that a
    reader needs no other metadata.
    """
    if not isinstance(correct, Mapping) or set(correct) != {"clean", "corrupted"}:
        keys = sorted(correct) if isinstance(correct, Mapping) else type(correct).__name__
        raise ValueError(
            "Expected corruption_errors(..., per_example=True)['correct'], with 'clean' and "
            f"'corrupted'. Received: {keys}"
        )
    arrays = {"clean": np.asarray(correct["clean"], bool)}
    for corruption, by_severity in correct["corrupted"].items():
        for severity, hits in by_severity.items():
            arrays[f"{corruption}/{int(severity)}"] = np.asarray(hits, bool)
    path = Path(path)
    np.savez(path, **arrays)
    return path


def load_corruption_correct(path: str | os.PathLike) -> dict:
    """Per-example correctness written by `save_corruption_correct`, in the layout
    `corruption_errors(..., per_example=True)` returns it.

    Returns:
        {"clean": bool[n], "corrupted": {corruption: {severity (int): bool[n]}}}, corruptions in
        the order they were measured and severities ascending.
    """
    correct: dict = {"clean": None, "corrupted": {}}
    with np.load(path) as arrays:
        keys = arrays.files
        for key in keys:
            if key == "clean":
                correct["clean"] = arrays[key].astype(bool)
                continue
            corruption, _, severity = key.rpartition("/")
            if not corruption or not severity.isdigit():
                raise ValueError(
                    "Expected keys 'clean' and '<corruption>/<severity>' in a corruption "
                    f"correctness file. Received: {key!r} in {path}"
                )
            by_severity = correct["corrupted"].setdefault(corruption, {})
            by_severity[int(severity)] = arrays[key].astype(bool)
    if correct["clean"] is None:
        raise ValueError(f"Expected a 'clean' array in {path}. Received: keys {keys}")
    correct["corrupted"] = {c: dict(sorted(by.items())) for c, by in correct["corrupted"].items()}
    return correct


def _error(correct: np.ndarray) -> float:
    """The fraction of images not classified correctly (a count over a count: exact)."""
    return int(np.sum(~correct)) / len(correct)


def _correct(
    predict: Callable, images: np.ndarray, labels: np.ndarray, batch_size: int
) -> np.ndarray:
    hits = []
    for start in range(0, len(images), batch_size):
        scores = predict(images[start : start + batch_size])
        if isinstance(scores, Mapping):
            if "logits" not in scores:
                raise ValueError(
                    f"Expected predict to return scores or a dict with 'logits'. "
                    f"Received: a dict with keys {sorted(scores)}"
                )
            scores = scores["logits"]
        scores = np.asarray(scores)
        batch = labels[start : start + batch_size]
        if scores.ndim != 2 or len(scores) != len(batch):
            raise ValueError(
                f"Expected predict to return scores of shape ({len(batch)}, num_classes). "
                f"Received: shape {scores.shape}"
            )
        hits.append(scores.argmax(-1) == batch)
    return np.concatenate(hits)


def mean_errors(errors: dict) -> dict[str, float]:
    """Each corruption's error averaged over severities (fractions), from `corruption_errors`."""
    _, table = _table(errors, "errors")
    return {c: float(np.mean(list(by_severity.values()))) for c, by_severity in table.items()}


def corruption_error(
    errors: dict, reference_errors: dict, corruptions: Iterable[str] = COMMON
) -> dict:
    """Corruption errors relative to a reference model, in percent like the papers' tables.

    CE_c = Σ_s E_{s,c} / Σ_s E^ref_{s,c} (Hendrycks & Dietterich; Zhang et al. eq. 8 per
    corruption) and the relative CE_c = Σ_s (E_{s,c} - E_clean) / Σ_s (E^ref_{s,c} - E^ref_clean),
    which asks how much a model *degrades* compared with the reference. A reference that does not
    degrade on a corruption leaves its relative CE undefined: it is then NaN (with a warning), and
    so is relative_mCE, while CE and mCE stay meaningful.

    Args:
        errors: a model's `corruption_errors` result (severity keys may be ints or strings,
            as after a JSON round trip).
        reference_errors: the reference model's, e.g. a standard-trained baseline.
        corruptions: which corruptions to average over; those in neither table are skipped, one in
            only one table is an error.

    Returns:
        {"ce": {c: %}, "relative_ce": {c: %}, "mCE": %, "relative_mCE": %, "mean_error": % (mean
        error over all used corruptions and severities, not normalized), "clean_error": %,
        "corruptions": [used names], "validation_mCE": % over the 4 validation corruptions
        (`VALIDATION`) found in both tables, NaN without them, "validation_corruptions": [...]};
        "ce" and "relative_ce" cover the used and the validation corruptions (seed 001's
        Table 7 shows all 19), the means only their own sets.
    """
    clean, table = _table(errors, "errors")
    ref_clean, ref_table = _table(reference_errors, "reference_errors")
    corruptions = list(corruptions)
    one_sided = [c for c in corruptions if (c in table) != (c in ref_table)]
    if one_sided:
        where = [
            f"{c} (only in {'errors' if c in table else 'reference_errors'})" for c in one_sided
        ]
        raise ValueError(
            "Expected every corruption in both errors and reference_errors. "
            f"Received: {', '.join(where)}"
        )
    used = [c for c in corruptions if c in table]
    if not used:
        raise ValueError(
            f"Expected at least one of {corruptions} in the error tables. "
            f"Received: tables with {sorted(table)}"
        )
    validation = [c for c in VALIDATION if c in table and c in ref_table and c not in used]
    ce, relative = {}, {}
    for c in [*used, *validation]:
        if sorted(table[c]) != sorted(ref_table[c]):
            raise ValueError(
                f"Expected the same severities for {c!r} in both tables. "
                f"Received: {sorted(table[c])} and {sorted(ref_table[c])}"
            )
        severities = sorted(table[c])
        ref_sum = sum(ref_table[c][s] for s in severities)
        if ref_sum == 0:
            raise ValueError(
                f"Expected the reference to make errors on {c!r}; CE divides by their sum. "
                f"Received: reference errors {[ref_table[c][s] for s in severities]}"
            )
        ce[c] = 100 * sum(table[c][s] for s in severities) / ref_sum
        ref_degradation = sum(ref_table[c][s] - ref_clean for s in severities)
        if ref_degradation > 0:
            relative[c] = 100 * sum(table[c][s] - clean for s in severities) / ref_degradation
        else:
            log.warning(
                "Relative CE of %s is undefined: the reference is no worse than on clean images "
                "(Σ_s (E_ref - E_ref_clean) = %.4g).",
                c,
                ref_degradation,
            )
            relative[c] = math.nan
    return {
        "ce": ce,
        "relative_ce": relative,
        "mCE": float(np.mean([ce[c] for c in used])),
        "relative_mCE": float(np.mean([relative[c] for c in used])),
        "validation_mCE": float(np.mean([ce[c] for c in validation])) if validation else math.nan,
        "validation_corruptions": validation,
        "mean_error": 100 * float(np.mean([e for c in used for e in table[c].values()])),
        "clean_error": 100 * clean,
        "corruptions": used,
    }


def _table(errors: dict, argument: str) -> tuple[float, dict[str, dict[int, float]]]:
    """(clean error, {corruption: {int severity: error}}), checked to be fractions."""
    if not isinstance(errors, Mapping) or "errors" not in errors or "clean_error" not in errors:
        keys = sorted(errors) if isinstance(errors, Mapping) else type(errors).__name__
        raise ValueError(
            f"Expected {argument} as returned by corruption_errors, with 'clean_error' and "
            f"'errors'. Received: {keys}"
        )
    table = {c: {int(s): float(e) for s, e in by.items()} for c, by in errors["errors"].items()}
    values = [float(errors["clean_error"])] + [e for by in table.values() for e in by.values()]
    if not all(0 <= e <= 1 for e in values):
        raise ValueError(
            f"Expected errors as fractions in [0, 1] in {argument}. "
            f"Received: values from {min(values)} to {max(values)}"
        )
    return float(errors["clean_error"]), table
