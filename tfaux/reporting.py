"""Results as files a person can look at: results.json, Markdown tables, bar charts.

Every comparison says whether a difference is real (`tfaux.statistics`): within one run, each
variant against the baseline on the same test images; over seeds, paired by seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tfaux import statistics
from tfaux.cells import finite, p_pair, signed
from tfaux.claims import claims_table, judge_claims
from tfaux.config import Claim
from tfaux.evaluate.corruption_plot import corruption_plot
from tfaux.evaluate.fourier_heatmap import heatmap_plot
from tfaux.evidence import RunRecord, accuracy_evidence, headline, headline_metrics

_QUANTITY_WORDS = {"optimizer_steps": "optimizer steps", "example_passes": "example passes"}


def markdown_table(results: dict) -> str:
    """One row per variant: accuracies in percent (clean and the headline PGD with their 95 %
    Wilson interval over the test images), sanity checks, training time, and parameters while
    training (with every head) and deployed (the primary classifier only).

    Runs that record them also get the epoch the weights come from (and the rule that chose it)
    and the training budget: a variant that used more or less of the budget rule's quantity than
    the baseline, beyond its tolerance, is marked, since its accuracy is not a like-for-like one.
    """
    variants = results["variants"]
    first = next(iter(variants.values()))
    eps_keys = list(first["fgsm_accuracy"])
    with_autoattack = headline(first)[0] != first["pgd_attack"]
    with_selection = any("selection" in r for r in variants.values())
    with_budget = any("budget" in r for r in variants.values())
    header = [
        "variant",
        "val acc",
        "clean test acc",
        *(f"FGSM ε={e}" for e in eps_keys),
        _with_n(first["pgd_attack"], first["robustness"]["examples"].get(first["pgd_attack"])),
        *([_with_n(*headline(first)[::2])] if with_autoattack else []),
        "sanity checks",
        *(["selected epoch (rule)"] if with_selection else []),
        "train s",
        *(["optimizer steps", "passes"] if with_budget else []),
        "params (training)",
        "params (deployed)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in variants.items():
        cells = [
            name
            + (" (best)" if name == results.get("best_variant") else "")
            + (" (baseline)" if name == results.get("baseline") else ""),
            f"{100 * r['val_accuracy']:.2f}",
            _with_ci(r["test_accuracy"], r["robustness"]["num_examples"]),
            *(f"{100 * r['fgsm_accuracy'][e]:.2f}" for e in eps_keys),
            _with_ci(r["pgd_accuracy"], r["robustness"]["examples"].get(r["pgd_attack"])),
            *([_with_ci(*headline(r)[1:])] if with_autoattack else []),
            _checks_cell(r["robustness"]["sanity"]),
            *([_selection_cell(r.get("selection"))] if with_selection else []),
            f"{r['train_seconds']:.0f}",
            *(_budget_cells(r.get("budget"), results.get("budget_rule")) if with_budget else []),
            f"{r['parameters']:,}",
            f"{r.get('deployed_parameters', r['parameters']):,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    note = _budget_note(results) if with_budget else ""
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def _with_n(label: str, n: int | None) -> str:
    return f"{label} (n={n})" if n else label


def _with_ci(accuracy: float, n: int | None) -> str:
    """An accuracy in percent with its 95 % Wilson interval over the `n` test images."""
    if not n:
        return f"{100 * accuracy:.2f}"
    ci = statistics.proportion_ci(round(accuracy * n), n)
    return f"{100 * accuracy:.2f} [{100 * ci.low:.1f}, {100 * ci.high:.1f}]"


def _selection_cell(selection: dict | None) -> str:
    if not selection:
        return "–"
    epoch = selection.get("epoch") or "?"  # None: the rule picked no epoch (no history)
    value = selection.get("value")
    shown = f" ({100 * value:.1f})" if value is not None else ""
    collapsed = selection.get("rolled_back_from")  # a guard discarded the epochs after `epoch`
    rollback = f", rolled back from {collapsed}" if collapsed else ""
    return f"{epoch}/{selection['epochs_run']} {selection['rule']}{shown}{rollback}"


def _budget_cells(budget: dict | None, rule: dict | None) -> list[str]:
    """Optimizer steps and example passes; the rule's quantity carries the mark, if any."""
    if not budget:
        return ["–", "–"]
    cells = {q: _count(budget[q]) for q in ("optimizer_steps", "example_passes")}
    quantity, relative = (rule or {}).get("quantity"), budget.get("relative")
    if quantity in cells and relative is not None and _outside(budget, rule["tolerance"]):
        cells[quantity] += f" **{signed(100 * (relative - 1), 0)} % budget**"
    return list(cells.values())


def _outside(budget: dict, tolerance: float) -> bool:
    """Whether a variant's budget breaks the rule's tolerance: the runner's `within` verdict
    (exact at the boundary), or for results without one the rounded ratio."""
    if budget.get("within") is not None:
        return not budget["within"]
    return abs(budget["relative"] - 1) > tolerance


def _budget_note(results: dict) -> str:
    rule = results.get("budget_rule") or {}
    quantity = rule.get("quantity")
    if quantity is None:
        return "Budget: no rule declared; steps and passes show what each variant used."
    return (
        f"Budget: the same {_QUANTITY_WORDS.get(quantity, quantity)} as the baseline "
        f"({results.get('baseline', '?')}) within ±{100 * rule['tolerance']:g} %; "
        'a bold "±x % budget" marks a variant outside it.'
    )


def _count(n: float) -> str:
    """1260000 → "1.26M": three significant digits are all a budget column needs."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:g}"


def _checks_cell(checks: list[dict]) -> str:
    ran = [c for c in checks if c["passed"] is not None]
    failed = [c["name"] for c in ran if not c["passed"]]
    if not ran:
        return "not run"
    return f"{len(ran)}/{len(ran)} pass" if not failed else "**FAIL**: " + "; ".join(failed)


def robustness_details(results: dict) -> str:
    """Every attack and every sanity check of every variant, as Markdown."""
    lines = []
    for name, r in results["variants"].items():
        report = r["robustness"]
        lines += [f"## {name}", "", "| attack | accuracy | examples |", "|---|---|---|"]
        lines.append(f"| clean | {100 * report['clean']:.2f} | {report['num_examples']} |")
        for label, accuracy in report["attacks"].items():
            lines.append(f"| {label} | {100 * accuracy:.2f} | {report['examples'][label]} |")
        lines += ["", "| sanity check | result | detail |", "|---|---|---|"]
        for c in report["sanity"]:
            verdict = {True: "pass", False: "**FAIL**", None: "skipped"}[c["passed"]]
            lines.append(f"| {c['name']} | {verdict} | {c['detail']} |")
        lines.append("")
    return "\n".join(lines)


def baseline_comparison(
    results: dict, correct: dict[str, dict[str, np.ndarray]], confidence: float = 0.95
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
    baseline = results.get("baseline")
    if baseline not in correct:
        return {}
    alpha = 1 - confidence
    variants: dict[str, dict] = {name: {} for name in correct if name != baseline}
    for key in ("clean", "robust"):
        evidence, tests = {}, {}
        for name in variants:
            arrays = correct[name]
            attacks = {n: headline(results["variants"][n])[0] for n in (name, baseline)}
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
        "metrics": {"clean": "clean", "robust": headline(results["variants"][baseline])[0]},
        "variants": variants,
    }


def comparison_table(results: dict, comparison: dict) -> str:
    """Markdown: each variant minus the baseline, in points, with its CI, McNemar's raw and
    Holm-adjusted p and the verdict, clean and under the headline attack (see
    `baseline_comparison`)."""
    if not comparison:
        return ""
    baseline = comparison["baseline"]
    alpha = f"{1 - comparison['confidence']:.2g}"
    header = ["variant"]
    for key, label in comparison["metrics"].items():
        n = next((t[key]["n"] for t in comparison["variants"].values() if key in t), None)
        header += [f"{label} Δ" + (f" (n={n:,})" if n else ""), "CI", "p (Holm)", "verdict"]
    lines = [
        f"## Compared with the baseline {baseline} (this run)",
        "",
        "Variant minus baseline accuracy in points, on the same test images. p: McNemar's "
        "exact test on the images only one of the two gets right, raw and, in brackets, "
        f"adjusted by Holm over the {len(comparison['variants'])} variants of the column "
        f"(family-wise α = {alpha}); CI: Bonett–Price for paired proportions at the row's Holm "
        "level. A verdict needs the adjusted p below α and the CI to exclude 0. One seed: "
        "this is the test set's noise only; how much the data order and initialization move a "
        "result needs `seeds`.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name in results["variants"]:
        cells = [name]
        for key in comparison["metrics"]:
            if name == baseline:
                cells += ["–", "–", "–", "baseline"]
            elif key in comparison["variants"].get(name, {}):
                t = comparison["variants"][name][key]
                cells += [
                    signed(100 * t["difference"]),
                    _interval(t["low"], t["high"]),
                    p_pair(t["p_value"], t.get("adjusted_p")),
                    t["verdict"],
                ]
            else:  # no per-example results for this variant
                cells += ["–", "–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _interval(low: float | None, high: float | None) -> str:
    """A CI of a difference of fractions, in points; "–" where it is undefined."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    return f"[{signed(100 * low)}, {signed(100 * high)}]"


def curves_plot(results: dict, path: Path) -> Path:
    """Accuracy vs ε for FGSM and PGD, one line per variant, with the chance level."""
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    pgd_name = next(iter(results["variants"].values()))["pgd_attack"].split(" ")[0]
    for ax, attack in zip(axes, ("fgsm", "pgd"), strict=True):
        for name, r in results["variants"].items():
            curve = r["robustness"]["curves"][attack]
            eps = sorted(curve, key=float)
            ax.plot([float(e) for e in eps], [100 * curve[e] for e in eps], marker="o", label=name)
        ax.axhline(100 / results["dataset"]["num_classes"], color="gray", ls="--", lw=1)
        ax.set_xlabel("ε (L∞, pixels in [0, 1])")
        ax.set_title("FGSM" if attack == "fgsm" else pgd_name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{results['recipe']}: accuracy vs ε", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def accuracy_plot(
    results: dict, path: Path, correct: dict[str, dict[str, np.ndarray]] | None = None
) -> Path:
    """Grouped bars: clean, FGSM and PGD test accuracy of each variant, with 95 % Wilson
    intervals over the test set as whiskers (from `correct`, see `load_correct`, where given;
    else from the accuracy and the number of test images, which give the same interval)."""
    variants = results["variants"]
    names = list(variants)
    correct = correct or {}
    eps_keys = list(variants[names[0]]["fgsm_accuracy"])
    series = {
        "clean": [
            _bar(
                variants[n]["test_accuracy"], _images(variants[n]), correct.get(n, {}).get("clean")
            )
            for n in names
        ]
    }
    for eps in eps_keys:
        series[f"FGSM ε={eps}"] = [
            _bar(variants[n]["fgsm_accuracy"][eps], _images(variants[n])) for n in names
        ]
    first = variants[names[0]]
    pgd = first["pgd_attack"]
    series[_with_n(pgd, first["robustness"]["examples"].get(pgd))] = [
        _bar(variants[n]["pgd_accuracy"], _images(variants[n])) for n in names
    ]
    if headline(first)[0] != pgd:  # AutoAttack, on its own (smaller) set of images
        series[_with_n(*headline(first)[::2])] = [
            _bar(*headline(variants[n])[1:], correct.get(n, {}).get("robust")) for n in names
        ]
    fig = Figure(figsize=(1.8 + 1.6 * len(names), 3.6))
    ax = fig.subplots()
    bar = 0.8 / len(series)
    for i, (label, bars) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * bar for j in range(len(names))]
        values = [100 * b.estimate for b in bars]
        whiskers = np.array(
            [[100 * (b.estimate - b.low), 100 * (b.high - b.estimate)] for b in bars]
        ).T
        ax.bar(xs, values, bar, yerr=np.nan_to_num(whiskers), capsize=2, ecolor="0.3", label=label)
        for x, value, b in zip(xs, values, bars, strict=True):  # above the whisker
            top = 100 * b.high if not math.isnan(b.high) else value
            ax.text(x, top + 1, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(
        100 / results["dataset"]["num_classes"],
        color="gray",
        linestyle="--",
        linewidth=1,
        label="chance",
    )
    long_names = max(map(len, names)) > 14  # e.g. "denoise=10+projection=1@fgsm:geometric"
    ax.set_xticks(
        range(len(names)),
        names,
        rotation=20 if long_names else 0,
        ha="right" if long_names else "center",
        fontsize=8 if long_names else None,
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(
        f"{results['recipe']} on {results['dataset']['name']} (whiskers: 95 % CI)", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _images(result: dict) -> int | None:
    """The test images of a variant: FGSM and the headline PGD run on all of them."""
    return result.get("test_examples") or result.get("robustness", {}).get("num_examples")


def _bar(accuracy: float, n: int | None, correct: np.ndarray | None = None) -> statistics.Estimate:
    """An accuracy over `n` images with its Wilson interval (from the per-example `correct` where
    given); NaN bounds when the number of images is unknown."""
    if correct is not None:
        return statistics.accuracy_ci(correct)
    if not n or not math.isfinite(accuracy):
        return statistics.Estimate(accuracy, math.nan, math.nan)
    return statistics.proportion_ci(round(accuracy * n), n)


def corruption_table(results: dict) -> str:
    """The -C benchmark: clean error, mCE, relative mCE and CE per corruption of every variant."""
    summary = results["corruption"]
    variants = {name: r["corruption_error"] for name, r in results["variants"].items()}
    corruptions = list(next(iter(variants.values()))["ce"])
    with_validation = any(c.get("validation_corruptions") for c in variants.values())
    header = ["variant", "clean err", "mCE", "rel. mCE", "mean err", *corruptions]
    if with_validation:  # seed 001's Table 7: the 4 held-out corruptions' mean too
        header.insert(4, "val. mCE")
    lines = [
        f"## Corruption benchmark: CE relative to {summary['reference']} (%, less is better)",
        "",
        f"{summary['examples']} test images × corruptions × severities; {summary['definition']}."
        + (
            f" The reference trained {summary['reference_epochs']} epochs, the variants "
            f"{summary['epochs']}: its clean error is every CE's denominator."
            if "reference_epochs" in summary
            else ""
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, c in variants.items():
        cells = [name, f"{c['clean_error']:.1f}", f"{c['mCE']:.1f}", f"{c['relative_mCE']:.1f}"]
        if with_validation:
            cells.append(f"{c.get('validation_mCE', float('nan')):.1f}")
        cells += [f"{c['mean_error']:.1f}", *(f"{c['ce'][k]:.0f}" for k in corruptions)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def merging_table(results: dict) -> str:
    """Auxiliary Training's weight merging (seed 001, Algorithm 1): the distance between the
    primary and the auxiliary classifiers before and after stage 2, for the variants that record
    it (with and without merging, so the two compare); "" for none."""
    rows = {name: r["merging"] for name, r in results["variants"].items() if "merging" in r}
    if not rows:
        return ""
    lines = [
        "## Weight merging: distance before/after stage 2",
        "",
        "Σ_j ‖θ_0 − θ_j‖² over the auxiliary classifiers j, at the end of the last stage-1 epoch "
        "(before) and of training (after); after/before is what stage 2 left of it. Without "
        "merging (γ = 0) stage 2 is the same steps without the penalty.",
        "",
        "| variant | merging (λ) | stage 2 from epoch | stage-2 steps | learning rate (steps) "
        "| before | after | after/before |",
        "|" + "---|" * 8,
    ]
    for name, m in rows.items():
        rates = ", ".join(f"{rate:.3g} ({steps})" for rate, steps in m["stage_two_learning_rates"])
        cells = [
            name,
            f"{'on' if m['merge'] else 'off'} ({m['penalty']:g})",
            f"{m['stage_two_epoch']}/{m['epochs']}",
            str(m["stage_two_steps"]),
            rates or "–",
            "–" if m["distance_before"] is None else f"{m['distance_before']:.4g}",
            f"{m['distance_after']:.4g}",
            "–" if m["ratio"] is None else f"{m['ratio']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


MONITORS = {"val_pgd": "validation PGD", "images": "image panels", "guard": "overfitting guard"}


def monitoring_table(results: dict) -> str:
    """What watching training cost each variant: the seconds of each monitor (validation PGD,
    TensorBoard's image panels, the catastrophic-overfitting guard), their sum and its share of
    the training seconds they are part of; "" when no variant records them (runs from before
    they were recorded, or nothing monitored)."""
    rows = {n: r for n, r in results["variants"].items() if r.get("monitor_seconds")}
    if not rows:
        return ""
    names = [key for key in MONITORS if any(key in r["monitor_seconds"] for r in rows.values())]
    names += sorted({key for r in rows.values() for key in r["monitor_seconds"]} - set(names))
    header = ["variant", "train s", *(f"{MONITORS.get(k, k)} s" for k in names), "monitoring"]
    lines = [
        "## Monitoring cost (seconds, part of training)",
        "",
        "The monitors' own wall time during training, their attacks' traces included "
        '(`monitor` settings; `docs/decisions.md`, "Monitoring costs").',
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, r in rows.items():
        seconds, train = r["monitor_seconds"], r["train_seconds"]
        total = sum(seconds.values())
        share = f" ({100 * total / train:.0f} %)" if train > 0 else ""
        cells = [name, f"{train:.0f}", *(_seconds(seconds.get(k)) for k in names)]
        lines.append("| " + " | ".join([*cells, f"{total:.1f}{share}"]) + " |")
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def input_robustness_table(results: dict) -> str:
    """Seed 003's disturbances and seed 004's augmented sets (accuracy %), when measured."""
    rows = {}
    for name, r in results["variants"].items():
        metrics = headline_metrics(r)
        rows[name] = {k: [v] for k, v in metrics.items() if k == "clean" or not _is_attack(k)}
    if not any(len(row) > 1 for row in rows.values()):
        return ""
    return "## Disturbed and augmented test sets (accuracy %)\n\n" + mean_std_table(rows)


def denoiser_table(results: dict) -> str:
    """Whether each denoising front end denoises (see `tfaux.evaluate.denoiser`)."""
    rows = [(name, r["denoiser"]) for name, r in results["variants"].items() if "denoiser" in r]
    if not rows:
        return ""
    header = (
        "| variant | FGSM kept | error ratio | identity distance | geometric kept | clean RMSE "
        "| verdict |"
    )
    lines = [
        "## Denoiser: perturbation passed through (1 = identity)",
        "",
        header,
        "|---" * 7 + "|",
    ]
    for name, d in rows:
        verdict = "noisy identity" if d["noisy_identity"] else "denoises"
        # results from before the geometric part was measured apart have no such entry
        geometric = f"{d['geometric_kept']:.2f}" if "geometric_kept" in d else "–"
        lines.append(
            f"| {name} | {d['noise_kept']:.2f} | {d['error_ratio']:.2f} | "
            f"{d['identity_distance']:.2f} | {geometric} | {d['clean_error']:.3f} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def _is_attack(column: str) -> bool:
    return column.startswith(("FGSM ε", "PGD", "AutoAttack"))


def mean_std_table(rows: dict[str, dict[str, list[float]]]) -> str:
    """Markdown: one row per model, one column per metric, cells "mean ± std" in percent over
    seeds (sample std), or the value alone for one seed; "–" where a model lacks a metric."""
    columns: list[str] = []
    for row in rows.values():
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(["model", *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for model, row in rows.items():
        cells = [_mean_std(row[c]) if row.get(c) else "–" for c in columns]
        lines.append("| " + " | ".join([model, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _mean_std(values: list[float]) -> str:
    percent = 100.0 * np.asarray(values, dtype=np.float64)
    if len(percent) < 2:
        return f"{percent.mean():.2f}"
    return f"{percent.mean():.2f} ± {percent.std(ddof=1):.2f}"


def mean_ci_table(rows: dict[str, dict[str, list[float]]], confidence: float = 0.95) -> str:
    """Markdown: one row per model, one column per metric, cells "mean ± half-width" of the
    Student t interval over seeds in percent (`tfaux.statistics.mean_ci`; the interval is
    symmetric), the mean alone for one seed; "–" where a model lacks a metric."""
    columns: list[str] = []
    for row in rows.values():
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(["model", *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for model, row in rows.items():
        cells = [_mean_ci(row[c], confidence) if row.get(c) else "–" for c in columns]
        lines.append("| " + " | ".join([model, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _mean_ci(values: list[float], confidence: float) -> str:
    if not all(map(math.isfinite, values)):  # a metric with no examples (NaN) in some seed
        return f"{100 * np.mean(values):.2f}"
    mean, _, high = statistics.mean_ci(values, confidence)
    if math.isnan(high):
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * (high - mean):.2f}"


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
    by_seed: dict[str, dict[str, dict]] = {}  # variant → metric → seed → value
    for seed, result in per_seed.items():
        for name, r in result.results["variants"].items():
            for key, value in headline_metrics(r).items():
                by_seed.setdefault(name, {}).setdefault(key, {})[seed] = value
    records = [RunRecord(result.run_dir, result.results) for result in per_seed.values()]
    first = records[0].results
    best_by = first.get("best_by", "val_accuracy")
    criterion = {
        name: float(np.mean([r.results["variants"][name].get(best_by, -1.0) for r in records]))
        for name in first["variants"]
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
        "budget_rule": first.get("budget_rule"),
        "training": {name: _training_marks(records, name) for name in first["variants"]},
        "trustworthy": {
            str(seed): {n: r["trustworthy"] for n, r in result.results["variants"].items()}
            for seed, result in per_seed.items()
        },
    }
    baseline = first.get("baseline")
    if baseline in by_seed:
        summary["baseline"] = baseline
        summary["comparison"] = _seed_comparison(records, by_seed, baseline, confidence)
    if claims:
        summary["claims"] = judge_claims(claims, records, 1 - confidence)
    return summary


def _training_marks(records: list[RunRecord], name: str) -> dict:
    """A variant's selected epoch and budget in every seed, and whether any seed broke the
    budget rule (the mark a single run's table carries)."""
    results = [r.results["variants"][name] for r in records]
    budgets = [r.get("budget") or {} for r in results]
    return {
        "selection": [r.get("selection") for r in results],
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
    result = records[0].results["variants"][name]
    label = headline(result)[0]
    return "robust" if column == label and label != result["pgd_attack"] else column


def seed_comparison_table(summary: dict) -> str:
    """Markdown: every variant minus the baseline, per metric, paired over seeds: difference in
    points, its CI at the row's Holm level, raw and Holm-adjusted p, the smallest difference
    the budget detects, the test that decided and the verdict; "" without a baseline."""
    if "comparison" not in summary:
        return ""
    alpha = f"{1 - summary['confidence']:.2g}"
    lines = [
        f"## Compared with the baseline {summary['baseline']}, paired by seed",
        "",
        "Variant minus baseline accuracy in points. With 3 or more distinct per-seed "
        "differences, a paired t over seeds decides (it counts how much training moves a "
        "result); otherwise the seeds' McNemar tests are combined over their test images (the "
        "test set's noise only). p is raw and, in brackets, Holm-adjusted over the variants of "
        f"each metric (family-wise α = {alpha}); the CI is at the row's Holm level; "
        '"detectable" is the smallest difference found with 80 % power.',
        "",
        "| variant | metric | Δ (points) | CI | p (Holm) | detectable | test | verdict |",
        "|" + "---|" * 8,
    ]
    for name, metrics in summary["comparison"].items():
        for key, d in metrics.items():
            mde = d.get("mde")
            cells = [
                name,
                key,
                signed(100 * d["difference"]),
                _interval(d["low"], d["high"]),
                p_pair(d["p_value"], d.get("adjusted_p")),
                "–" if mde is None else "none (> 100)" if mde >= 1 else f"≥ {100 * mde:.2f}",
                d.get("test", "paired t"),
                d["verdict"],
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seed_training_table(summary: dict) -> str:
    """Markdown: each variant's selected epoch and budget in every seed, and the best variant
    on the mean over seeds, so a seed sweep keeps the marks a single run's table has."""
    rule = summary.get("budget_rule") or {}
    lines = [
        f"## Training per seed (best variant: {summary['best_variant']}, by "
        f"{summary.get('best_by', 'the first seed')})",
        "",
        "| variant | selected epoch per seed (rule) | optimizer steps | example passes | budget |",
        "|---|---|---|---|---|",
    ]
    for name, marks in summary.get("training", {}).items():
        selections = [_selection_cell(s) for s in marks["selection"]]
        relative = [r for r in marks["relative"] if r is not None]
        budget = (
            "–"
            if not relative
            else (
                "within"
                if marks["within_budget"]
                else "**"
                + ", ".join(f"{signed(100 * (r - 1), 0)} %" for r in relative)
                + " budget**"
            )
        )
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    "; ".join(selections),
                    ", ".join(_count(x) for x in marks["optimizer_steps"] if x is not None) or "–",
                    ", ".join(_count(x) for x in marks["example_passes"] if x is not None) or "–",
                    budget,
                ]
            )
            + " |"
        )
    note = _budget_note({"budget_rule": rule, "baseline": summary.get("baseline")})
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if rule else "")


def seed_plot(summary: dict, path: Path) -> Path:
    """Grouped bars: every metric (x) of every variant, mean over seeds with its Student t
    interval as whiskers (none for a single seed)."""
    variants = summary["variants"]
    metrics: list[str] = []
    for stats in variants.values():
        metrics += [m for m in stats if m not in metrics]
    width = 0.8 / len(variants)
    fig = Figure(figsize=(max(6.0, 1.2 * len(metrics)), 4.0))
    ax = fig.subplots()
    for i, (name, stats) in enumerate(variants.items()):
        positions = np.arange(len(metrics)) + (i - (len(variants) - 1) / 2) * width
        means = np.array([100 * stats[m]["mean"] if m in stats else np.nan for m in metrics])
        low = np.array([_percent_or_nan(stats.get(m, {}).get("low")) for m in metrics])
        high = np.array([_percent_or_nan(stats.get(m, {}).get("high")) for m in metrics])
        whiskers = np.nan_to_num(np.stack([means - low, high - means]))
        ax.bar(positions, means, width, yerr=whiskers, capsize=3, label=name)
    ax.set_xticks(np.arange(len(metrics)), metrics, rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    seeds = ", ".join(map(str, summary["seeds"]))
    percent = f"{100 * summary.get('confidence', 0.95):g} %"
    ax.set_title(f"{summary['recipe']}: mean over seeds {seeds}, {percent} CI (t)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _percent_or_nan(x: float | None) -> float:
    return np.nan if x is None else 100 * x


def write_seed_report(run_dir: Path, summary: dict) -> None:
    """results.md (mean ± CI over seeds, the paired comparison with the baseline, links to each
    seed's own report) and results.json."""
    rows = {
        name: {key: stats["values"] for key, stats in metrics.items()}
        for name, metrics in summary["variants"].items()
    }
    failed = sorted(
        {
            f"{name} (seed {seed})"
            for seed, v in summary["trustworthy"].items()
            for name, ok in v.items()
            if not ok
        }
    )
    confidence = summary.get("confidence", 0.95)
    comparison = seed_comparison_table(summary)
    claims = claims_table(summary.get("claims", []), 1 - confidence)
    lines = [
        f"# {summary['recipe']} ({summary['run']}): seeds {', '.join(map(str, summary['seeds']))}",
        "",
        *provenance_lines(summary),
        *([claims] if claims else []),
        f"## Mean ± {100 * confidence:g} % CI (Student t) over seeds (accuracy %)",
        "",
        mean_ci_table(rows, confidence),
        *([comparison] if comparison else []),
        *([seed_training_table(summary)] if "training" in summary else []),
        "Sanity checks: "
        + ("all pass." if not failed else "**FAIL** for " + ", ".join(failed) + "."),
        "",
        *(f"- seed {seed}: seeds/{name}/results.md" for seed, name in summary["seed_runs"].items()),
        "",
    ]
    summary["table"] = "results.md"
    summary["plot"] = seed_plot(summary, run_dir / "seeds.png").name
    (run_dir / "results.md").write_text("\n".join(lines))
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2))


def provenance_lines(results: dict) -> list[str]:
    """A report header's "Commit: <sha>" line and a blank one; none when the run recorded no
    commit (outside a git checkout, or a run from before commits were recorded)."""
    return [f"Commit: {results['commit']}", ""] if results.get("commit") else []


def write_report(run_dir: Path, results: dict, claims: tuple[Claim, ...] = ()) -> None:
    """Writes results.md (the recipe's claims first, then the tables) and the PNGs, then
    results.json last (it marks the run finished)."""
    record = RunRecord(run_dir, results)
    correct = record.correct()
    comparison = baseline_comparison(results, correct)
    if comparison:
        results["comparison"] = comparison
    sections = []
    if claims:
        results["claims"] = judge_claims(claims, [record])
        sections.append(claims_table(results["claims"]))
    results["table"] = "results.md"
    results["plot"] = accuracy_plot(results, run_dir / "accuracy.png", correct).name
    results["curves_plot"] = curves_plot(results, run_dir / "robustness_curves.png").name
    sections.append(markdown_table(results))
    if comparison:
        sections.append(comparison_table(results, comparison))
    if "corruption" in results:
        per_model = {name: r["corruption_error"] for name, r in results["variants"].items()}
        path = corruption_plot(per_model, run_dir / "corruption_ce.png")
        results["corruption_plot"] = path.name
        sections.append(corruption_table(results))
    maps = {
        name: np.load(run_dir / "variants" / r["heatmap"]["file"])
        for name, r in results["variants"].items()
        if "heatmap" in r
    }
    if maps:
        path = heatmap_plot(maps, run_dir / "fourier_heatmap.png", title=results["recipe"])
        results["heatmap_plot"] = path.name
    tables = (
        merging_table(results),
        input_robustness_table(results),
        denoiser_table(results),
        monitoring_table(results),
    )
    sections += [t for t in tables if t]
    sections.append(robustness_details(results))
    entries = robustbench_entries(results)
    if entries:
        (run_dir / "robustbench.json").write_text(json.dumps(entries, indent=2))
        results["robustbench"] = "robustbench.json"
    (run_dir / "results.md").write_text(
        "\n".join([f"# {results['recipe']} ({results['run']})", "", *provenance_lines(results)])
        + "\n"
        + "\n".join(sections)
    )
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))


def robustbench_entries(results: dict) -> list[dict]:
    """One RobustBench-style leaderboard entry per variant that AutoAttack evaluated: the
    fields of theirs that apply (accuracies in %, over the images each number ran on)."""
    entries = []
    for name, r in results["variants"].items():
        autoattack = r["robustness"].get("autoattack")
        if autoattack is None:
            continue
        entries.append(
            {
                "name": f"{results['recipe']}/{name}",
                "dataset": results["dataset"]["name"],
                "architecture": results.get("backbone"),
                "threat_model": {"linf": "Linf", "l2": "L2"}[autoattack["norm"]],
                "eps": autoattack["eps"],
                "clean_acc": round(100 * r["test_accuracy"], 2),
                "clean_examples": r["robustness"]["num_examples"],
                "autoattack_acc": round(100 * autoattack["robust"], 2),
                "autoattack_examples": autoattack["examples"],
                "autoattack_version": autoattack["version"],
                "number_forward_passes": 1,  # one deterministic pass; the checks flag randomness
                "trustworthy": autoattack["trustworthy"],
            }
        )
    return entries


# === Backbone sweeps ===
def backbone_summary(recipe: str, run: str, per_backbone: dict) -> dict:
    """Every backbone's variants (clean and headline PGD accuracy) and their comparison with
    the baseline, from one finished run per backbone (`tfaux.runner`'s `RunResult`s)."""
    backbones = {}
    for backbone, result in per_backbone.items():
        results = result.results
        backbones[backbone] = {
            "run": result.run_dir.name,
            "baseline": results.get("baseline"),
            "variants": {
                name: {
                    "test_accuracy": r["test_accuracy"],
                    "robust_accuracy": headline(r)[1],
                    "robust_attack": headline(r)[0],
                    "selection": r.get("selection"),
                    "budget": r.get("budget"),
                }
                for name, r in results["variants"].items()
            },
            "budget_rule": results.get("budget_rule"),
            "comparison": results.get("comparison", {}),
            "claims": results.get("claims", []),
        }
    return {"recipe": recipe, "run": run, "backbones": backbones}


def write_backbone_report(run_dir: Path, summary: dict) -> None:
    """results.md (one row per backbone and variant: accuracies and the clean and robust
    difference to that backbone's baseline with its CI and verdict) and results.json."""
    header = (
        "| backbone | variant | clean | robust | clean Δ vs baseline | robust Δ vs baseline "
        "| selected epoch (rule) | optimizer steps | passes |"
    )
    lines = [
        f"# {summary['recipe']} ({summary['run']}): one run per backbone (accuracy %)",
        "",
        *provenance_lines(summary),
        "Δ: variant minus the backbone's own baseline on the same test images, with its 95 % CI "
        "(Bonett–Price) and verdict (one seed: the test set's noise only).",
        "",
        header,
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backbone, entry in summary["backbones"].items():
        compared = entry["comparison"].get("variants", {})
        for name, r in entry["variants"].items():
            cells = [
                backbone,
                name + (" (baseline)" if name == entry["baseline"] else ""),
                f"{100 * r['test_accuracy']:.2f}",
                f"{100 * r['robust_accuracy']:.2f} ({r['robust_attack']})",
                *(_difference_cell(compared.get(name, {}).get(key)) for key in ("clean", "robust")),
                _selection_cell(r.get("selection")),
                *_budget_cells(r.get("budget"), entry.get("budget_rule")),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        *_backbone_claims(summary),
        "",
        *(f"- {b}: backbones/{e['run']}/results.md" for b, e in summary["backbones"].items()),
    ]
    (run_dir / "results.md").write_text("\n".join(lines) + "\n")
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2))


def _backbone_claims(summary: dict) -> list[str]:
    """Markdown lines: each claim's word and a − b on every backbone (each backbone's claims
    were judged, Holm-corrected, in its own run)."""
    backbones = {b: e["claims"] for b, e in summary["backbones"].items() if e.get("claims")}
    if not backbones:
        return []
    first = next(iter(backbones.values()))
    lines = [
        "## Claims per backbone (a − b in points, the word of each backbone's own report)",
        "",
        "| claim | a vs b | metric | " + " | ".join(backbones) + " |",
        "|---|---|---|" + "---|" * len(backbones),
    ]
    for index, claim in enumerate(first):
        cells = [
            f"{claim['source']}: {claim['quote']}",
            f"{claim['a']} vs {claim['b']}",
            claim["metric"],
        ]
        for rows in backbones.values():
            row = rows[index] if index < len(rows) else None
            shown = "–" if row is None or row["difference"] is None else signed(row["difference"])
            cells.append(f"{shown} {row['verdict'] if row else ''}".strip())
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _difference_cell(test: dict | None) -> str:
    if not test:
        return "–"
    return (
        f"{100 * test['difference']:+.2f} [{100 * test['low']:+.2f}, {100 * test['high']:+.2f}] "
        f"{test['verdict']}"
    )
