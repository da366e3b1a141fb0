"""A run's and a seed sweep's results as PNG charts: accuracy bars with their intervals,
accuracy against ε, means over seeds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tfaux import statistics
from tfaux.evidence import headline
from tfaux.reporting.tables import with_n
from tfaux.results import RunResults, VariantResult


def curves_plot(results: RunResults | dict, path: Path) -> Path:
    """Accuracy vs ε for FGSM and PGD, one line per variant, with the chance level."""
    results = RunResults.coerce(results)
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    pgd_name = next(iter(results.variants.values())).pgd_attack.split(" ")[0]
    for ax, attack in zip(axes, ("fgsm", "pgd"), strict=True):
        for name, r in results.variants.items():
            curve = r.robustness["curves"][attack]
            eps = sorted(curve, key=float)
            ax.plot([float(e) for e in eps], [100 * curve[e] for e in eps], marker="o", label=name)
        ax.axhline(100 / results.dataset["num_classes"], color="gray", ls="--", lw=1)
        ax.set_xlabel("ε (L∞, pixels in [0, 1])")
        ax.set_title("FGSM" if attack == "fgsm" else pgd_name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{results.recipe}: accuracy vs ε", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def accuracy_plot(
    results: RunResults | dict, path: Path, correct: dict[str, dict[str, np.ndarray]] | None = None
) -> Path:
    """Grouped bars: clean, FGSM and PGD test accuracy of each variant, with 95 % Wilson
    intervals over the test set as whiskers (from `correct`, see `load_correct`, where given;
    else from the accuracy and the number of test images, which give the same interval)."""
    results = RunResults.coerce(results)
    variants = results.variants
    names = list(variants)
    correct = correct or {}
    eps_keys = list(variants[names[0]].fgsm_accuracy)
    series = {
        "clean": [
            _bar(variants[n].test_accuracy, _images(variants[n]), correct.get(n, {}).get("clean"))
            for n in names
        ]
    }
    for eps in eps_keys:
        series[f"FGSM ε={eps}"] = [
            _bar(variants[n].fgsm_accuracy[eps], _images(variants[n])) for n in names
        ]
    first = variants[names[0]]
    pgd = first.pgd_attack
    series[with_n(pgd, first.robustness["examples"].get(pgd))] = [
        _bar(variants[n].pgd_accuracy, _images(variants[n])) for n in names
    ]
    if headline(first)[0] != pgd:  # AutoAttack, on its own (smaller) set of images
        series[with_n(*headline(first)[::2])] = [
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
        100 / results.dataset["num_classes"],
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
    ax.set_title(f"{results.recipe} on {results.dataset['name']} (whiskers: 95 % CI)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _images(result: VariantResult) -> int | None:
    """The test images of a variant: FGSM and the headline PGD run on all of them."""
    return result.test_examples or result.robustness.get("num_examples")


def _bar(accuracy: float, n: int | None, correct: np.ndarray | None = None) -> statistics.Estimate:
    """An accuracy over `n` images with its Wilson interval (from the per-example `correct` where
    given); NaN bounds when the number of images is unknown."""
    if correct is not None:
        return statistics.accuracy_ci(correct)
    if not n or not math.isfinite(accuracy):
        return statistics.Estimate(accuracy, math.nan, math.nan)
    return statistics.proportion_ci(round(accuracy * n), n)


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
