"""A run's results as evidence: what its per-example records say about variant a − variant b
on one metric (`tfaux.statistics.Evidence`), for the comparison tables and a recipe's claims.

Every report reads the same records: per variant, `<variant>.correct.npz` (each accuracy
column's per-test-image correctness) and `<variant>.corruption.npz` (each -C image's, with the
CE reference's beside it). With them, a comparison is paired image by image (McNemar within a
seed, stratified over seeds, a paired bootstrap for CE); without them (runs from before they
were kept), only the per-seed numbers remain, and a t over seeds needs three distinct
differences.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tfaux import statistics
from tfaux.evaluate.corruption import load_corruption_correct
from tfaux.results import RunResults, VariantResult


def headline(r: VariantResult | dict) -> tuple[str, float, int | None]:
    """A variant's headline robust accuracy: (attack, accuracy, test images it ran on) —
    AutoAttack's worst case where it ran, else the PGD-k the sanity checks use."""
    r = VariantResult.coerce(r)
    label = r.pgd_attack if r.robust_attack is None else r.robust_attack
    accuracy = r.pgd_accuracy if r.robust_accuracy is None else r.robust_accuracy
    return label, accuracy, r.robustness["examples"].get(label)


def headline_metrics(result: VariantResult | dict) -> dict[str, float]:
    """A variant's headline accuracies (fractions), flat, keyed by column name: clean, FGSM and
    PGD, AutoAttack where it ran, seed 003's disturbances, seed 004's augmented sets."""
    result = VariantResult.coerce(result)
    metrics = {"clean": result.test_accuracy}
    metrics.update({f"FGSM ε={e}": v for e, v in result.fgsm_accuracy.items()})
    report = result.robustness
    metrics.update(  # the PGD-k run on the whole test set, not the sanity checks' prefixes
        {
            k: v
            for k, v in report["attacks"].items()
            if k.startswith("PGD") and report["examples"][k] == report["num_examples"]
        }
    )
    label, accuracy, _ = headline(result)
    metrics[label] = accuracy  # AutoAttack's worst case where it ran (on its own prefix)
    metrics.update({k: v for k, v in (result.disturbances or {}).items() if k != "clean"})
    for name, accuracies in (result.augmented or {}).items():
        metrics[name] = accuracies["augmented"]
        if "fgsm_augmented" in accuracies:
            metrics[f"FGSM(baseline) + {name}"] = accuracies["fgsm_augmented"]
    return metrics


def load_correct(run_dir: Path, results: RunResults | dict) -> dict[str, dict[str, np.ndarray]]:
    """Per variant, which test examples it classifies correctly, from
    `<run_dir>/variants/<r["correct"]>`: "clean" and "robust" (the headline attack), and in
    newer runs every `headline_metrics` column and every other attack, each on the images it
    ran on. Boolean arrays, except "five_crop": the fraction of an image's five crops right.
    Variants of the oldest runs have none."""
    correct = {}
    for name, r in RunResults.coerce(results).variants.items():
        if r.correct is not None:
            with np.load(Path(run_dir) / "variants" / r.correct) as arrays:
                correct[name] = {key: _per_example(arrays[key]) for key in arrays.files}
    return correct


def _per_example(array: np.ndarray) -> np.ndarray:
    """Correctness as booleans; fractions (five_crop's) as they are."""
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(bool)


class RunRecord:
    """One finished run (one seed of a sweep): its results and its per-example files, read
    once, when a comparison first needs them. `results` is as given (results.json's dict or
    `RunResults`), `run` the typed results."""

    def __init__(self, run_dir: str | Path, results: RunResults | dict):
        self.run_dir, self.results = Path(run_dir), results
        self.run = RunResults.coerce(results)
        self._correct: dict | None = None
        self._corruption: dict[str, dict | None] = {}

    def correct(self) -> dict[str, dict[str, np.ndarray]]:
        if self._correct is None:
            self._correct = load_correct(self.run_dir, self.run)
        return self._correct

    def corruption(self, variant: str | None) -> dict | None:
        """A variant's -C correctness (`load_corruption_correct`); None: the CE reference's.
        None where the run kept none."""
        if variant not in self._corruption:
            if variant is None:
                name = (self.run.corruption or {}).get("reference_errors", {}).get("correct")
            else:
                result = self.run.variants.get(variant)
                name = None if result is None else result.corruption_correct
            path = self.run_dir / "variants" / name if name else None
            self._corruption[variant] = load_corruption_correct(path) if path else None
        return self._corruption[variant]


# === Which number a metric names ===
CORRUPTION_KINDS = ("mce", "val_mce", "ce")


def column(metric: str, result: VariantResult | dict) -> str | None:
    """The per-example key (a `headline_metrics` column, or "robust") of a claim metric
    (`tfaux.config.CLAIM_METRICS`) in a variant's result; None where the run lacks it."""
    result = VariantResult.coerce(result)
    kind, _, argument = metric.partition(":")
    if kind in ("clean", "robust"):
        return kind
    if kind == "pgd":
        return result.pgd_attack
    if kind == "fgsm":
        # Result keys keep 6 significant digits ("0.0313725" for 8/255); claims give the float.
        keys = [
            k for k in result.fgsm_accuracy if math.isclose(float(k), float(argument), rel_tol=1e-5)
        ]
        return f"FGSM ε={keys[0]}" if keys else None
    if kind == "attack":
        return argument if argument in result.robustness["attacks"] else None
    if kind == "disturbance":
        return argument if argument in (result.disturbances or {}) else None
    if kind == "augmented":
        return argument if argument in (result.augmented or {}) else None
    if kind == "augmented_fgsm":
        found = "fgsm_augmented" in (result.augmented or {}).get(argument, {})
        return f"FGSM(baseline) + {argument}" if found else None
    raise ValueError(f"Expected an accuracy metric. Received: {metric!r}")


def _value(result: VariantResult, key: str) -> float | None:
    """A variant's accuracy under a per-example key, from its results."""
    if key == "robust":
        return headline(result)[1]
    if key in result.robustness["attacks"]:
        return result.robustness["attacks"][key]
    return headline_metrics(result).get(key)


def scale(metric: str) -> float:
    """What turns a metric's evidence into the units a report and a claim's effect use:
    accuracy points (×100) or CE points (already percent)."""
    return 1.0 if metric.partition(":")[0] in CORRUPTION_KINDS else 100.0


# === Evidence ===
def metric_evidence(
    metric: str, a: str, b: str, records: list[RunRecord]
) -> statistics.Evidence | None:
    """a − b on a claim metric over `records` (one per seed), in the metric's own units
    (accuracy as a fraction, CE in percent); None where the runs did not measure it."""
    if any(v not in r.run.variants for r in records for v in (a, b)):
        return None
    kind, _, argument = metric.partition(":")
    if kind in CORRUPTION_KINDS:
        return corruption_evidence(kind, argument, a, b, records)
    keys = {column(metric, r.run.variants[v]) for r in records for v in (a, b)}
    if len(keys) != 1 or None in keys:
        return None
    return accuracy_evidence(keys.pop(), a, b, records)


def accuracy_evidence(
    key: str, a: str, b: str, records: list[RunRecord]
) -> statistics.Evidence | None:
    """a − b accuracy under the per-example `key`, paired image by image where every seed
    kept both variants' records, else over the per-seed accuracies."""
    pairs = []
    for record in records:
        correct = record.correct()
        pair = tuple(correct.get(v, {}).get(key) for v in (a, b))
        if pair[0] is None or pair[1] is None or len(pair[0]) != len(pair[1]):
            break
        pairs.append(pair)
    else:
        if all(p.dtype == np.bool_ for pair in pairs for p in pair):
            return statistics.paired_correctness(pairs)
        # Fractions per image (five_crop): the mean of a − b, resampled image by image.
        return statistics.paired_bootstrap(
            [_weighted_mean(x.astype(float) - y.astype(float)) for x, y in pairs],
            [len(x) for x, _ in pairs],
        )
    values = [[_value(r.run.variants[v], key) for r in records] for v in (a, b)]
    if any(x is None or not math.isfinite(x) for vs in values for x in vs):
        return None
    evidence = statistics.seed_values(*values)
    if math.isnan(evidence.p_value):
        return statistics.no_evidence(
            evidence.difference,
            f"none: {len(records)} seed(s) without per-image records",
            len(records),
        )
    return evidence


def _weighted_mean(values: np.ndarray):
    def statistic(weights: np.ndarray) -> np.ndarray:
        return weights @ values

    return statistic


def corruption_evidence(
    kind: str, argument: str, a: str, b: str, records: list[RunRecord]
) -> statistics.Evidence | None:
    """a − b in mCE ("mce"), validation mCE ("val_mce") or one corruption's CE ("ce"), in CE
    points: a paired bootstrap that resamples the -C images once for a, b and the CE
    reference (every CE divides by the reference's errors on the same images)."""
    statistics_per_seed, sizes, values = [], [], []
    for record in records:
        corruption_errors = [record.run.variants[v].corruption_error for v in (a, b)]
        if None in corruption_errors:
            return None
        corruptions = _corruptions(kind, argument, corruption_errors[0])
        if not corruptions:
            return None
        values.append([_mean_ce(e, corruptions) for e in corruption_errors])
        arrays = [record.corruption(v) for v in (a, b, None)]
        if None in arrays:
            statistics_per_seed = None
            continue
        if statistics_per_seed is not None:
            errors = [_errors(x, corruptions) for x in arrays]
            statistics_per_seed.append(_ce_difference(*errors))
            sizes.append(errors[0].shape[0])
    if statistics_per_seed:
        return statistics.paired_bootstrap(statistics_per_seed, sizes)
    evidence = statistics.seed_values(*zip(*values, strict=True))
    return (
        evidence
        if not math.isnan(evidence.p_value)
        else statistics.no_evidence(
            evidence.difference,
            f"none: {len(records)} seed(s) without per-image -C records",
            len(records),
        )
    )


def _corruptions(kind: str, argument: str, corruption_error: dict) -> list[str]:
    if kind == "ce":
        return [argument] if argument in corruption_error["ce"] else []
    key = "corruptions" if kind == "mce" else "validation_corruptions"
    return list(corruption_error.get(key, []))


def _mean_ce(corruption_error: dict, corruptions: list[str]) -> float:
    return float(np.mean([corruption_error["ce"][c] for c in corruptions]))


def _errors(correct: dict, corruptions: list[str]) -> np.ndarray:
    """Errors [n images, corruptions, severities] as 0/1 floats."""
    return np.stack(
        [np.stack([~x for x in correct["corrupted"][c].values()], axis=-1) for c in corruptions],
        axis=1,
    ).astype(float)


def _ce_difference(errors_a: np.ndarray, errors_b: np.ndarray, reference: np.ndarray):
    """mean_c CE_c(a) − mean_c CE_c(b) under image weights [R, n], CE_c = 100 Σ_s E / Σ_s E_ref
    (`tfaux.evaluate.corruption.corruption_error`). A resample in which the reference makes
    no error on a corruption counts one error (the smallest nonzero rate), not a division by 0."""
    n = errors_a.shape[0]
    totals = [e.sum(axis=2) for e in (errors_a, errors_b, reference)]  # [n, C]

    def statistic(weights: np.ndarray) -> np.ndarray:
        a, b, ref = (weights @ t for t in totals)  # [R, C]
        ref = np.maximum(ref, 1.0 / n)
        return 100 * (a / ref).mean(axis=1) - 100 * (b / ref).mean(axis=1)

    return statistic
