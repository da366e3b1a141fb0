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
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras_tuner.errors import FailedTrialError
from tensorboard.plugins.hparams import api as hparams_api

from tfaux.config import Recipe, with_testable_claims
from tfaux.distribute import create_strategy
from tfaux.experiment import (
    build_model,
    check_recipe,
    first_examples,
    fit,
    load_splits,
    log_to,
    loop_of,
    steps_per_epoch,
    training_callbacks,
    tuning_variant,
)
from tfaux.models.build import primary_classifier
from tfaux.statistics import (
    BETTER,
    WORSE,
    accuracy_ci,
    judge,
    paired_bootstrap,
    paired_correctness,
    table_verdict,
)
from tfaux.tasks.base import task_class
from tfaux.training.callbacks import ModelSelection, RobustAccuracy
from tfaux.training.resume import RunBackup, TrainingFailedError
from tfaux.variant import Variant

PROJECT = "keras_tuner"
SEARCH_FILE = "search.json"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"
BACKUP_DIR = "backup"
CORRECT_FILE = "correct.npz"
REFERENCE = "reference"  # the λ = 0 trial's directory and name
CONVERGED_GAIN = 0.01  # a last epoch that adds more validation accuracy has not converged
COMPLETED = "COMPLETED"  # keras_tuner TrialStatus
log = logging.getLogger("tfaux")


@dataclass(frozen=True)
class TuneResult:
    """A search's outcome: its directory, one row per trial, the best row and recipe file, the
    λ = 0 reference's row and the verdicts that compare them."""

    search_dir: Path
    trials: list[dict]
    best: dict | None
    best_recipe: Path | None
    table: str
    reference: dict | None = None  # the λ = 0 trial's row
    summary: tuple[str, ...] = ()  # the verdicts: best vs λ = 0 first, then vs the runner-up


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
    hypermodel = LambdaHyperModel(recipe, variant, info, progress=progress)
    tuner = _tuner(recipe, hypermodel, report)
    done = sum(t.status == COMPLETED for t in tuner.oracle.trials.values())
    if tuner.oracle.trials:
        report.say(f"continuing the search in {search_dir}: {done} trial(s) done")
    short = short_trials_warning(recipe, info)
    if short:
        warnings.warn(short, stacklevel=2)
        report.cautions.append(short)
    # The λ = 0 reference first: every trial is judged against it.
    report.say(f"reference (λ = 0): {reference_variant(variant)}")
    board = search_dir / "tensorboard" / REFERENCE
    hparams = {name: 0.0 for name in search_description(recipe)["hyperparameters"]}
    report.reference = hypermodel.reference(
        search_dir,
        callbacks=[
            keras.callbacks.TensorBoard(str(board)),
            hparams_api.KerasCallback(str(board), hparams, trial_id=REFERENCE),
        ],
    )
    report.say(
        f"reference done: {report.objective}={report.reference['metrics'][report.objective]:.4f}"
    )
    gain = report.reference.get("last_epoch_gain")
    if gain is not None and gain > CONVERGED_GAIN:
        caution = (
            f"trials have not converged: the λ = 0 reference still gained {100 * gain:.1f} "
            f"points of validation accuracy in its last epoch; raise tuning.epochs"
        )
        warnings.warn(caution, stacklevel=2)
        report.cautions.append(caution)
    report.log_interval(board, report.write(tuner.oracle).reference)
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


def reference_variant(variant: str) -> str:
    """The λ = 0 counterpart of `variant`: the primary alone with the same loop, settings and
    augmentation ("fourier@fgsm[eps=0.2]" → "none@fgsm[eps=0.2]"). A two-view task stays at λ = 0
    ("projection=0"): its classifier trains on two views, the control its paper uses. A
    weighting goes: with every λ at 0 there is nothing to weight."""
    parsed = Variant.parse(variant)
    kept = [f"{task}=0" for task in parsed.tasks if task_class(task).views > 1]
    cut = min((i for i in (variant.find(c) for c in "@:~") if i >= 0), default=len(variant))
    rest = variant[cut:].split("~")[0]
    return ("+".join(kept) or "none") + rest


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
    """`recipe` with `tuning.epochs` epochs and its schedule scaled to them: the warm-up keeps
    its share of training (one-cycle and cosine anneal over the trial's own epochs, since they
    follow `training.epochs`), so a short trial still warms up and anneals."""
    t = recipe.training
    epochs = recipe.tuning.epochs or t.epochs
    warmup = min(round(t.warmup_epochs * epochs / t.epochs), epochs - 1)
    training = dataclasses.replace(t, epochs=epochs, warmup_epochs=warmup)
    return dataclasses.replace(recipe, training=training)


def short_trials_warning(recipe: Recipe, info) -> str | None:
    """One line when a trial trains fewer optimizer steps than the recipe's own run: its score
    then ranks λ by how fast a model starts, not where it ends, and the spread between trials is
    mostly that. None when the trials get the recipe's budget."""
    trial = _trial_recipe(recipe)
    steps = steps_per_epoch(recipe, info)
    if trial.training.epochs >= recipe.training.epochs:
        return None
    return (
        f"trials too short to converge: {trial.training.epochs} epoch(s), "
        f"{trial.training.epochs * steps} optimizer steps, against the recipe's "
        f"{recipe.training.epochs} ({recipe.training.epochs * steps}); their scores rank λ "
        f"early in training. Set --set tuning.epochs={recipe.training.epochs} (or unset it)"
    )


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
        label = f"trial {Path(trial_dir).name.removeprefix('trial_')}"
        return self.train(
            recipe, variant, model, Path(trial_dir), label, callbacks, epochs, initial_epoch
        )

    def reference(self, search_dir: Path, callbacks=()) -> dict:
        """Trains (or resumes, or reads back) the λ = 0 reference: `reference_variant` with the
        trials' recipe, epochs and seed, in `<search>/reference/`. Returns its summary."""
        directory = search_dir / REFERENCE
        summary_file = directory / SUMMARY_FILE
        if summary_file.exists():
            return json.loads(summary_file.read_text())
        recipe = _trial_recipe(self.recipe)
        variant = reference_variant(self.variant)
        model, strategy = build_model(recipe, variant, self.info)
        self.train(recipe, variant, model, directory, REFERENCE, callbacks, None, 0)
        return json.loads(summary_file.read_text())

    def train(
        self,
        recipe: Recipe,
        variant: str,
        model: keras.Model,
        trial_dir: Path,
        label: str,
        callbacks=(),
        epochs: int | None = None,
        initial_epoch: int = 0,
    ) -> dict:
        """One trial's training; returns the metrics of the epoch its loop selects."""
        trial_dir.mkdir(parents=True, exist_ok=True)
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
            progress=label if self.progress else None,
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
        selection = next(c for c in ours if isinstance(c, ModelSelection))
        pgd = next((c for c in ours if isinstance(c, RobustAccuracy)), None) if robust else None
        result = self._result(trial_dir, variant, history, initial_epoch, start, selection)
        self._save_correct(trial_dir, model, splits, pgd)
        return result

    def _result(self, trial_dir: Path, variant: str, history, initial_epoch, start, selection):
        epochs = read_history(trial_dir / HISTORY_FILE)
        if not epochs:
            raise FailedTrialError("no epoch finished")
        last = max(epochs)
        if not math.isfinite(epochs[last].get("loss", 0.0)):
            raise FailedTrialError(
                f"training diverged: loss {epochs[last]['loss']} at epoch {last}"
            )
        # The epoch the loop's rule selects (best clean, best robust or last), as the runner
        # evaluates it; its weights are the model's now (`ModelSelection` restored them).
        selected = selection.best_epoch if selection.best_epoch in epochs else last
        first_run = history.epoch[0] if history.epoch else initial_epoch
        metrics = {k: v for k, v in epochs[selected].items() if k != "epoch"}
        summary = {
            "variant": variant,
            "initial_epoch": initial_epoch,
            # The epoch this trial's last `fit` started at, when a backup brought it forward.
            "resumed_at": first_run if first_run > initial_epoch else None,
            "epochs": len(epochs),
            "selection": selection.rule,
            "selected_epoch": selected,
            "last_fit_seconds": round(time.perf_counter() - start, 1),
            "metrics": metrics,
            # How far validation accuracy still moved in the last epoch: a trial that stops
            # while it still climbs has not converged.
            "last_epoch_gain": (
                epochs[last].get("val_accuracy", math.nan)
                - epochs[last - 1].get("val_accuracy", math.nan)
                if last - 1 in epochs
                else None
            ),
        }
        (trial_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        return metrics

    def _save_correct(self, trial_dir: Path, model, splits, pgd) -> None:
        """Per validation image, whether the selected epoch's model gets it right (and, for a
        robust objective, its PGD example on the robust subset): the paired tests between
        trials and the λ = 0 reference read them."""
        x, y = first_examples(splits.val, splits.info.num_val)
        logits = primary_classifier(model).predict(x, batch_size=512, verbose=0)
        correct = {"val_accuracy": np.argmax(logits, -1) == y}
        if pgd is not None:
            correct["val_pgd_accuracy"] = pgd.correct()
        np.savez(trial_dir / CORRECT_FILE, **correct)


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
        self.reference: dict | None = None  # the λ = 0 trial's summary, once it has trained
        self.cautions: list[str] = []  # why the scores may not mean what they seem
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
            board = self.search_dir / "tensorboard" / trial.trial_id / "execution0"
            self.log_interval(board, row)
            scores = f"{self.objective}={row[self.objective]:.4f}"
            if self.objective != "val_accuracy":
                scores += f", val_accuracy={row['val_accuracy']:.4f}"
            outcome = f"{scores} ({row['epochs']} epoch{'s' * (row['epochs'] != 1)})"
        else:
            outcome = f"{trial.status.lower()}: {_last_line(trial.message)}"
        best = f"; best so far trial {result.best['trial']}" if result.best else ""
        self.say(f"trial {trial.trial_id} done in {seconds:.0f} s: {outcome}{best}")

    def log_interval(self, board: Path, row: dict) -> None:
        """The trial's score at its selected epoch and its interval, as scalars beside its
        hparams: columns of TensorBoard's HParams table."""
        with tf.summary.create_file_writer(str(board)).as_default():
            for name in (self.objective, "ci_low", "ci_high"):
                if row.get(name) is not None:
                    tf.summary.scalar(f"selected_{name}", row[name], step=0)

    def write(self, oracle) -> TuneResult:
        trials = sorted(oracle.trials.values(), key=_trial_number)
        rows = [self._row(trial) for trial in trials]
        reference = self._reference_row(trials) if self.reference is not None else None
        ranked = [t for t in oracle.get_best_trials(len(trials)) if t.status == COMPLETED]
        best = next((r for r in rows if ranked and r["trial"] == ranked[0].trial_id), None)
        summary = self._verdicts(ranked[:2]) + [f"Caution: {c}." for c in self.cautions]
        best_recipe = None
        if best is not None:
            best_recipe = self.search_dir / "best_recipe.py"
            best_recipe.write_text(self._best_recipe_source(ranked[0], len(trials), summary))
        shown = [reference, *rows] if reference else rows
        table = self._table(shown, best, best_recipe, summary)
        (self.search_dir / "trials.md").write_text(table)
        with (self.search_dir / "trials.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(shown[0]) if shown else ["trial"])
            writer.writeheader()
            writer.writerows(shown)
        return TuneResult(
            self.search_dir, rows, best, best_recipe, table, reference, tuple(summary)
        )

    def _row(self, trial) -> dict:
        row = {"trial": trial.trial_id, "status": trial.status.lower()}
        row.update(
            {k: v if isinstance(v, int) else _rounded(v) for k, v in _searched(trial).items()}
        )
        for name in dict.fromkeys([self.objective, "val_accuracy"]):
            exists = trial.status == COMPLETED and trial.metrics.exists(name)
            row[name] = float(trial.metrics.get_last_value(name)) if exists else None
        directory = self._trial_dir(trial.trial_id)
        low, high = self._interval(directory) if trial.status == COMPLETED else (None, None)
        row["ci_low"], row["ci_high"] = low, high
        summary_file = directory / SUMMARY_FILE
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        row["epochs"] = summary.get("epochs")
        row["selected"] = summary.get("selected_epoch")
        row["resumed_at"] = summary.get("resumed_at")
        if self.recipe.tuning.tuner == "hyperband":
            row["continues"] = trial.hyperparameters.values.get("tuner/trial_id")
        return row

    def _reference_row(self, trials) -> dict:
        """The λ = 0 trial's row, with the trials' columns (every λ 0)."""
        ref = self.reference
        searched = list(_searched(trials[0])) if trials else []
        values = {k: 0.0 if k.startswith("lambda_") else None for k in searched}
        row = {"trial": "λ = 0", "status": "completed", **values}
        for name in dict.fromkeys([self.objective, "val_accuracy"]):
            row[name] = ref["metrics"].get(name)
        row["ci_low"], row["ci_high"] = self._interval(self.search_dir / REFERENCE)
        row["epochs"], row["selected"] = ref.get("epochs"), ref.get("selected_epoch")
        row["resumed_at"] = ref.get("resumed_at")
        if self.recipe.tuning.tuner == "hyperband":
            row["continues"] = None
        return row

    def _trial_dir(self, trial_id: str) -> Path:
        return self.search_dir / PROJECT / f"trial_{trial_id}"

    def _interval(self, directory: Path) -> tuple[float | None, float | None]:
        """The 95 % interval of a trial's score from its per-example results: Wilson's for an
        accuracy, the normal one for the mean of clean and PGD accuracy."""
        correct = _correct(directory)
        if correct is None:
            return None, None
        if self.objective != "val_clean_pgd_accuracy":
            estimate = accuracy_ci(correct[self.objective])
            return _rounded(estimate.low), _rounded(estimate.high)
        parts = [correct["val_accuracy"], correct["val_pgd_accuracy"]]
        mean = sum(p.mean() for p in parts) / 2
        spread = math.sqrt(sum(p.mean() * (1 - p.mean()) / len(p) for p in parts)) / 2
        return _rounded(max(0.0, mean - 1.96 * spread)), _rounded(min(1.0, mean + 1.96 * spread))

    def _verdicts(self, ranked) -> list[str]:
        """The search's summary: the best trial against λ = 0 (first, always) and against the
        runner-up, each a paired test on the same validation images, Holm-corrected over the
        two, with its word, interval and the smallest difference this validation set detects."""
        if self.reference is None or not ranked:
            return []
        reference = _correct(self.search_dir / REFERENCE)
        best = _correct(self._trial_dir(ranked[0].trial_id))
        if reference is None or best is None:
            return []
        named = f"trial {ranked[0].trial_id} ({_values_text(ranked[0])})"
        evidence = {"reference": _evidence(self.objective, best, reference)}
        runner_up = _correct(self._trial_dir(ranked[1].trial_id)) if len(ranked) > 1 else None
        if runner_up is not None:
            evidence["runner_up"] = _evidence(self.objective, best, runner_up)
        judged = judge(evidence)
        lines = []
        j = judged["reference"]
        word = table_verdict(j)
        if word == BETTER:
            lines.append(f"The best λ beats λ = 0 beyond the noise: {named} − λ = 0: {_diff(j)}.")
        elif word == WORSE:
            lines.append(
                f"λ = 0 is better than every λ searched: {named}, the best, − λ = 0: {_diff(j)}."
            )
        else:
            lines.append(
                f"No λ beat λ = 0 beyond the noise: {named}, the best, − λ = 0: {_diff(j)}; {word}."
            )
        if "runner_up" in judged:
            j = judged["runner_up"]
            other = f"trial {ranked[1].trial_id} ({_values_text(ranked[1])})"
            lines.append(f"Best − runner-up {other}: {_diff(j)}; {table_verdict(j)}.")
        return lines

    def _table(
        self, rows: list[dict], best: dict | None, best_recipe: Path | None, summary: list[str]
    ) -> str:
        t = self.recipe.tuning
        completed = sum(r["status"] == "completed" and r["trial"] != "λ = 0" for r in rows)
        lines = [
            f"# λ search: {self.recipe.name}, variant {self.variant}",
            "",
            *(f"- {line}" for line in summary),
            *([""] if summary else []),
            f"KerasTuner {t.tuner}, objective {self.objective} (max) at the epoch the loop "
            f"selects, with its 95 % interval (ci_low, ci_high) on the validation images; "
            f"{completed} of {t.max_trials} trials completed, beside the λ = 0 reference "
            f"({reference_variant(self.variant)}).",
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

    def _best_recipe_source(self, trial, trial_count: int, summary: list[str]) -> str:
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
        if summary:
            doc = "\n".join(summary) + "\n\n" + doc
        return recipe_source(recipe, doc)


def _correct(directory: Path) -> dict[str, np.ndarray] | None:
    """A trial's per-example results at its selected epoch (`CORRECT_FILE`), or None."""
    path = directory / CORRECT_FILE
    if not path.exists():
        return None
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}


def _evidence(objective: str, a: dict, b: dict):
    """a − b on the objective, paired on the same validation images: McNemar for an accuracy,
    a paired bootstrap resampling the clean and the PGD images for their mean."""
    if objective != "val_clean_pgd_accuracy":
        return paired_correctness([(a[objective], b[objective])])
    parts = [(a[k].astype(float), b[k].astype(float)) for k in ("val_accuracy", "val_pgd_accuracy")]
    evidence = paired_bootstrap(
        [lambda w, x=x, y=y: w @ (x - y) for x, y in parts], [len(x) for x, _ in parts]
    )
    return dataclasses.replace(
        evidence,
        test=f"paired bootstrap over {len(parts[0][0])} clean and {len(parts[1][0])} PGD images",
    )


def _diff(j) -> str:
    """a − b in points with its Holm-step interval, adjusted p and detectable difference."""
    return (
        f"{100 * j.difference:+.2f} points [{100 * j.low:+.2f}, {100 * j.high:+.2f}] "
        f"(p adj. {j.adjusted_p:.2g}, detectable ≥ {100 * j.mde:.2f}, {j.test})"
    )


def _values_text(trial) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in _searched(trial).items())


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
