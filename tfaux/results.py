"""What a run measured, typed: one `VariantResult` per variant and the run's `RunResults`.

results.json stays the record on disk: `to_dict` writes exactly the JSON the runner always
wrote (same keys, same order), `from_dict` reads it back, older runs' files included (a field
they lack is None and is not written back). Nested reports (robustness, budget, selection,
corruption) stay dicts: their keys are the evaluators' own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class VariantResult:
    """One trained variant's numbers: accuracies (fractions), its robustness report, what its
    training cost, and the names of its per-example files beside it in `variants/`.

    Frozen at the top level; the nested dicts are the reports as measured (the runner adds
    the budget rule's marks to `budget`).
    """

    tasks: list[str] | None = None
    loop: str | None = None
    aux_weight: float | None = None
    val_accuracy: float
    val_pgd_accuracy: float | None = None  # the selected epoch's, where it was measured
    test_accuracy: float
    fgsm_accuracy: dict[str, float]
    pgd_accuracy: float
    pgd_attack: str
    robust_accuracy: float | None = None  # AutoAttack's worst case where it ran, else PGD's
    robust_attack: str | None = None
    trustworthy: bool | None = None
    robustness: dict
    test_examples: int | None = None
    correct: str | None = None  # `<variant>.correct.npz`
    selection: dict | None = None
    budget: dict | None = None
    train_seconds: float
    monitor_seconds: dict[str, float] | None = None
    epochs_run: int | None = None
    parameters: int
    deployed_parameters: int | None = None
    weights: str | None = None
    # The training loop's own entries (Auxiliary Training's "merging"), by name.
    loop_results: dict[str, Any] = field(default_factory=dict)
    corruption: dict | None = None  # the -C errors
    corruption_correct: str | None = None  # `<variant>.corruption.npz`
    heatmap: dict | None = None
    disturbances: dict[str, float] | None = None
    augmented: dict[str, dict] | None = None
    # The tasks' own reports (the denoiser's), by name.
    task_reports: dict[str, Any] = field(default_factory=dict)
    corruption_error: dict | None = None  # CE and mCE against the run's reference

    def entry(self, name: str) -> Any:
        """A loop's or a task's own entry by name, or None. Read back from a run without the
        evaluation's extras, a task's report sits where the loop's entries do."""
        return self.loop_results.get(name, self.task_reports.get(name))

    @property
    def merging(self) -> dict | None:
        """Auxiliary Training's weight merging (seed 001, Algorithm 1)."""
        return self.entry("merging")

    @property
    def denoiser(self) -> dict | None:
        """The denoising front end's report (`tfaux.evaluate.denoiser`)."""
        return self.entry("denoiser")

    def to_dict(self) -> dict:
        """The variant's entry of results.json, in the order the runner builds it."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("loop_results", "task_reports"):
                out.update(value)
            elif value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> VariantResult:
        """A variant's entry as read from results.json (or `<variant>.json`). Keys no field
        names are the loop's entries when they come before the evaluation's extras (where the
        runner puts them), else the tasks' reports."""
        known, loop_results, task_reports = {}, {}, {}
        after_loop = False
        for key, value in data.items():
            if key in _AFTER_LOOP:
                after_loop = True
            if key in _FIELDS:
                known[key] = value
            else:
                (task_reports if after_loop else loop_results)[key] = value
        missing = [key for key in _REQUIRED if key not in known]
        if missing:
            raise ValueError(
                f"Expected a variant result with {', '.join(_REQUIRED)}. Received: no {missing}"
            )
        return cls(**known, loop_results=loop_results, task_reports=task_reports)

    @classmethod
    def coerce(cls, value: VariantResult | dict) -> VariantResult:
        """`value` itself, or read from its results.json form."""
        return value if isinstance(value, VariantResult) else cls.from_dict(value)

    def replace(self, **changes) -> VariantResult:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name for f in dataclasses.fields(VariantResult)} - {"loop_results", "task_reports"}
_REQUIRED = tuple(
    f.name
    for f in dataclasses.fields(VariantResult)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)
# The evaluation's entries, which the runner writes after the loop's own.
_AFTER_LOOP = {
    "corruption",
    "corruption_correct",
    "heatmap",
    "disturbances",
    "augmented",
    "corruption_error",
}


@dataclass(frozen=True, kw_only=True)
class RunResults:
    """One run's results.json: the run, its data, every variant's `VariantResult`, the best
    and the baseline variant, and what its report added (comparison, claims, file names)."""

    recipe: str
    run: str
    dataset: dict
    backbone: str | None = None
    variants: dict[str, VariantResult]
    best_variant: str | None = None
    best_by: str | None = None
    # Always written (null included): None is a run outside a git checkout, or no baseline.
    baseline: str | None = None
    budget_rule: dict | None = None
    commit: str | None = None
    corruption: dict | None = None  # the CE reference and the benchmark's definition
    export: str | None = None  # where the best variant was exported
    # === Added by the report ===
    comparison: dict | None = None
    claims: list[dict] | None = None
    table: str | None = None
    plot: str | None = None
    curves_plot: str | None = None
    corruption_plot: str | None = None
    heatmap_plot: str | None = None
    robustbench: str | None = None
    # Keys of older or newer files that no field names, kept so they are written back.
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """results.json, in the order the runner and the report write it."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "variants":
                out["variants"] = {name: r.to_dict() for name, r in value.items()}
            elif f.name == "extras":
                out.update(value)
            elif value is not None or f.name in _ALWAYS_WRITTEN:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> RunResults:
        """A run's results.json as read back (finished runs of a sweep, older runs)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extras"}
        missing = [key for key in ("recipe", "run", "dataset", "variants") if key not in data]
        if missing:
            raise ValueError(
                f"Expected a run's results with recipe, run, dataset and variants. Received: "
                f"no {missing}"
            )
        known = {key: value for key, value in data.items() if key in names}
        known["variants"] = {n: VariantResult.coerce(r) for n, r in data["variants"].items()}
        extras = {key: value for key, value in data.items() if key not in names}
        return cls(**known, extras=extras)

    @classmethod
    def coerce(cls, value: RunResults | dict) -> RunResults:
        """`value` itself, or read from its results.json form."""
        return value if isinstance(value, RunResults) else cls.from_dict(value)

    def replace(self, **changes) -> RunResults:
        return dataclasses.replace(self, **changes)


# The runner writes these even when None: the baseline and the commit of every newer run.
_ALWAYS_WRITTEN = {"baseline", "commit"}


@dataclass(frozen=True)
class RunResult:
    """What `tfaux.runner.run` returns: the run directory, its results.json as written (a
    run's `RunResults.to_dict()`, or a sweep's summary) and where the best model was exported.
    """

    run_dir: Path
    results: dict
    export_dir: Path | None
