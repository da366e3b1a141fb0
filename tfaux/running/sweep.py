"""One complete run per seed (`seeds`), per backbone (`backbones`), or per backbone and seed
(both), then the sweep's summary and report.

Layout: `<run>/seeds/<recipe>-seed<k>-<time>/` for seeds, `<run>/backbones/<recipe>-<backbone>-
<time>/` for backbones. With both, each backbone's directory is itself a seed sweep
(`<run>/backbones/<recipe>-<backbone>-<time>/seeds/<recipe>-<backbone>-seed<k>-<time>/`, with
that backbone's seed summary), and the sweep's table compares the backbones on their means over
seeds. A finished point is read back, an unfinished one resumes: the same command continues.
Only the first point exports its best model.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfaux import reporting
from tfaux.config import Recipe
from tfaux.distribute import writable_dir
from tfaux.experiment import load_splits, log_to
from tfaux.provenance import code_commit
from tfaux.results import RunResult
from tfaux.running.directory import finished_run, read_finished, run_directory
from tfaux.running.evaluation import (
    corrupted_test_set,
    has_reference_errors,
    reference_errors,
    reference_files,
    reference_key,
    reference_recipe,
)
from tfaux.running.training import train_variant


@dataclass(frozen=True)
class _Axis:
    """What a sweep varies: the recipe's field (and the sweep's sub-directory), how one value
    becomes a recipe, and the summary and report over the values."""

    field: str
    point: Callable[[Recipe, object, bool], Recipe]
    summarize: Callable[[Recipe, str, dict], dict]
    write: Callable[[Path, dict], None]


def _seed_point(recipe: Recipe, seed: int, first: bool) -> Recipe:
    return dataclasses.replace(
        recipe,
        name=f"{recipe.name}-seed{seed}",
        seeds=(),
        training=dataclasses.replace(recipe.training, seed=seed),
        export=recipe.export and first,
    )


def _backbone_point(recipe: Recipe, backbone: str, first: bool) -> Recipe:
    """One backbone's recipe; it keeps the sweep's seeds, so with both it is a seed sweep."""
    return dataclasses.replace(
        recipe,
        name=f"{recipe.name}-{backbone}",
        backbones=(),
        model=dataclasses.replace(recipe.model, backbone=backbone),
        export=recipe.export and first,
    )


SEEDS = _Axis(
    "seeds",
    _seed_point,
    lambda recipe, run, per_seed: reporting.seed_summary(
        recipe.name, run, per_seed, claims=recipe.claims
    ),
    reporting.write_seed_report,
)
BACKBONES = _Axis(
    "backbones",
    _backbone_point,
    lambda recipe, run, per_backbone: reporting.backbone_summary(recipe.name, run, per_backbone),
    reporting.write_backbone_report,
)


def sweep(
    recipe: Recipe,
    run: Callable[..., RunResult],
    *,
    runs_dir: Path,
    savedmodels_dir: Path,
    fresh: bool,
    progress: bool,
    callbacks: tuple,
) -> RunResult:
    """Runs `recipe` once per value of its outermost sweep (backbones, else seeds) with `run`
    (`tfaux.runner.run`, which sweeps a backbone's seeds in turn), then writes the summary.

    Args:
        recipe: a recipe with `seeds`, `backbones` or both.
        run: runs one point's recipe (given `runs_dir`, `savedmodels_dir`, `progress` and
            `callbacks`); passed in, so the sweep does not depend on the runner that uses it.
        runs_dir, savedmodels_dir, fresh, progress, callbacks: as `tfaux.runner.run`'s.

    Returns:
        The sweep's directory, its summary (also in its results.json) and the first point's
        export.
    """
    axis = BACKBONES if recipe.backbones else SEEDS
    values = getattr(recipe, axis.field)
    run_dir = run_directory(runs_dir, recipe, fresh)
    points = {value: axis.point(recipe, value, value == values[0]) for value in values}
    if axis is SEEDS and recipe.corruption.enabled and recipe.training.strategy != "multi_worker":
        share_reference(points[values[0]], list(points.values()), run_dir, progress)
    parent = run_dir / axis.field
    per_point = {}
    for value, single in points.items():
        finished = finished_run(parent, single)
        per_point[value] = (
            read_finished(finished)
            if finished
            else run(
                single,
                runs_dir=parent,
                savedmodels_dir=savedmodels_dir,
                progress=progress,
                callbacks=callbacks,
            )
        )
    log_to(run_dir / "log.txt")
    summary = axis.summarize(recipe, run_dir.name, per_point)
    summary["commit"] = code_commit()
    axis.write(run_dir, summary)
    return RunResult(run_dir, summary, per_point[values[0]].export_dir)


def share_reference(first: Recipe, singles: list[Recipe], run_dir: Path, progress: bool):
    """One CE reference for every seed of a sweep: trained with the first seed in the sweep's
    own directory, evaluated once, and its errors copied into each seed's run before it starts.

    The reference is a fixed normalizer (the paper divides by one AlexNet's errors); one per
    seed added its own training noise to every CE difference and cost the sweep n × its
    training (3 × the variants' epochs each). A multi-worker sweep keeps one per seed: its
    workers would race for the copies.
    """
    if not has_reference_errors(first, run_dir):
        key = reference_key(first)
        train_variant(reference_recipe(first), "none", run_dir, progress, key=key)
        splits = load_splits(first)
        cset = corrupted_test_set(first, splits, progress)
        reference_errors(first, splits, run_dir, cset, progress)
    for single in singles:
        if finished_run(run_dir / "seeds", single) is None:
            seed_dir = run_directory(run_dir / "seeds", single, fresh=False)  # run() resumes it
            for source, target in zip(
                reference_files(first, run_dir), reference_files(single, seed_dir), strict=True
            ):
                writable_dir(target.parent)
                if not target.exists():
                    shutil.copyfile(source, target)
