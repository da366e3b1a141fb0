"""Exporting a run's best variant: a SavedModel of its primary classifier, with metadata."""

from __future__ import annotations

from pathlib import Path

from tfaux.config import Recipe
from tfaux.export import saved_model
from tfaux.results import VariantResult
from tfaux.running.evaluation import trained_model


def export_variant(
    recipe: Recipe, variant: str, result: VariantResult, splits, run_dir: Path, parent: Path
) -> Path:
    """The variant's trained model as a SavedModel in `<parent>/<run>`, with its headline
    metrics and the recipe as metadata."""
    model = trained_model(recipe, variant, splits.info, run_dir)
    info = splits.info
    return saved_model(
        model,
        parent / run_dir.name,
        class_names=info.class_names,
        metadata={
            "run": run_dir.name,
            "recipe": recipe.to_dict(),
            "variant": variant,
            "dataset": info.name,
            "metrics": {
                k: getattr(result, k)
                for k in ("val_accuracy", "test_accuracy", "fgsm_accuracy", "pgd_accuracy")
            },
        },
    )
