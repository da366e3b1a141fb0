"""A run's and a sweep's results as Markdown tables: accuracies with their intervals, the
comparison with the baseline, budgets, corruption, merging, monitoring, seeds and backbones."""

from __future__ import annotations

import math

import numpy as np

from tfaux import statistics
from tfaux.cells import p_pair, signed
from tfaux.evidence import headline, headline_metrics
from tfaux.results import RunResults, VariantResult

_QUANTITY_WORDS = {"optimizer_steps": "optimizer steps", "example_passes": "example passes"}


def markdown_table(results: RunResults | dict) -> str:
    """One row per variant: accuracies in percent (clean and the headline PGD with their 95 %
    Wilson interval over the test images), sanity checks, training time, and parameters while
    training (with every head) and deployed (the primary classifier only).

    Runs that record them also get the epoch the weights come from (and the rule that chose it)
    and the training budget: a variant that used more or less of the budget rule's quantity than
    the baseline, beyond its tolerance, is marked, since its accuracy is not a like-for-like one.
    """
    results = RunResults.coerce(results)
    variants = results.variants
    first = next(iter(variants.values()))
    eps_keys = list(first.fgsm_accuracy)
    with_autoattack = headline(first)[0] != first.pgd_attack
    with_selection = any(r.selection is not None for r in variants.values())
    with_budget = any(r.budget is not None for r in variants.values())
    header = [
        "variant",
        "val acc",
        "clean test acc",
        *(f"FGSM ε={e}" for e in eps_keys),
        with_n(first.pgd_attack, first.robustness["examples"].get(first.pgd_attack)),
        *([with_n(*headline(first)[::2])] if with_autoattack else []),
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
            + (" (best)" if name == results.best_variant else "")
            + (" (baseline)" if name == results.baseline else ""),
            f"{100 * r.val_accuracy:.2f}",
            _with_ci(r.test_accuracy, r.robustness["num_examples"]),
            *(f"{100 * r.fgsm_accuracy[e]:.2f}" for e in eps_keys),
            _with_ci(r.pgd_accuracy, r.robustness["examples"].get(r.pgd_attack)),
            *([_with_ci(*headline(r)[1:])] if with_autoattack else []),
            _checks_cell(r.robustness["sanity"]),
            *([_selection_cell(r.selection)] if with_selection else []),
            f"{r.train_seconds:.0f}",
            *(_budget_cells(r.budget, results.budget_rule) if with_budget else []),
            f"{r.parameters:,}",
            f"{_deployed(r):,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    note = _budget_note(results.budget_rule, results.baseline) if with_budget else ""
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def _deployed(result: VariantResult) -> int:
    """Parameters of the primary classifier alone; older runs recorded the training model's."""
    return result.parameters if result.deployed_parameters is None else result.deployed_parameters


def with_n(label: str, n: int | None) -> str:
    """A column or series label with the number of test images it ran on, where known."""
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


def _budget_note(rule: dict | None, baseline: str | None) -> str:
    rule = rule or {}
    quantity = rule.get("quantity")
    if quantity is None:
        return "Budget: no rule declared; steps and passes show what each variant used."
    return (
        f"Budget: the same {_QUANTITY_WORDS.get(quantity, quantity)} as the baseline "
        f"({baseline or '?'}) within ±{100 * rule['tolerance']:g} %; "
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


def robustness_details(results: RunResults | dict) -> str:
    """Every attack and every sanity check of every variant, as Markdown."""
    lines = []
    for name, r in RunResults.coerce(results).variants.items():
        report = r.robustness
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


def comparison_table(results: RunResults | dict, comparison: dict) -> str:
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
    for name in RunResults.coerce(results).variants:
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


def corruption_table(results: RunResults | dict) -> str:
    """The -C benchmark: clean error, mCE, relative mCE and CE per corruption of every variant."""
    results = RunResults.coerce(results)
    summary = results.corruption
    variants = {name: r.corruption_error for name, r in results.variants.items()}
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


def merging_table(results: RunResults | dict) -> str:
    """Auxiliary Training's weight merging (seed 001, Algorithm 1): the distance between the
    primary and the auxiliary classifiers before and after stage 2, for the variants that record
    it (with and without merging, so the two compare); "" for none."""
    variants = RunResults.coerce(results).variants
    rows = {name: r.merging for name, r in variants.items() if r.merging is not None}
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


def monitoring_table(results: RunResults | dict) -> str:
    """What watching training cost each variant: the seconds of each monitor (validation PGD,
    TensorBoard's image panels, the catastrophic-overfitting guard), their sum and its share of
    the training seconds they are part of; "" when no variant records them (runs from before
    they were recorded, or nothing monitored)."""
    variants = RunResults.coerce(results).variants
    rows = {n: r for n, r in variants.items() if r.monitor_seconds}
    if not rows:
        return ""
    names = [key for key in MONITORS if any(key in r.monitor_seconds for r in rows.values())]
    names += sorted({key for r in rows.values() for key in r.monitor_seconds} - set(names))
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
        seconds, train = r.monitor_seconds, r.train_seconds
        total = sum(seconds.values())
        share = f" ({100 * total / train:.0f} %)" if train > 0 else ""
        cells = [name, f"{train:.0f}", *(_seconds(seconds.get(k)) for k in names)]
        lines.append("| " + " | ".join([*cells, f"{total:.1f}{share}"]) + " |")
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def input_robustness_table(results: RunResults | dict) -> str:
    """Seed 003's disturbances and seed 004's augmented sets (accuracy %), when measured."""
    rows = {}
    for name, r in RunResults.coerce(results).variants.items():
        metrics = headline_metrics(r)
        rows[name] = {k: [v] for k, v in metrics.items() if k == "clean" or not _is_attack(k)}
    if not any(len(row) > 1 for row in rows.values()):
        return ""
    return "## Disturbed and augmented test sets (accuracy %)\n\n" + mean_std_table(rows)


def denoiser_table(results: RunResults | dict) -> str:
    """Whether each denoising front end denoises (see `tfaux.evaluate.denoiser`)."""
    variants = RunResults.coerce(results).variants
    rows = [(name, r.denoiser) for name, r in variants.items() if r.denoiser is not None]
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
    note = _budget_note(rule, summary.get("baseline"))
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if rule else "")


def provenance_lines(results: RunResults | dict) -> list[str]:
    """A report header's "Commit: <sha>" line and a blank one; none when the run recorded no
    commit (outside a git checkout, or a run from before commits were recorded). A sweep's
    summary is a dict."""
    commit = results.commit if isinstance(results, RunResults) else results.get("commit")
    return [f"Commit: {commit}", ""] if commit else []


def data_lines(results: RunResults) -> list[str]:
    """A report header's "Data: ..." line (sizes, image shape, training images per class) and
    a blank one, so a reader sees what the numbers were measured on; none for results from
    before per-class counts were recorded."""
    info = results.dataset
    counts = info.get("class_counts")
    if not counts:
        return []
    shape = "x".join(str(d) for d in info["image_shape"])
    names = info["class_names"]
    if len(counts) <= 20:
        per_class = ", ".join(f"{k} {n}" for k, n in zip(names, counts, strict=True))
    else:  # a hundred classes would bury the header
        least, most = (
            min(range(len(counts)), key=counts.__getitem__),
            max(range(len(counts)), key=counts.__getitem__),
        )
        per_class = f"{counts[least]} ({names[least]}) to {counts[most]} ({names[most]})"
    return [
        f"Data: {info['name']}, {info['num_train']} train / {info['num_val']} val / "
        f"{info['num_test']} test images of {shape}; training images per class: {per_class}",
        "",
    ]


def backbone_table(summary: dict) -> str:
    """A backbone sweep's results.md: one row per backbone and variant, accuracies and the
    clean and robust difference to that backbone's baseline with its CI and verdict; with
    seeds, the means over seeds and the differences paired by seed."""
    header = (
        "| backbone | variant | clean | robust | clean Δ vs baseline | robust Δ vs baseline "
        "| selected epoch (rule) | optimizer steps | passes |"
    )
    seeds = summary.get("seeds")
    if seeds:
        title = f"one seed sweep per backbone, seeds {', '.join(map(str, seeds))} (mean accuracy %)"
        note = (
            "Δ: variant minus the backbone's own baseline, paired by seed (and by test image "
            "where the runs kept them), with its 95 % CI and verdict; each backbone's own report "
            "says which test decided. Selected epochs and budgets: in each backbone's report."
        )
    else:
        title = "one run per backbone (accuracy %)"
        note = (
            "Δ: variant minus the backbone's own baseline on the same test images, with its 95 % "
            "CI (Bonett–Price) and verdict (one seed: the test set's noise only)."
        )
    lines = [
        f"# {summary['recipe']} ({summary['run']}): {title}",
        "",
        *provenance_lines(summary),
        note,
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
    return "\n".join(lines) + "\n"


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
    if test["low"] is None or test["high"] is None:  # one seed: no interval
        return f"{100 * test['difference']:+.2f} {test['verdict']}"
    return (
        f"{100 * test['difference']:+.2f} [{100 * test['low']:+.2f}, {100 * test['high']:+.2f}] "
        f"{test['verdict']}"
    )
