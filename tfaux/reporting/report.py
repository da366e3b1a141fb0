"""The files of a run's and a sweep's report: results.md, the PNGs and results.json, written
last (its presence marks the run finished)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfaux.claims import claims_table, judge_claims
from tfaux.config import Claim
from tfaux.evaluate.corruption_plot import corruption_plot
from tfaux.evaluate.fourier_heatmap import heatmap_plot
from tfaux.evidence import RunRecord
from tfaux.reporting.plots import accuracy_plot, curves_plot, seed_plot
from tfaux.reporting.summaries import baseline_comparison, robustbench_entries
from tfaux.reporting.tables import (
    backbone_table,
    comparison_table,
    corruption_table,
    data_lines,
    denoiser_table,
    input_robustness_table,
    markdown_table,
    mean_ci_table,
    merging_table,
    monitoring_table,
    provenance_lines,
    robustness_details,
    seed_comparison_table,
    seed_training_table,
)
from tfaux.results import RunResults


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


def write_report(
    run_dir: Path, results: RunResults | dict, claims: tuple[Claim, ...] = ()
) -> RunResults:
    """Writes results.md (the recipe's claims first, then the tables) and the PNGs, then
    results.json last (it marks the run finished). Returns the results with what the report
    added (comparison, claims, file names)."""
    results = RunResults.coerce(results)
    record = RunRecord(run_dir, results)
    correct = record.correct()
    comparison = baseline_comparison(results, correct)
    added = {"comparison": comparison} if comparison else {}
    sections = []
    if claims:
        added["claims"] = judge_claims(claims, [record])
        sections.append(claims_table(added["claims"]))
    added["table"] = "results.md"
    added["plot"] = accuracy_plot(results, run_dir / "accuracy.png", correct).name
    added["curves_plot"] = curves_plot(results, run_dir / "robustness_curves.png").name
    sections.append(markdown_table(results))
    if comparison:
        sections.append(comparison_table(results, comparison))
    if results.corruption is not None:
        per_model = {name: r.corruption_error for name, r in results.variants.items()}
        added["corruption_plot"] = corruption_plot(per_model, run_dir / "corruption_ce.png").name
        sections.append(corruption_table(results))
    maps = {
        name: np.load(run_dir / "variants" / r.heatmap["file"])
        for name, r in results.variants.items()
        if r.heatmap is not None
    }
    if maps:
        path = heatmap_plot(maps, run_dir / "fourier_heatmap.png", title=results.recipe)
        added["heatmap_plot"] = path.name
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
        added["robustbench"] = "robustbench.json"
    results = results.replace(**added)
    (run_dir / "results.md").write_text(
        "\n".join(
            [
                f"# {results.recipe} ({results.run})",
                "",
                *provenance_lines(results),
                *data_lines(results),
            ]
        )
        + "\n"
        + "\n".join(sections)
    )
    (run_dir / "results.json").write_text(json.dumps(results.to_dict(), indent=2))
    return results


def write_backbone_report(run_dir: Path, summary: dict) -> None:
    """results.md (`backbone_table`) and results.json of a backbone sweep."""
    (run_dir / "results.md").write_text(backbone_table(summary))
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2))
