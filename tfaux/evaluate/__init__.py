"""Evaluation: clean and adversarial accuracy over a dataset."""

from tfaux.evaluate.robustness import robustness

__all__ = ["robustness"]
