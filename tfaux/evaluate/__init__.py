"""Evaluation: adversarial robustness with sanity checks, the -C corruption benchmark, Fourier
heat maps."""

from tfaux.evaluate.corruption import corrupted_set, corruption_error, corruption_errors
from tfaux.evaluate.fourier_heatmap import fourier_heatmap, heatmap_plot
from tfaux.evaluate.robustness import robustness

__all__ = [
    "corrupted_set",
    "corruption_error",
    "corruption_errors",
    "fourier_heatmap",
    "heatmap_plot",
    "robustness",
]
