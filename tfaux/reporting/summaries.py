"""What a run's and a sweep's numbers say: each variant against the baseline (per run and
paired over seeds), the summaries of seed and backbone sweeps, RobustBench entries."""

from __future__ import annotations

import json
import math

import numpy as np

from tfaux import statistics
from tfaux.cells import finite
from tfaux.claims import judge_claims
from tfaux.config import Claim
from tfaux.evidence import RunRecord, accuracy_evidence, headline, headline_metrics
from tfaux.results import RunResults, VariantResult


def baseline_comparison(
    results: RunResults | dict, correct: dict[str, dict[str, np.ndarray]], confidence: float = 0.95
) -> dict:
    """Every variant against `results["baseline"]` on the same test images, clean and under the
    headline attack (AutoAttack or PGD, the same for all): McNemar's exact test with Holm's
    correction over the variants of each metric, the Bonett–Price interval at each row's Holm
    step (`tfaux.statistics.judge`); {} if the run has no baseline or the baseline no
    per-example results.

    Returns:
        {"baseline", "confidence", "metrics": {"clean": label, "robust": label},
         "variants": {name: {"clean"|"robust": {difference, low, high, p_value, adjusted_p,
         mde, variant_only, baseline_only, n, verdict}}}}, differences as fractions.
    """
    results = RunResults.coerce(results)
    baseline = results.baseline
    if baseline not in correct:
        return {}
    alpha = 1 - confidence
    variants: dict[str, dict] = {name: {} for name in correct if name != baseline}
    for key in ("clean", "robust"):
        evidence, tests = {}, {}
        for name in variants:
            arrays = correct[name]
            attacks = {n: headline(results.variants[n])[0] for n in (name, baseline)}
            if attacks[name] != attacks[baseline]:  # e.g. a result read from an older config
                raise ValueError(
                    f"Expected {name} and {baseline} to have the same headline attack. "
                    f"Received: {attacks[name]!r} and {attacks[baseline]!r}; re-run with --fresh"
                )
            if key not in arrays or key not in correct[baseline]:
                continue
            if arrays[key].shape != correct[baseline][key].shape:
                raise ValueError(
                    f"Expected {name}'s and {baseline}'s {key} correctness on the same test "
                    f"images. Received: {arrays[key].shape[0]} and "
                    f"{correct[baseline][key].shape[0]} examples."
                )
            pair = (arrays[key], correct[baseline][key])
            evidence[name] = statistics.paired_correctness([pair])
            tests[name] = statistics.paired_test(*pair)
        for name, j in statistics.judge(evidence, alpha).items():
            variants[name][key] = {
                "difference": j.difference,
                "low": j.low,
                "high": j.high,
                "p_value": j.p_value,
                "adjusted_p": j.adjusted_p,
                "mde": j.mde,
                "variant_only": tests[name].variant_only,
                "baseline_only": tests[name].baseline_only,
                "n": j.n,
                "verdict": statistics.table_verdict(j, alpha),
            }
    return {
        "baseline": baseline,
        "confidence": confidence,
        "metrics": {"clean": "clean", "robust": headline(results.variants[baseline])[0]},
        "variants": variants,
    }


def seed_summary(
    recipe: str,
    run: str,
    per_seed: dict,
    confidence: float = 0.95,
    claims: tuple[Claim, ...] = (),
) -> dict:
    """Every variant's headline metrics over seeds (values, mean, sample std, Student t CI);
    when the runs name a baseline, every variant minus the baseline paired by seed and image
    (`tfaux.evidence.accuracy_evidence`, Holm over the variants of each metric); each
    variant's selected epochs and budget in every seed; the best variant on the mean over
    seeds of the runs' own criterion; and the recipe's claims judged over the seeds.

    Args:
        recipe: the recipe's name.
        run: the run directory's name.
        per_seed: {seed: result} where `result.results` is that seed's results dict and
            `result.run_dir` its directory (per-example records are read from it).
        confidence: coverage of the intervals (α = 1 − confidence for the verdicts).
        claims: the recipe's claims.

    Returns:
        The summary `write_seed_report` writes as results.json; CI bounds and p-values are None
        where undefined (one seed).
    """
    records = [RunRecord(result.run_dir, result.results) for result in per_seed.values()]
    by_seed: dict[str, dict[str, dict]] = {}  # variant → metric → seed → value
    for seed, record in zip(per_seed, records, strict=True):
        for name, r in record.run.variants.items():
            for key, value in headline_metrics(r).items():
                by_seed.setdefault(name, {}).setdefault(key, {})[seed] = value
    first = records[0].run
    best_by = first.best_by or "val_accuracy"
    criterion = {
        name: float(np.mean([_criterion(r.run.variants[name], best_by) for r in records]))
        for name in first.variants
    }
    summary = {
        "recipe": recipe,
        "run": run,
        "seeds": list(per_seed),
        "seed_runs": {str(seed): result.run_dir.name for seed, result in per_seed.items()},
        "confidence": confidence,
        "variants": {
            name: {
                key: _seed_stats(list(values.values()), confidence)
                for key, values in metrics.items()
            }
            for name, metrics in by_seed.items()
        },
        "best_variant": max(criterion, key=criterion.get),
        "best_by": f"mean {best_by} over seeds",
        "budget_rule": first.budget_rule,
        "training": {name: _training_marks(records, name) for name in first.variants},
        "trustworthy": {
            str(seed): {n: r.trustworthy for n, r in record.run.variants.items()}
            for seed, record in zip(per_seed, records, strict=True)
        },
    }
    baseline = first.baseline
    if baseline in by_seed:
        summary["baseline"] = baseline
        summary["comparison"] = _seed_comparison(records, by_seed, baseline, confidence)
    if claims:
        summary["claims"] = judge_claims(claims, records, 1 - confidence)
    return summary


def _criterion(result: VariantResult, best_by: str) -> float:
    """A variant's value of the runs' best-by metric; -1 where it was not measured."""
    value = getattr(result, best_by)
    return -1.0 if value is None else value


def _training_marks(records: list[RunRecord], name: str) -> dict:
    """A variant's selected epoch and budget in every seed, and whether any seed broke the
    budget rule (the mark a single run's table carries)."""
    results = [r.run.variants[name] for r in records]
    budgets = [r.budget or {} for r in results]
    return {
        "selection": [r.selection for r in results],
        "optimizer_steps": [b.get("optimizer_steps") for b in budgets],
        "example_passes": [b.get("example_passes") for b in budgets],
        "relative": [b.get("relative") for b in budgets],
        "within_budget": all(b.get("within", True) for b in budgets),
    }


def _seed_stats(values: list[float], confidence: float) -> dict:
    if all(map(math.isfinite, values)):
        mean, low, high = statistics.mean_ci(values, confidence)
    else:  # a metric with no examples (NaN) in some seed: no interval
        mean, low, high = float(np.mean(values)), math.nan, math.nan
    return {
        "values": values,
        "mean": mean,
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "low": finite(low),
        "high": finite(high),
    }


def _seed_comparison(
    records: list[RunRecord], by_seed: dict, baseline: str, confidence: float
) -> dict:
    """{variant: {metric: difference}}: each variant minus the baseline over seeds, paired by
    seed and, where the runs kept them, by test image; Holm over the variants of each metric."""
    alpha = 1 - confidence
    metrics = list(dict.fromkeys(key for m in by_seed.values() for key in m))
    comparison: dict[str, dict[str, dict]] = {n: {} for n in by_seed if n != baseline}
    for key in metrics:
        evidence = {}
        for name in comparison:
            if key not in by_seed[name] or key not in by_seed[baseline]:
                continue
            found = accuracy_evidence(_record_key(key, records, name), name, baseline, records)
            if found is not None:
                evidence[name] = found
        for name, j in statistics.judge(evidence, alpha).items():
            comparison[name][key] = {
                "difference": j.difference,
                "low": finite(j.low),
                "high": finite(j.high),
                "p_value": finite(j.p_value),
                "adjusted_p": finite(j.adjusted_p),
                "mde": finite(j.mde),
                "test": j.test,
                "n": j.n,
                "verdict": statistics.table_verdict(j, alpha),
            }
    return comparison


def _record_key(column: str, records: list[RunRecord], name: str) -> str:
    """The per-example key of a `headline_metrics` column: itself, except AutoAttack's worst
    case, which older runs kept only as "robust"."""
    result = records[0].run.variants[name]
    label = headline(result)[0]
    return "robust" if column == label and label != result.pgd_attack else column


def robustbench_entries(results: RunResults | dict) -> list[dict]:
    """One RobustBench-style leaderboard entry per variant that AutoAttack evaluated: the
    fields of theirs that apply (accuracies in %, over the images each number ran on)."""
    entries = []
    results = RunResults.coerce(results)
    for name, r in results.variants.items():
        autoattack = r.robustness.get("autoattack")
        if autoattack is None:
            continue
        entries.append(
            {
                "name": f"{results.recipe}/{name}",
                "dataset": results.dataset["name"],
                "architecture": results.backbone,
                "threat_model": {"linf": "Linf", "l2": "L2"}[autoattack["norm"]],
                "eps": autoattack["eps"],
                "clean_acc": round(100 * r.test_accuracy, 2),
                "clean_examples": r.robustness["num_examples"],
                "autoattack_acc": round(100 * autoattack["robust"], 2),
                "autoattack_examples": autoattack["examples"],
                "autoattack_version": autoattack["version"],
                "number_forward_passes": 1,  # one deterministic pass; the checks flag randomness
                "trustworthy": autoattack["trustworthy"],
            }
        )
    return entries


def backbone_summary(recipe: str, run: str, per_backbone: dict) -> dict:
    """Every backbone's variants (clean and headline robust accuracy) and their comparison with
    the baseline, from one finished run per backbone (`tfaux.results.RunResult`s); from one
    seed sweep per backbone, their means and paired comparisons over seeds (and "seeds")."""
    backbones = {}
    for backbone, result in per_backbone.items():
        if "seeds" in result.results:  # a seed sweep's summary
            backbones[backbone] = _backbone_over_seeds(result)
            continue
        results = RunResults.coerce(result.results)
        backbones[backbone] = {
            "run": result.run_dir.name,
            "baseline": results.baseline,
            "variants": {
                name: {
                    "test_accuracy": r.test_accuracy,
                    "robust_accuracy": headline(r)[1],
                    "robust_attack": headline(r)[0],
                    "selection": r.selection,
                    "budget": r.budget,
                }
                for name, r in results.variants.items()
            },
            "budget_rule": results.budget_rule,
            "comparison": results.comparison or {},
            "claims": results.claims or [],
        }
    summary = {"recipe": recipe, "run": run, "backbones": backbones}
    seeds = [r.results["seeds"] for r in per_backbone.values() if "seeds" in r.results]
    if seeds:
        summary["seeds"] = seeds[0]
    return summary


def _backbone_over_seeds(result) -> dict:
    """A backbone's row of the table from its seed sweep: the means over seeds, and the clean
    and headline robust comparison with the baseline paired by seed. The headline attack is
    read from the first seed's results."""
    summary = result.results
    first_run = result.run_dir / "seeds" / next(iter(summary["seed_runs"].values()))
    first = RunResults.from_dict(json.loads((first_run / "results.json").read_text()))
    labels = {name: headline(r)[0] for name, r in first.variants.items()}
    comparison = summary.get("comparison", {})
    return {
        "run": result.run_dir.name,
        "baseline": summary.get("baseline"),
        "variants": {
            name: {
                "test_accuracy": summary["variants"][name]["clean"]["mean"],
                "robust_accuracy": summary["variants"][name][label]["mean"],
                "robust_attack": label,
                "selection": None,
                "budget": None,
            }
            for name, label in labels.items()
        },
        "budget_rule": summary.get("budget_rule"),
        "comparison": {
            "variants": {
                name: {
                    key: metrics[column]
                    for key, column in (("clean", "clean"), ("robust", labels[name]))
                    if column in metrics
                }
                for name, metrics in comparison.items()
            }
        },
        "claims": summary.get("claims", []),
    }
