"""Evaluation: adversarial robustness with sanity checks, the -C corruption benchmark, Fourier
heat maps, test-time disturbances, augmented test sets, denoiser reports."""

from tfaux.data.corrupted_set import corrupted_set  # re-exported: -C sets are made in data
from tfaux.evaluate.augmented import augmented_accuracy
from tfaux.evaluate.corruption import (
    corruption_error,
    corruption_errors,
    load_corruption_correct,
    save_corruption_correct,
)
from tfaux.evaluate.denoiser import denoiser_report
from tfaux.evaluate.disturbances import disturbance_accuracy
from tfaux.evaluate.fourier_heatmap import fourier_heatmap, heatmap_plot
from tfaux.evaluate.robustness import AttackJob, attack_jobs, robustness

__all__ = [
    "AttackJob",
    "attack_jobs",
    "augmented_accuracy",
    "corrupted_set",
    "corruption_error",
    "corruption_errors",
    "denoiser_report",
    "disturbance_accuracy",
    "fourier_heatmap",
    "heatmap_plot",
    "load_corruption_correct",
    "robustness",
    "save_corruption_correct",
]
