"""Results as files a person can look at: results.json, Markdown tables, bar charts.

Every comparison says whether a difference is real (`tfaux.statistics`): within one run, each
variant against the baseline on the same test images; over seeds, paired by seed.

- `tables`: the Markdown tables.
- `plots`: the PNG charts.
- `summaries`: comparisons with the baseline, seed and backbone summaries, RobustBench entries.
- `report`: writing a run's or a sweep's results.md, PNGs and results.json.
"""

from tfaux.reporting.plots import accuracy_plot, curves_plot, seed_plot
from tfaux.reporting.report import write_backbone_report, write_report, write_seed_report
from tfaux.reporting.summaries import (
    backbone_summary,
    baseline_comparison,
    robustbench_entries,
    seed_summary,
)
from tfaux.reporting.tables import (
    MONITORS,
    backbone_table,
    comparison_table,
    corruption_table,
    denoiser_table,
    input_robustness_table,
    markdown_table,
    mean_ci_table,
    mean_std_table,
    merging_table,
    monitoring_table,
    provenance_lines,
    robustness_details,
    seed_comparison_table,
    seed_training_table,
    with_n,
)

__all__ = [
    "MONITORS",
    "accuracy_plot",
    "backbone_summary",
    "backbone_table",
    "baseline_comparison",
    "comparison_table",
    "corruption_table",
    "curves_plot",
    "denoiser_table",
    "input_robustness_table",
    "markdown_table",
    "mean_ci_table",
    "mean_std_table",
    "merging_table",
    "monitoring_table",
    "provenance_lines",
    "robustbench_entries",
    "robustness_details",
    "seed_comparison_table",
    "seed_plot",
    "seed_summary",
    "seed_training_table",
    "with_n",
    "write_backbone_report",
    "write_report",
    "write_seed_report",
]
