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
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from tfaux.data.corrupted_set import COMMON, VALIDATION, CorruptedSet
from tfaux.progress import progress_bar

log = logging.getLogger("tfaux")


def corruption_errors(
    predict: Callable, cset: CorruptedSet, *, batch_size: int = 256, progress: bool = True
) -> dict:
    """Top-1 error of a classifier on the clean images and on every (corruption, severity).

    Args:
        predict: maps a float32 NHWC batch in [0, 1] to class scores (numpy array, tensor, or a
            dict with "logits" as our multi-head models return); e.g. `model.predict_on_batch`.
        cset: from `corrupted_set`.
        batch_size: images per `predict` call.
        progress: show progress (a bar on a terminal).

    Returns:
        {"clean_error": e, "errors": {corruption: {severity: e}}, "num_examples": n}, errors as
        fractions in [0, 1] and severities as ints.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected a positive integer batch_size. Received: {batch_size!r}")
    labels = np.asarray(cset.labels)
    if labels.ndim == 2:
        labels = labels.argmax(-1)
    jobs = [(None, None)] + [(c, s) for c in cset.corruptions for s in cset.severities]
    errors: dict = {c: {} for c in cset.corruptions}
    clean_error = None
    for corruption, severity in progress_bar(
        jobs, desc="corruption errors", unit="set", enabled=progress
    ):
        if corruption is None:
            clean_error = _error(predict, cset.clean_images(), labels, batch_size)
        else:
            images = cset.images(corruption, severity)
            errors[corruption][severity] = _error(predict, images, labels, batch_size)
    return {"clean_error": clean_error, "errors": errors, "num_examples": len(labels)}


def _error(predict: Callable, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    wrong = 0
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
        wrong += int(np.sum(scores.argmax(-1) != batch))
    return wrong / len(images)


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
