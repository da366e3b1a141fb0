"""Results as files a person can look at: results.json, a Markdown table, a bar chart."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402


def markdown_table(results: dict) -> str:
    """One row per variant: accuracies in percent, training time and parameters."""
    variants = results["variants"]
    eps_keys = list(next(iter(variants.values()))["fgsm_accuracy"])
    header = [
        "variant",
        "val acc",
        "clean test acc",
        *(f"FGSM ε={e}" for e in eps_keys),
        "train s",
        "params",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in variants.items():
        cells = [
            name + (" (best)" if name == results.get("best_variant") else ""),
            f"{100 * r['val_accuracy']:.2f}",
            f"{100 * r['test_accuracy']:.2f}",
            *(f"{100 * r['fgsm_accuracy'][e]:.2f}" for e in eps_keys),
            f"{r['train_seconds']:.0f}",
            f"{r['parameters']:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def accuracy_plot(results: dict, path: Path) -> Path:
    """Grouped bars: clean and FGSM test accuracy of each variant."""
    variants = results["variants"]
    names = list(variants)
    eps_keys = list(variants[names[0]]["fgsm_accuracy"])
    series = {"clean": [100 * variants[n]["test_accuracy"] for n in names]}
    for eps in eps_keys:
        series[f"FGSM ε={eps}"] = [100 * variants[n]["fgsm_accuracy"][eps] for n in names]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 3.6))
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
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"{results['recipe']} on {results['dataset']['name']}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(series) + 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(run_dir: Path, results: dict) -> None:
    """Writes results.md and accuracy.png, then results.json last (it marks the run finished)."""
    results["table"] = "results.md"
    results["plot"] = accuracy_plot(results, run_dir / "accuracy.png").name
    (run_dir / "results.md").write_text(
        f"# {results['recipe']} ({results['run']})\n\n" + markdown_table(results)
    )
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
