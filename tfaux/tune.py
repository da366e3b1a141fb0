"""KerasTuner search of one variant's aux-loss weights λ (and, for adversarial loops, ε and m).

    python recipes/run.py tune seed000_ft --set tuning.max_trials=20
    python recipes/run.py runs/seed000_ft-tune/best_recipe.py

Every trial is the runner's model of the tuned variant with the trial's λ written into the
variant string ("fourier=0.0123"), trained with the runner's callbacks (loop callbacks, schedule,
early stopping, TerminateOnNaN) and scored by `tuning.objective`. A search lives in
`<runs-dir>/<recipe>-tune/`:

- `search.json`: the search space (hyperparameters and ranges, objective, tuner, epochs per
  trial, the tuned variant) and the recipe without its tuning section. The same command continues
  the search; one with another space or recipe is refused (`fresh=True` / `--fresh` starts over).
  `tuning.max_trials` may change: raising it extends a finished search.
- `keras_tuner/`: KerasTuner's project (`oracle.json`, `trial_<id>/trial.json`, the trial's
  best-epoch checkpoint) and, per trial, our `history.csv` (every epoch, appended across a
  restart), `summary.json` and, while it trains, `backup/` (`keras.callbacks.BackupAndRestore`).
- `tensorboard/<trial id>/execution0/`: the trial's TensorBoard log with its hparams.
- `trials.md`, `trials.csv`, `best_recipe.py`: rewritten after every trial.

How KerasTuner 1.4.8 resumes (`overwrite=False`; read in `keras_tuner/src/engine/oracle.py` and
checked by `tests/unit/test_tune.py`): `Oracle.reload` reads every `trial_*/trial.json`, so finished
trials are kept and count towards `max_trials`; the trials that were running (`ongoing_trials`
in `oracle.json`) go to a retry queue, and `create_trial` hands them out first, with the same
trial id and hyperparameters, before creating new ones. So a trial's own directory is the right
place for its backup: the retried trial finds it, and a new trial id never sees it. What
KerasTuner does not keep across a restart we keep ourselves: the epochs before the crash (the
objective is taken from the trial's whole `history.csv`, not from the restarted `fit`'s History).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner
import numpy as np
from keras_tuner.errors import FailedTrialError

from tfaux.config import Recipe, with_testable_claims
from tfaux.distribute import create_strategy
from tfaux.experiment import (
    build_model,
    check_recipe,
    fit,
    load_splits,
    log_to,
    loop_of,
    training_callbacks,
    tuning_variant,
)
from tfaux.training.resume import RunBackup, TrainingFailedError
from tfaux.variant import Variant

PROJECT = "keras_tuner"
SEARCH_FILE = "search.json"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"
BACKUP_DIR = "backup"
COMPLETED = "COMPLETED"  # keras_tuner TrialStatus
log = logging.getLogger("tfaux")


@dataclass(frozen=True)
class TuneResult:
    """A search's outcome: its directory, one row per trial, the best row and recipe file."""

    search_dir: Path
    trials: list[dict]
    best: dict | None
    best_recipe: Path | None
    table: str


def tune(
    recipe: Recipe,
    *,
    runs_dir: str | Path = "runs",
    fresh: bool = False,
    progress: bool = True,
    verbose: bool = True,
) -> TuneResult:
    """Searches the λ (and ε, m) of `recipe.tuning`'s variant with KerasTuner.

    Args:
        recipe: the recipe; its `tuning` section says what to search and how.
        runs_dir: parent of the search directory `<recipe>-tune/`.
        fresh: delete an existing search of the same recipe and start over.
        progress: show a progress bar per trial.
        verbose: print one line when a trial starts and one when it ends.

    Returns:
        A `TuneResult`; the same table is in `trials.md`, the best recipe in `best_recipe.py`.

    Raises:
        ValueError: a bad tuning setting, or a search directory holding another search.
        TuningError: KerasTuner stopped after consecutive failed trials.
    """
    check_recipe(recipe)
    variant = tuning_variant(recipe)
    info = load_splits(_trial_recipe(recipe)).info  # missing data fails before any directory
    check_recipe(recipe, info.image_shape)  # layer names need the image shape: before any trial
    search_dir = Path(runs_dir) / f"{recipe.name}-tune"
    if fresh and search_dir.exists():
        shutil.rmtree(search_dir)
    _claim(search_dir, search_description(recipe))
    log_to(search_dir / "log.txt")
    log.info("search %s: %s", search_dir, json.dumps(search_description(recipe)))

    report = _Report(recipe, variant, search_dir, verbose)
    tuner = _tuner(recipe, LambdaHyperModel(recipe, variant, info, progress=progress), report)
    done = sum(t.status == COMPLETED for t in tuner.oracle.trials.values())
    if tuner.oracle.trials:
        report.say(f"continuing the search in {search_dir}: {done} trial(s) done")
    report.write(tuner.oracle)
    try:
        tuner.search(callbacks=[keras.callbacks.TensorBoard(str(search_dir / "tensorboard"))])
    except RuntimeError as error:  # KerasTuner's "Number of consecutive failures exceeded"
        if "consecutive failures" not in str(error):
            raise
        report.write(tuner.oracle)
        last = _last_line(str(error))
        raise TuningError(
            f"{tuner.oracle.max_consecutive_failed_trials} trials in a row failed, the last "
            f"with: {last}. See {search_dir / 'trials.md'}"
        ) from None
    return report.write(tuner.oracle)


class TuningError(TrainingFailedError):
    """The search stopped because trials kept failing."""


# === Search space ===
def declare_hyperparameters(
    hp: keras_tuner.HyperParameters, recipe: Recipe, variant: str
) -> dict[str, float | int]:
    """Registers the search space in `hp` and returns the trial's values: `lambda_<task>` (log
    scale) per aux task of `variant`, `eps` (linear) and `replays` when `tuning` searches them."""
    t = recipe.tuning
    values = {
        f"lambda_{task}": hp.Float(f"lambda_{task}", t.weight_min, t.weight_max, sampling="log")
        for task in Variant.parse(variant).tasks
    }
    if t.eps is not None:
        values["eps"] = hp.Float("eps", *t.eps)
    if t.replays is not None:
        values["replays"] = hp.Int("replays", *t.replays)
    return values


def search_description(recipe: Recipe) -> dict:
    """What `search.json` holds: every setting that changes what a trial's score means."""
    t = recipe.tuning
    hp = keras_tuner.HyperParameters()
    declare_hyperparameters(hp, recipe, tuning_variant(recipe))
    objective = {"name": t.objective, "direction": "max"}
    if t.objective != "val_accuracy":
        objective.update(
            attack=f"PGD-{t.pgd_steps}", eps=recipe.evaluation.eps, examples=t.robust_examples
        )
    tuner = {"kind": t.tuner}
    if t.tuner == "hyperband":
        tuner["factor"] = t.hyperband_factor
    settings = recipe.to_dict()
    del settings["tuning"]
    description = {
        "variant": tuning_variant(recipe),
        "tuner": tuner,
        "epochs_per_trial": _trial_recipe(recipe).training.epochs,
        "objective": objective,
        "hyperparameters": {p.name: p.get_config() for p in hp.space},
        "recipe": settings,
    }
    return json.loads(json.dumps(description))  # tuples → lists, as read back from disk


def _claim(search_dir: Path, description: dict) -> None:
    """Writes `search.json`, or checks that an existing search is the same search."""
    path = search_dir / SEARCH_FILE
    if path.exists():
        changes = _differences(json.loads(path.read_text()), description)
        if changes:
            shown = "; ".join(changes[:3]) + ("; …" if len(changes) > 3 else "")
            raise ValueError(
                f"Expected the search space and recipe of the search in {search_dir}. Received "
                f"changes: {shown}. Use --fresh to start that search over, or another --runs-dir."
            )
        return
    search_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(description, indent=2))


def _differences(old, new, key: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for name in [*old, *(n for n in new if n not in old)]:
            changes += _differences(old.get(name), new.get(name), f"{key}.{name}" if key else name)
        return changes
    return [] if old == new else [f"{key} {old!r} → {new!r}"]


# === From a trial's values to a recipe ===
def weighted_variant(variant: str, weights: dict[str, float]) -> str:
    """`variant` with each task's λ written in: ("fourier@fgsm", {fourier: 0.01}) →
    "fourier=0.01@fgsm". Positional notation: "+" separates tasks, so never "1e+04"."""
    head, colon, augmentation = variant.partition(":")
    _, at, loop = head.partition("@")
    tasks = "+".join(
        f"{task}={np.format_float_positional(weight, trim='-')}" for task, weight in weights.items()
    )
    return f"{tasks}{at}{loop}{colon}{augmentation}"


def tuned_recipe(recipe: Recipe, values: dict, variant: str | None = None) -> Recipe:
    """`recipe` with a trial's λ written into the tuned variant and its ε and m into
    `adversarial` (so every variant of the recipe on those loops gets them). The paper's claims
    on the tuned variant are dropped: they were made at the paper's λ, not the searched one."""
    variant = variant or tuning_variant(recipe)
    weights = {task: _rounded(values[f"lambda_{task}"]) for task in Variant.parse(variant).tasks}
    new = weighted_variant(variant, weights)
    adversarial = recipe.adversarial
    if "eps" in values:
        adversarial = dataclasses.replace(adversarial, eps=_rounded(values["eps"]))
    if "replays" in values:
        adversarial = dataclasses.replace(adversarial, replays=int(values["replays"]))
    variants = tuple(dict.fromkeys(new if v == variant else v for v in recipe.variants))
    tuned = dataclasses.replace(
        recipe,
        variants=variants,
        adversarial=adversarial,
        tuning=dataclasses.replace(recipe.tuning, variant=new),
        claims=(),
    )
    return with_testable_claims(tuned, recipe.claims)


def _rounded(value: float) -> float:
    """Four significant digits: the λ a trial trains with is the λ its variant string shows."""
    return float(f"{float(value):.4g}")


def _trial_recipe(recipe: Recipe) -> Recipe:
    """`recipe` with `tuning.epochs` epochs (its warm-up shortened to fit)."""
    epochs = recipe.tuning.epochs or recipe.training.epochs
    training = dataclasses.replace(
        recipe.training,
        epochs=epochs,
        warmup_epochs=min(recipe.training.warmup_epochs, epochs - 1),
    )
    return dataclasses.replace(recipe, training=training)


# === The hypermodel ===
class LambdaHyperModel(keras_tuner.HyperModel):
    """The runner's model of one variant, with the trial's λ (and ε, m), and its training.

    `fit` loads fresh pipelines (every trial sees the same batches), trains with the runner's
    callbacks, a `RobustAccuracy` when the objective needs it, a CSV log and a
    `BackupAndRestore` in the trial's own directory, and returns the metrics of the trial's best
    epoch by the objective, over all its epochs (those before a restart included). A trial
    trains `tuning.epochs` epochs, ÷ m for Free-AT as in the runner; under Hyperband the epochs
    are Hyperband's (for Free-AT, each of m replays). A trial whose loss is not finite fails.

    Args:
        recipe: the recipe being tuned.
        variant: the tuned variant (`tuning_variant(recipe)`).
        info: the dataset's `DataInfo` (shapes, classes, normalization).
        progress: a progress bar per trial.
    """

    def __init__(self, recipe: Recipe, variant: str, info, *, progress: bool = False):
        super().__init__(name=f"{recipe.name}_lambda")
        self.recipe, self.variant, self.info, self.progress = recipe, variant, info, progress

    def declare_hyperparameters(self, hp):
        declare_hyperparameters(hp, self.recipe, self.variant)

    def trial_recipe(self, hp) -> tuple[Recipe, str]:
        """The recipe a trial trains (λ, ε, m filled in; per-trial epochs) and its variant."""
        values = declare_hyperparameters(hp, self.recipe, self.variant)
        recipe = _trial_recipe(tuned_recipe(self.recipe, values, self.variant))
        return recipe, recipe.tuning.variant

    def build(self, hp) -> keras.Model:
        recipe, variant = self.trial_recipe(hp)
        model, strategy = build_model(recipe, variant, self.info)
        with strategy.scope():
            # Hyperband continues a trial from another's checkpoint, optimizer state included.
            model.optimizer.build(model.trainable_variables)
        return model

    def fit(
        self,
        hp,
        model,
        *args,
        trial_dir,
        callbacks=(),
        epochs=None,
        initial_epoch=0,
        **kwargs,
    ) -> dict:
        recipe, variant = self.trial_recipe(hp)
        trial_dir = Path(trial_dir)
        splits = load_splits(recipe)
        loop = loop_of(recipe, variant)
        # Hyperband sets its own epochs (for Free-AT, each of m replays) and compares trials at
        # them: the natural-training step budget would cut its higher rungs short.
        hyperband_epochs = epochs is not None
        if epochs is None:  # otherwise the loop's (Free-AT: ÷ m)
            epochs = loop.epochs(recipe.training.epochs)
        t = recipe.tuning
        robust = t.objective != "val_accuracy"  # the objective needs `val_pgd_accuracy`
        ours = training_callbacks(
            recipe,
            loop,
            epochs,
            splits,
            # The log before the backup: an epoch in the backup is always in the log.
            history_file=trial_dir / HISTORY_FILE,
            robust_examples=t.robust_examples if robust else None,  # None: the monitor's
            robust_steps=t.pgd_steps if robust else None,
            robust_every=1 if robust else None,  # the objective reads every epoch's
            progress=f"trial {trial_dir.name.removeprefix('trial_')}" if self.progress else None,
            budget=not hyperband_epochs,
        )
        # Last of ours: it restores the state of those above (δ, early stopping, the guard);
        # KerasTuner's callbacks (its TensorBoard, checkpoint) follow and read the same logs.
        ours.append(RunBackup(trial_dir / BACKUP_DIR, ours))
        start = time.perf_counter()
        history = fit(
            model,
            splits,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=[*ours, *callbacks],
            strategy=create_strategy(recipe.training.strategy),
        )
        return self._result(trial_dir, variant, history, initial_epoch, start)

    def _result(self, trial_dir: Path, variant: str, history, initial_epoch: int, start) -> dict:
        epochs = read_history(trial_dir / HISTORY_FILE)
        if not epochs:
            raise FailedTrialError("no epoch finished")
        last = max(epochs)
        if not math.isfinite(epochs[last].get("loss", 0.0)):
            raise FailedTrialError(
                f"training diverged: loss {epochs[last]['loss']} at epoch {last}"
            )
        objective = self.recipe.tuning.objective
        best = max(epochs, key=lambda e: _finite(epochs[e].get(objective)))
        first_run = history.epoch[0] if history.epoch else initial_epoch
        summary = {
            "variant": variant,
            "initial_epoch": initial_epoch,
            # The epoch this trial's last `fit` started at, when a backup brought it forward.
            "resumed_at": first_run if first_run > initial_epoch else None,
            "epochs": len(epochs),
            "best_epoch": best,
            "last_fit_seconds": round(time.perf_counter() - start, 1),
        }
        (trial_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        return {k: v for k, v in epochs[best].items() if k != "epoch"}


def read_history(path: Path) -> dict[int, dict[str, float]]:
    """A trial's `history.csv` as {epoch: metrics}; a repeated epoch (trained again after a
    restart) keeps its last row."""
    if not path.exists():
        return {}
    epochs = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                epochs[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v != ""}
            except (KeyError, TypeError, ValueError):  # a row cut short by a kill
                continue
    return epochs


def _finite(value) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


# === The tuners ===
class _SearchTuner:
    """What our tuners add to KerasTuner's: the trial directory reaches `fit` (for its backup),
    the space is declared without building a model, one console line per trial, and the tables
    are rewritten after every trial."""

    def __init__(self, *args, report: _Report, **kwargs):
        self.report = report
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from …": we say it
            super().__init__(*args, **kwargs)

    def _populate_initial_space(self):
        # KerasTuner builds the model once to discover conditional hyperparameters; ours are
        # all declared up front, so nothing is built here.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, *args, **kwargs):
        kwargs["trial_dir"] = self.get_trial_dir(trial.trial_id)
        return super().run_trial(trial, *args, **kwargs)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self.report.started(self.oracle, trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle scores and saves the trial
        self.report.ended(self.oracle, trial)


class _BayesianTuner(_SearchTuner, keras_tuner.BayesianOptimization):
    pass


class _HyperbandTuner(_SearchTuner, keras_tuner.Hyperband):
    pass


def _tuner(recipe: Recipe, hypermodel: LambdaHyperModel, report: _Report):
    t = recipe.tuning
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(t.objective, direction="max"),
        "directory": str(report.search_dir),
        "project_name": PROJECT,
        "overwrite": False,  # the same command continues the search
        "seed": recipe.training.seed + 1,  # KerasTuner draws a random seed for 0
        "report": report,
    }
    if t.tuner == "bayesian":
        tuner = _BayesianTuner(max_trials=t.max_trials, **common)
    else:
        epochs = _trial_recipe(recipe).training.epochs
        tuner = _HyperbandTuner(max_epochs=epochs, factor=t.hyperband_factor, **common)
        tuner.oracle.max_trials = t.max_trials  # Hyperband's schedule, capped
    tuner.oracle.verbose = 0  # its trial tables and timings: we print one line per trial
    return tuner


# === Report ===
class _Report:
    """The console lines and the files `trials.md`, `trials.csv` and `best_recipe.py`."""

    def __init__(self, recipe: Recipe, variant: str, search_dir: Path, verbose: bool):
        self.recipe, self.variant = recipe, variant
        self.search_dir, self.verbose = search_dir, verbose
        self.objective = recipe.tuning.objective
        self._started: dict[str, float] = {}

    def say(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def started(self, oracle, trial) -> None:
        self._started[trial.trial_id] = time.perf_counter()
        values = ", ".join(f"{k}={v:.4g}" for k, v in _searched(trial).items())
        backup = self.search_dir / PROJECT / f"trial_{trial.trial_id}" / BACKUP_DIR
        retry = " (resuming from its backup)" if backup.exists() else ""
        number = oracle.start_order.index(trial.trial_id) + 1
        self.say(f"trial {trial.trial_id} ({number} of {oracle.max_trials}){retry}: {values}")

    def ended(self, oracle, trial) -> None:
        seconds = time.perf_counter() - self._started.get(trial.trial_id, time.perf_counter())
        result = self.write(oracle)
        row = next(r for r in result.trials if r["trial"] == trial.trial_id)
        log.info("trial %s: %s", trial.trial_id, json.dumps(row))
        if trial.status == COMPLETED:
            scores = f"{self.objective}={row[self.objective]:.4f}"
            if self.objective != "val_accuracy":
                scores += f", val_accuracy={row['val_accuracy']:.4f}"
            outcome = f"{scores} ({row['epochs']} epoch{'s' * (row['epochs'] != 1)})"
        else:
            outcome = f"{trial.status.lower()}: {_last_line(trial.message)}"
        best = f"; best so far trial {result.best['trial']}" if result.best else ""
        self.say(f"trial {trial.trial_id} done in {seconds:.0f} s: {outcome}{best}")

    def write(self, oracle) -> TuneResult:
        rows = [self._row(trial) for trial in sorted(oracle.trials.values(), key=_trial_number)]
        best_trials = [t for t in oracle.get_best_trials(1) if t.status == COMPLETED]
        best = next(
            (r for r in rows if best_trials and r["trial"] == best_trials[0].trial_id), None
        )
        best_recipe = None
        if best is not None:
            best_recipe = self.search_dir / "best_recipe.py"
            best_recipe.write_text(self._best_recipe_source(best_trials[0], len(rows)))
        table = self._table(rows, best, best_recipe)
        (self.search_dir / "trials.md").write_text(table)
        with (self.search_dir / "trials.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
            writer.writeheader()
            writer.writerows(rows)
        return TuneResult(self.search_dir, rows, best, best_recipe, table)

    def _row(self, trial) -> dict:
        row = {"trial": trial.trial_id, "status": trial.status.lower()}
        row.update(
            {k: v if isinstance(v, int) else _rounded(v) for k, v in _searched(trial).items()}
        )
        for name in dict.fromkeys([self.objective, "val_accuracy"]):
            exists = trial.status == COMPLETED and trial.metrics.exists(name)
            row[name] = float(trial.metrics.get_last_value(name)) if exists else None
        summary_file = self.search_dir / PROJECT / f"trial_{trial.trial_id}" / SUMMARY_FILE
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        row["epochs"] = summary.get("epochs")
        row["resumed_at"] = summary.get("resumed_at")
        if self.recipe.tuning.tuner == "hyperband":
            row["continues"] = trial.hyperparameters.values.get("tuner/trial_id")
        return row

    def _table(self, rows: list[dict], best: dict | None, best_recipe: Path | None) -> str:
        t = self.recipe.tuning
        lines = [
            f"# λ search: {self.recipe.name}, variant {self.variant}",
            "",
            f"KerasTuner {t.tuner}, objective {self.objective} (max), "
            f"{sum(r['status'] == 'completed' for r in rows)} of {t.max_trials} trials completed.",
            "",
        ]
        if rows:
            lines.append("| " + " | ".join(rows[0]) + " |")
            lines.append("|" + "---|" * len(rows[0]))
            for row in rows:
                mark = " (best)" if row is best else ""
                cells = [_cell(v) for v in row.values()]
                cells[0] += mark
                lines.append("| " + " | ".join(cells) + " |")
        if best_recipe is not None:
            lines += ["", f"Best recipe: `python recipes/run.py {best_recipe}`"]
        return "\n".join(lines) + "\n"

    def _best_recipe_source(self, trial, trial_count: int) -> str:
        values = trial.hyperparameters.values
        recipe = tuned_recipe(self.recipe, values, self.variant)
        t = self.recipe.tuning
        recipe = dataclasses.replace(
            recipe,
            name=f"{self.recipe.name}_tuned",
            description=f"{self.recipe.name} with the tuned variant {recipe.tuning.variant}",
        )
        doc = (
            f"Recipe {self.recipe.name} with the λ found by a KerasTuner search.\n\n"
            f"Written by `python recipes/run.py tune {self.recipe.name}` in {self.search_dir}: "
            f"KerasTuner {t.tuner}, objective {self.objective} = {trial.score:.4f} (trial "
            f"{trial.trial_id} of {trial_count}), variant {self.variant} → "
            f"{recipe.tuning.variant}. Run it with\n`python recipes/run.py "
            f"{self.search_dir / 'best_recipe.py'}`.\n"
        )
        return recipe_source(recipe, doc)


def _searched(trial) -> dict:
    """The trial's values of our hyperparameters (not Hyperband's `tuner/…` bookkeeping)."""
    return {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}


def _last_line(message: str | None) -> str:
    """The error of a failed trial's traceback, without KerasTuner's own exception name."""
    lines = (message or "").strip().splitlines() or ["no message"]
    return re.sub(r"^[\w.]*FailedTrialError: ", "", lines[-1])


def _trial_number(trial) -> int:
    return int(trial.trial_id)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# === A recipe as a Python file ===
def recipe_source(recipe: Recipe, doc: str) -> str:
    """Python source of a recipe file defining `RECIPE = recipe` (fields at their defaults are
    left out), which `python recipes/run.py path/to/file.py` runs."""
    classes: set[str] = set()
    body = _dataclass_source(recipe, 0, classes)
    doc = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    imports = f"from tfaux.config import {', '.join(sorted(classes))}"
    if len(imports) > 100:
        imports = "from tfaux.config import (\n" + "".join(f"    {c},\n" for c in sorted(classes))
        imports += ")"
    return f'"""{doc}"""\n\n{imports}\n\nRECIPE = {body}\n'


def _dataclass_source(obj, indent: int, classes: set[str]) -> str:
    classes.add(type(obj).__name__)
    pad = " " * (indent + 4)
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if value == default:
            continue
        if dataclasses.is_dataclass(value):
            text = _dataclass_source(value, indent + 4, classes)
        elif isinstance(value, tuple) and value and all(map(dataclasses.is_dataclass, value)):
            items = [_dataclass_source(v, indent + 8, classes) for v in value]  # a recipe's claims
            text = "(\n" + "".join(f"{pad}    {item},\n" for item in items) + f"{pad})"
        else:
            text = _literal(value)
        parts.append(f"{pad}{f.name}={text},")
    if not parts:
        return f"{type(obj).__name__}()"
    return f"{type(obj).__name__}(\n" + "\n".join(parts) + f"\n{' ' * indent})"


def _literal(value) -> str:
    """A Python literal in the house style (double quotes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a Python string literal
    if isinstance(value, tuple):
        items = [_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)
