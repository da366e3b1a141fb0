"""`python recipes/run.py tune`: a KerasTuner λ search that resumes, refuses a changed space,
and leaves a best recipe the runner accepts."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import RECIPES, ROOT, Interrupt, random_images, tiny_model
from tfaux.attacks import PGD
from tfaux.cli import discover, load_recipe_file, main
from tfaux.config import Recipe
from tfaux.overrides import apply_overrides
from tfaux.training.callbacks import RobustAccuracy
from tfaux.training.resume import POINTER
from tfaux.tune import (
    LambdaHyperModel,
    declare_hyperparameters,
    read_history,
    recipe_source,
    tuned_recipe,
    weighted_variant,
)
from tfaux.variant import Variant

# seed000_ft scaled down: real digits, a quarter-width small CNN, 1 epoch per trial.
QUICK = [
    "--set",
    "data.dataset=digits",
    "--set",
    "data.batch_size=64",
    "--set",
    "data.train_size=none",
    "--set",
    "model.backbone=small_cnn",
    "--set",
    "model.width=0.25",
    "--set",
    "training.epochs=1",
    "--set",
    "tuning.variant=fourier",
    "--no-progress",
]
ROBUST = ["--set", "tuning.objective=val_pgd_accuracy", "--set", "tuning.pgd_steps=3"]


def _tune(*args, runs: Path) -> int:
    return main(["tune", "seed000_ft", *QUICK, *args, "--runs-dir", str(runs)], recipes_dir=RECIPES)


def _search_dir(runs: Path) -> Path:
    return runs / "seed000_ft-tune"


def _trials(runs: Path) -> dict[str, dict]:
    """trial id → KerasTuner's trial.json."""
    files = (_search_dir(runs) / "keras_tuner").glob("trial_*/trial.json")
    return {json.loads(f.read_text())["trial_id"]: json.loads(f.read_text()) for f in files}


def _summaries(runs: Path) -> dict[str, dict]:
    files = (_search_dir(runs) / "keras_tuner").glob("trial_*/summary.json")
    return {f.parent.name.removeprefix("trial_"): json.loads(f.read_text()) for f in files}


def _csv_rows(runs: Path, reference: bool = False) -> list[dict]:
    """The trials' rows of trials.csv; with `reference`, the λ = 0 row (always the first)."""
    with (_search_dir(runs) / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["trial"] == "λ = 0"
    return rows[0] if reference else rows[1:]


@pytest.fixture(scope="module")
def robust_search(tmp_path_factory):
    """Two Bayesian trials scored by PGD accuracy, through the CLI (about 20 s)."""
    runs = tmp_path_factory.mktemp("robust") / "runs"
    assert _tune(*ROBUST, "--set", "tuning.max_trials=2", runs=runs) == 0
    return runs


# === RobustAccuracy ===
def test_robust_accuracy_adds_real_pgd_accuracy_and_its_mean_with_clean():
    x, y = random_images(12, (16, 16, 1), seed=1), np.arange(12) % 4
    model = tiny_model()
    callback = RobustAccuracy(x, y, eps=0.1, steps=2)
    callback.set_model(model)
    callback.on_train_begin()
    logs = {"val_accuracy": 0.5}
    callback.on_epoch_end(0, logs)
    pgd = PGD(model, steps=2)
    x_adv = pgd(x, y, eps=0.1, seed=0)
    expected = np.mean(np.argmax(pgd.model.predict(x_adv).numpy(), -1) == y)
    assert logs["val_pgd_accuracy"] == pytest.approx(expected)
    assert logs["val_clean_pgd_accuracy"] == pytest.approx((0.5 + expected) / 2)
    again = {"val_accuracy": 0.5}
    callback.on_epoch_end(1, again)  # seeded: the same attack every epoch
    assert again["val_pgd_accuracy"] == logs["val_pgd_accuracy"]
    with pytest.raises(ValueError, match="validation_data"):
        callback.on_epoch_end(2, {"loss": 1.0})


# === Search space ===
def test_lambda_is_sampled_on_a_log_scale_within_range():
    recipe = Recipe(name="r", variants=("none", "recon+fourier@fgsm"))
    recipe = apply_overrides(recipe, ["tuning.weight_min=0.0001", "tuning.eps=0.05,0.2"])
    hp = keras_tuner.HyperParameters()
    declare_hyperparameters(hp, recipe, "recon+fourier@fgsm")
    assert [p.name for p in hp.space] == ["lambda_recon", "lambda_fourier", "eps"]
    lam = hp.space[0]
    samples = np.array([lam.random_sample(seed) for seed in range(400)])
    assert samples.min() >= 1e-4 and samples.max() <= 1.0
    # Log-uniform on [1e-4, 1]: half below the geometric midpoint 0.01 (uniform: 1 %).
    assert 0.4 < np.mean(samples < 0.01) < 0.6
    assert lam.prob_to_value(0.5) == pytest.approx(0.01)
    assert hp.space[2].prob_to_value(0.5) == pytest.approx(0.125)  # ε: linear
    tuned = tuned_recipe(recipe, {"lambda_recon": 0.012345, "lambda_fourier": 0.5, "eps": 0.1234})
    assert tuned.variants == ("none", "recon=0.01235+fourier=0.5@fgsm")
    assert tuned.adversarial.eps == 0.1234 and tuned.tuning.variant == tuned.variants[1]
    # Any λ survives the variant grammar ("+" joins tasks: never "2.5e+12").
    for lam in (2.53e12, 5e-5, 1e-10):
        variant = weighted_variant("recon+fourier@pgd", {"recon": lam, "fourier": 1.0})
        assert Variant.parse(variant).weights(0.0) == {"recon": lam, "fourier": 1.0}


@pytest.mark.parametrize("name", sorted(discover(RECIPES)))
def test_every_recipe_round_trips_through_a_recipe_file(name, tmp_path):
    recipe = discover(RECIPES)[name][0]
    path = tmp_path / "recipe.py"
    path.write_text(recipe_source(recipe, f"{name}, written back.\n"))
    assert load_recipe_file(path) == recipe


def test_the_searched_values_are_in_range_and_the_trial_trains_with_them(robust_search):
    trials = _trials(robust_search)
    assert len(trials) == 2
    for trial in trials.values():
        lam = trial["hyperparameters"]["values"]["lambda_fourier"]
        assert 1e-4 <= lam <= 1.0
    summaries = _summaries(robust_search)
    for row in _csv_rows(robust_search):
        # The variant the trial trained is the one its row shows.
        lam = float(row["lambda_fourier"])
        assert summaries[row["trial"]]["variant"] == weighted_variant("fourier", {"fourier": lam})


def test_the_robust_objective_is_measured_in_every_trial(robust_search):
    for trial in _trials(robust_search).values():
        assert trial["status"] == "COMPLETED"
        metrics = {
            k: v["observations"][-1]["value"][0] for k, v in trial["metrics"]["metrics"].items()
        }
        assert trial["score"] == pytest.approx(metrics["val_pgd_accuracy"])
        assert metrics["val_pgd_accuracy"] <= metrics["val_accuracy"] + 0.02  # digits: val ≤ 256
        mean = (metrics["val_accuracy"] + metrics["val_pgd_accuracy"]) / 2
        assert metrics["val_clean_pgd_accuracy"] == pytest.approx(mean)
    # TensorBoard: KerasTuner's hparams callback works with Keras 3, one log per trial.
    tags = set()
    for events in (_search_dir(robust_search) / "tensorboard" / "0").rglob("events.out.*"):
        for record in tf.data.TFRecordDataset(str(events)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags |= {v.tag for v in event.summary.value}
    assert {"_hparams_/session_start_info", "epoch_pgd_accuracy"} <= tags
    # The score at the selected epoch and its interval: columns of the HParams table.
    assert {"selected_val_pgd_accuracy", "selected_ci_low", "selected_ci_high"} <= tags


def test_tables_and_a_best_recipe_the_cli_accepts(robust_search, capsys):
    search = _search_dir(robust_search)
    rows = _csv_rows(robust_search)
    assert [r["trial"] for r in rows] == ["0", "1"]
    best = max(rows, key=lambda r: float(r["val_pgd_accuracy"]))
    table = (search / "trials.md").read_text()
    assert f"| {best['trial']} (best) |" in table
    assert f"python recipes/run.py {search / 'best_recipe.py'}" in table

    recipe = load_recipe_file(search / "best_recipe.py")
    assert recipe.name == "seed000_ft_tuned"
    tuned = weighted_variant("fourier", {"fourier": float(best["lambda_fourier"])})
    assert recipe.variants == ("none", "recon", tuned)
    assert recipe.training.epochs == 1 and recipe.data.dataset == "digits"
    assert f"trial {best['trial']} of 2" in (search / "best_recipe.py").read_text()
    # The runner's command takes the file as its recipe argument.
    assert main([str(search / "best_recipe.py"), "--keys"], recipes_dir=RECIPES) == 0
    assert "tuning.max_trials" in capsys.readouterr().out.split()


# === Errors: one line, exit 2 ===
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "tuning.weight_max=0.5"], "lambda_fourier.max_value 1.0 → 0.5"),
        (["--set", "training.learning_rate=0.05"], "recipe.training.learning_rate 0.4 → 0.05"),
        (["--set", "tuning.objective=val_accuracy"], "objective.name 'val_pgd_accuracy' →"),
    ],
)
def test_a_changed_search_space_or_recipe_is_refused(robust_search, args, message, capsys):
    assert _tune(*ROBUST, *args, runs=robust_search) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err and "--fresh" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "tuning.max_trial=3"], "Did you mean tuning.max_trials?"),
        (["--set", "tuning.tuner=random"], "Unknown tuning.tuner 'random'"),
        (["--set", "tuning.eps=0.05,0.2"], "a loop that trains at adversarial.eps"),
        (["--set", "tuning.replays=2,4"], "a loop that replays batches"),
        (["--set", "tuning.variant=fourrier"], "Did you mean 'fourier'"),
        (
            ["--set", "variants=none@fgsm,fourier", "--set", "tuning.variant=none@fgsm"],
            "Unknown variant with aux tasks to tune (tuning.variant) 'none@fgsm'",
        ),
        (["--set", "tuning.variant=none"], "Available: fourier, recon."),
        (["--set", "tuning.weight_min=0"], "0 < weight_min < weight_max"),
    ],
)
def test_bad_tuning_settings_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    assert _tune(*args, runs=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "seed000_ft-tune").exists()


# === Resuming ===
def test_an_interrupted_search_continues_where_it_stopped(tmp_path, monkeypatch, capsys):
    runs, fit = tmp_path / "runs", LambdaHyperModel.fit
    two = ["--set", "training.epochs=2", "--set", "tuning.max_trials=2"]
    interrupted = []

    def fit_interrupting_trial_1(self, hp, model, *args, trial_dir, callbacks=(), **kwargs):
        if Path(trial_dir).name == "trial_1" and not interrupted:
            interrupted.append(True)
            callbacks = [*callbacks, Interrupt(at=1)]
        return fit(self, hp, model, *args, trial_dir=trial_dir, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(LambdaHyperModel, "fit", fit_interrupting_trial_1)
    assert _tune(*two, runs=runs) == 130
    assert "run the same command again to continue the search" in capsys.readouterr().err
    first = _trials(runs)
    assert first["0"]["status"] == "COMPLETED" and first["1"]["status"] == "RUNNING"
    assert (_search_dir(runs) / "keras_tuner" / "trial_1" / "backup").is_dir()

    assert _tune(*two, runs=runs) == 0
    out = capsys.readouterr().out
    assert "trial 1 (2 of 2) (resuming from its backup)" in out
    second = _trials(runs)
    assert sorted(second) == ["0", "1"]  # the interrupted trial kept its id; none was added
    assert second["0"] == first["0"]  # the finished trial was not run again
    assert second["1"]["hyperparameters"] == first["1"]["hyperparameters"]
    assert second["1"]["status"] == "COMPLETED"
    summaries = _summaries(runs)
    assert summaries["1"]["resumed_at"] == 1 and summaries["0"]["resumed_at"] is None
    history = read_history(_search_dir(runs) / "keras_tuner" / "trial_1" / "history.csv")
    assert sorted(history) == [0, 1]  # the epoch before the interruption counts too

    # Finished: the same command trains nothing more; more trials extend the search.
    assert _tune(*two, runs=runs) == 0
    assert _trials(runs) == second
    assert _tune("--set", "training.epochs=2", "--set", "tuning.max_trials=3", runs=runs) == 0
    assert sorted(_trials(runs)) == ["0", "1", "2"]
    assert len(_csv_rows(runs)) == 3


def test_hyperband_runs_and_continues_trials_from_their_checkpoints(tmp_path):
    runs = tmp_path / "runs"
    args = ["--set", "tuning.tuner=hyperband", "--set", "tuning.hyperband_factor=2"]
    args += ["--set", "training.epochs=2", "--set", "tuning.max_trials=3"]
    assert _tune(*args, runs=runs) == 0
    rows = _csv_rows(runs)
    assert [r["status"] for r in rows] == ["completed"] * 3
    # Two 1-epoch trials, then the better one continues for its second epoch.
    assert rows[2]["continues"] in ("0", "1")
    summaries = _summaries(runs)
    assert summaries["2"]["initial_epoch"] == 1
    source = rows[int(rows[2]["continues"])]
    assert rows[2]["lambda_fourier"] == source["lambda_fourier"]
    assert load_recipe_file(_search_dir(runs) / "best_recipe.py").name == "seed000_ft_tuned"


@pytest.mark.slow
def test_a_search_killed_during_its_second_trial_completes_when_run_again(tmp_path):
    runs = tmp_path / "runs"
    command = [sys.executable, str(RECIPES / "run.py"), "tune", "seed000_ft", *QUICK]
    command += [
        "--set",
        "training.epochs=2",
        "--set",
        "tuning.max_trials=3",
        "--runs-dir",
        str(runs),
    ]
    backup = _search_dir(runs) / "keras_tuner" / "trial_1" / "backup" / POINTER
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while not backup.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)  # trial 1 has finished epoch 0 and trains epoch 1
    output = process.communicate()[0].decode()
    assert process.returncode == -signal.SIGKILL, output[-2000:]
    assert _trials(runs)["1"]["status"] == "RUNNING"

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "python recipes/run.py" in again.stdout and "best_recipe.py" in again.stdout
    trials = _trials(runs)
    assert sorted(trials) == ["0", "1", "2"]
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    summaries = _summaries(runs)
    # Only trial 1 resumed (from its own backup, at epoch 1); trial 2 started from scratch.
    assert {k: s["resumed_at"] for k, s in summaries.items()} == {"0": None, "1": 1, "2": None}
    assert all(s["epochs"] == 2 for s in summaries.values())
    assert not list(_search_dir(runs).rglob("backup"))  # every backup consumed and deleted


# === The λ = 0 reference and the verdicts ===
def test_a_lambda_without_effect_is_no_detectable_difference_from_lambda_0(tmp_path):
    # λ in [1e-9, 1e-8]: the aux loss moves nothing, so every trial is the reference within
    # a few validation images. The backbone's initial weights are the same (seeded, the head
    # built after it).
    runs = tmp_path / "runs"
    args = ["--set", "tuning.weight_min=1e-9", "--set", "tuning.weight_max=1e-8"]
    args += ["--set", "training.epochs=2", "--set", "tuning.epochs=1"]  # trials shorter
    assert _tune(*args, "--set", "tuning.max_trials=2", runs=runs) == 0
    table = (_search_dir(runs) / "trials.md").read_text()
    summary = table.split("\n\n")[1]
    assert summary.startswith("- No λ beat λ = 0 beyond the noise"), table
    # One epoch against the recipe's 2: the table says its scores are early ones.
    assert "Caution: trials too short to converge: 1 epoch(s)" in summary
    assert "no detectable difference at this budget" in summary
    reference = _csv_rows(runs, reference=True)
    assert float(reference["lambda_fourier"]) == 0.0
    low, high = float(reference["ci_low"]), float(reference["ci_high"])
    assert low < float(reference["val_accuracy"]) < high  # Wilson interval on 72 images
    for row in _csv_rows(runs):
        assert float(row["ci_low"]) < float(row["val_accuracy"]) < float(row["ci_high"])
    header = (_search_dir(runs) / "best_recipe.py").read_text().split('"""')[1]
    assert header.startswith("No λ beat λ = 0 beyond the noise")

    # Continued with one more trial, the search keeps its reference: not trained again.
    summary = _search_dir(runs) / "reference" / "summary.json"
    before = summary.read_text(), summary.stat().st_mtime_ns
    assert _tune(*args, "--set", "tuning.max_trials=3", runs=runs) == 0
    assert (summary.read_text(), summary.stat().st_mtime_ns) == before
    assert [r["trial"] for r in _csv_rows(runs)] == ["0", "1", "2"]


def test_lambda_0_clearly_best_is_reported_first(tmp_path):
    # SimCLR's loss at λ in [30, 100] drowns the classifier's (measured: 90 % vs 32–45 %);
    # its λ = 0 reference is "projection=0", the same two views without the contrastive loss.
    runs = tmp_path / "runs"
    args = ["--set", "variants=none,projection", "--set", "tuning.variant=projection"]
    args += ["--set", "tuning.weight_min=30", "--set", "tuning.weight_max=100"]
    args += ["--set", "tuning.max_trials=1", "--set", "data.val_fraction=0.25"]
    args += ["--set", "training.epochs=2"]
    assert _tune(*args, runs=runs) == 0
    table = (_search_dir(runs) / "trials.md").read_text()
    assert table.split("\n\n")[1].startswith("- λ = 0 is better than every λ searched"), table
    reference = _csv_rows(runs, reference=True)
    for row in _csv_rows(runs):
        assert float(row["ci_high"]) < float(reference["ci_low"])  # apart beyond both intervals
