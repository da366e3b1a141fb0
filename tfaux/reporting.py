"""Results as files a person can look at: results.json, a Markdown table, a bar chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tfaux.evaluate.corruption_plot import corruption_plot
from tfaux.evaluate.fourier_heatmap import heatmap_plot


def markdown_table(results: dict) -> str:
    """One row per variant: accuracies in percent, sanity checks, training time, and parameters
    while training (with every head) and deployed (the primary classifier only)."""
    variants = results["variants"]
    first = next(iter(variants.values()))
    eps_keys = list(first["fgsm_accuracy"])
    header = [
        "variant",
        "val acc",
        "clean test acc",
        *(f"FGSM ε={e}" for e in eps_keys),
        first["pgd_attack"],
        "sanity checks",
        "train s",
        "params (training)",
        "params (deployed)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in variants.items():
        cells = [
            name + (" (best)" if name == results.get("best_variant") else ""),
            f"{100 * r['val_accuracy']:.2f}",
            f"{100 * r['test_accuracy']:.2f}",
            *(f"{100 * r['fgsm_accuracy'][e]:.2f}" for e in eps_keys),
            f"{100 * r['pgd_accuracy']:.2f}",
            _checks_cell(r["robustness"]["sanity"]),
            f"{r['train_seconds']:.0f}",
            f"{r['parameters']:,}",
            f"{r.get('deployed_parameters', r['parameters']):,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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


def accuracy_plot(results: dict, path: Path) -> Path:
    """Grouped bars: clean, FGSM and PGD test accuracy of each variant."""
    variants = results["variants"]
    names = list(variants)
    eps_keys = list(variants[names[0]]["fgsm_accuracy"])
    series = {"clean": [100 * variants[n]["test_accuracy"] for n in names]}
    for eps in eps_keys:
        series[f"FGSM ε={eps}"] = [100 * variants[n]["fgsm_accuracy"][eps] for n in names]
    series[variants[names[0]]["pgd_attack"]] = [100 * variants[n]["pgd_accuracy"] for n in names]
    fig = Figure(figsize=(1.8 + 1.6 * len(names), 3.6))
    ax = fig.subplots()
    bar = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * bar for j in range(len(names))]
        bars = ax.bar(xs, values, bar, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
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
    ax.set_title(f"{results['recipe']} on {results['dataset']['name']}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def corruption_table(results: dict) -> str:
    """The -C benchmark: clean error, mCE, relative mCE and CE per corruption of every variant."""
    summary = results["corruption"]
    variants = {name: r["corruption_error"] for name, r in results["variants"].items()}
    corruptions = list(next(iter(variants.values()))["ce"])
    header = ["variant", "clean err", "mCE", "rel. mCE", "mean err", *corruptions]
    lines = [
        f"## Corruption benchmark: CE relative to {summary['reference']} (%, less is better)",
        "",
        f"{summary['examples']} test images × corruptions × severities; {summary['definition']}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, c in variants.items():
        cells = [name, f"{c['clean_error']:.1f}", f"{c['mCE']:.1f}", f"{c['relative_mCE']:.1f}"]
        cells += [f"{c['mean_error']:.1f}", *(f"{c['ce'][k]:.0f}" for k in corruptions)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def headline_metrics(result: dict) -> dict[str, float]:
    """A variant's headline accuracies (fractions), flat, keyed by column name: clean, FGSM and
    PGD, seed 003's disturbances, seed 004's augmented sets."""
    metrics = {"clean": result["test_accuracy"]}
    metrics.update({f"FGSM ε={e}": v for e, v in result["fgsm_accuracy"].items()})
    report = result["robustness"]
    metrics.update(  # the PGD-k run on the whole test set, not the sanity checks' prefixes
        {
            k: v
            for k, v in report["attacks"].items()
            if k.startswith("PGD") and report["examples"][k] == report["num_examples"]
        }
    )
    metrics.update({k: v for k, v in result.get("disturbances", {}).items() if k != "clean"})
    for name, accuracies in result.get("augmented", {}).items():
        metrics[name] = accuracies["augmented"]
        if "fgsm_augmented" in accuracies:
            metrics[f"FGSM(baseline) + {name}"] = accuracies["fgsm_augmented"]
    return metrics


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
    header = "| variant | noise kept | error ratio | identity distance | clean RMSE | verdict |"
    lines = [
        "## Denoiser: perturbation passed through (1 = identity)",
        "",
        header,
        "|---" * 6 + "|",
    ]
    for name, d in rows:
        verdict = "noisy identity" if d["noisy_identity"] else "denoises"
        lines.append(
            f"| {name} | {d['noise_kept']:.2f} | {d['error_ratio']:.2f} | "
            f"{d['identity_distance']:.2f} | {d['clean_error']:.3f} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def _is_attack(column: str) -> bool:
    return column.startswith(("FGSM ε", "PGD"))


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


def seed_summary(recipe: str, run: str, per_seed: dict) -> dict:
    """Every variant's headline metrics over seeds: values, mean and sample std."""
    variants: dict[str, dict[str, list[float]]] = {}
    for result in per_seed.values():
        for name, r in result.results["variants"].items():
            for key, value in headline_metrics(r).items():
                variants.setdefault(name, {}).setdefault(key, []).append(value)
    first = next(iter(per_seed.values())).results
    return {
        "recipe": recipe,
        "run": run,
        "seeds": list(per_seed),
        "seed_runs": {str(seed): result.run_dir.name for seed, result in per_seed.items()},
        "variants": {
            name: {
                key: {
                    "values": values,
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                }
                for key, values in metrics.items()
            }
            for name, metrics in variants.items()
        },
        "best_variant": first["best_variant"],
        "trustworthy": {
            str(seed): {n: r["trustworthy"] for n, r in result.results["variants"].items()}
            for seed, result in per_seed.items()
        },
    }


def seed_plot(summary: dict, path: Path) -> Path:
    """Grouped bars: every metric (x) of every variant, mean over seeds with ±1 std whiskers."""
    variants = summary["variants"]
    metrics: list[str] = []
    for stats in variants.values():
        metrics += [m for m in stats if m not in metrics]
    width = 0.8 / len(variants)
    fig = Figure(figsize=(max(6.0, 1.2 * len(metrics)), 4.0))
    ax = fig.subplots()
    for i, (name, stats) in enumerate(variants.items()):
        positions = np.arange(len(metrics)) + (i - (len(variants) - 1) / 2) * width
        means = [100 * stats[m]["mean"] if m in stats else np.nan for m in metrics]
        stds = [100 * stats[m]["std"] if m in stats else 0.0 for m in metrics]
        ax.bar(positions, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(np.arange(len(metrics)), metrics, rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    seeds = ", ".join(map(str, summary["seeds"]))
    ax.set_title(f"{summary['recipe']}: mean ± std over seeds {seeds}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_seed_report(run_dir: Path, summary: dict) -> None:
    """results.md (mean ± std over seeds, links to each seed's own report) and results.json."""
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
    lines = [
        f"# {summary['recipe']} ({summary['run']}): mean ± std over seeds "
        f"{', '.join(map(str, summary['seeds']))} (accuracy %)",
        "",
        mean_std_table(rows),
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


def write_report(run_dir: Path, results: dict) -> None:
    """Writes results.md and the PNGs, then results.json last (it marks the run finished)."""
    results["table"] = "results.md"
    results["plot"] = accuracy_plot(results, run_dir / "accuracy.png").name
    results["curves_plot"] = curves_plot(results, run_dir / "robustness_curves.png").name
    sections = [markdown_table(results)]
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
    sections += [t for t in (input_robustness_table(results), denoiser_table(results)) if t]
    sections.append(robustness_details(results))
    (run_dir / "results.md").write_text(
        f"# {results['recipe']} ({results['run']})\n\n" + "\n".join(sections)
    )
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
