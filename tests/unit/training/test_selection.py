"""Which epoch is evaluated, and equal budgets: declared rules, never side effects."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ForcedGuard, MadeUpLogs, loop_model, loop_recipe, random_images
from tfaux import experiment
from tfaux.config import (
    AdversarialConfig,
    AuxTrainingConfig,
    DataConfig,
    MonitorConfig,
    Recipe,
    TrainingConfig,
    selection_rule,
)
from tfaux.experiment import check_recipe
from tfaux.tasks import create_task
from tfaux.training.callbacks import ModelSelection, StepBudget
from tfaux.training.loop import create_loop, list_loops, loop_class

X, Y = random_images(16, (16, 16, 1), seed=4), np.arange(16) % 4


def _fit_with_selection(rule, **series):
    model = loop_model("standard")
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    weights, selection = [], ModelSelection(rule)
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(model.get_weights())
    )
    model.fit(
        X,
        Y,
        batch_size=8,
        epochs=4,
        verbose=0,
        callbacks=[MadeUpLogs(**series), snapshot, selection],
    )
    return model, weights, selection.summary()


@pytest.mark.parametrize(("rule", "epoch"), [("last", 4), ("best_clean", 2), ("best_robust", 3)])
def test_the_selected_epochs_weights_are_the_ones_kept(rule, epoch):
    model, weights, summary = _fit_with_selection(
        rule, val_accuracy=[0.5, 0.8, 0.7, 0.6], val_pgd_accuracy=[0.1, 0.2, 0.4, 0.3]
    )
    assert summary["epoch"] == epoch and summary["epochs_run"] == 4
    assert summary["metric"] == ModelSelection.METRICS[rule]
    assert summary["value"] == {"last": None, "best_clean": 0.8, "best_robust": 0.4}[rule]
    for kept, selected in zip(model.get_weights(), weights[epoch - 1], strict=True):
        np.testing.assert_array_equal(kept, selected)
    if epoch != 4:  # the last epoch's weights really differ: restoring was needed
        assert any(
            not np.array_equal(a, b) for a, b in zip(weights[3], weights[epoch - 1], strict=True)
        )


def test_each_loop_declares_the_epoch_its_method_evaluates():
    recipe = Recipe("r")
    expected = {
        "standard": "best_clean",
        "pgd": "best_robust",
        "fgsm_rs": "best_robust",
        "free_scheduled": "best_robust",
        "trades": "best_robust",
        "mart": "best_robust",
        "auxiliary": "last",
        "auxiliary_pgd": "last",
    }
    assert {name: selection_rule(recipe, loop_class(name)) for name in expected} == expected
    override = Recipe("r", training=TrainingConfig(select="last"))
    assert {selection_rule(override, loop_class(name)) for name in list_loops()} == {"last"}
    with pytest.raises(ValueError, match="monitor.robust_examples > 0 to select the best robust"):
        check_recipe(Recipe("r", variants=("none@pgd",), monitor=MonitorConfig(robust_examples=0)))


def test_auxiliary_training_is_evaluated_after_merging_even_when_stage_two_lowers_accuracy(
    tmp_path,
):
    # Stage 2 (γ = 1, the last epoch here) may lower validation accuracy; Algorithm 1 still
    # returns the merged model, and early stopping must not restore a stage-1 epoch.
    recipe = Recipe(
        "at",
        variants=("none@auxiliary",),
        data=DataConfig("digits", batch_size=64, train_size=256),
        training=TrainingConfig(epochs=3, stop_patience=1),
        auxiliary=AuxTrainingConfig(corruptions=("rotation",), merge_epoch=2, penalty=50.0),
        monitor=MonitorConfig(robust_examples=0, images_every=0),
    )
    splits = experiment.load_splits(recipe)
    model, strategy = experiment.build_model(recipe, "none@auxiliary", splits.info)
    loop = experiment.loop_of(recipe, "none@auxiliary")
    callbacks = experiment.training_callbacks(
        recipe, loop, 3, splits, history_file=tmp_path / "h.csv"
    )
    assert not any(isinstance(c, keras.callbacks.EarlyStopping) for c in callbacks)
    history = experiment.fit(model, splits, epochs=3, callbacks=callbacks, strategy=strategy)
    assert history.history["merge_gamma"] == [0.0, 0.0, 1.0]
    selection = experiment.selection_of(callbacks)
    assert selection == {
        "rule": "last",
        "metric": None,
        "epoch": 3,
        "value": None,
        "epochs_run": 3,
        "rolled_back_from": None,
    }
    assert model.gamma == 1.0  # the evaluated model is the stage-2 one


@pytest.mark.parametrize("name", [n for n in list_loops() if loop_class(n).replays])
def test_every_free_variant_spends_natural_trainings_optimizer_steps(name, tmp_path):
    # 4 natural epochs of 2 batches = 8 optimizer steps; m = 3 with a ramp over 2 epochs would
    # take 2 + 3 = 5 per batch pair in epochs 1-2 (free_epochs rounds up to 2 epochs = 10).
    adversarial = AdversarialConfig(eps=0.1, replays=3, ramp_epochs=2, gamma=0.34, guard="off")
    recipe = loop_recipe(adversarial=adversarial)
    spec = create_loop(name, recipe)
    natural_steps = 4 * 2
    model = loop_model(name, adversarial=adversarial)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    epochs = spec.epochs(4)
    callbacks = [*spec.callbacks(epochs), StepBudget(natural_steps)]
    model.fit(X, Y, batch_size=8, epochs=epochs, verbose=0, callbacks=callbacks)
    steps = int(model.optimizer.iterations.numpy())
    assert natural_steps <= steps < natural_steps + adversarial.replays  # a batch's replays at most


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"adversarial": AdversarialConfig(gamma=0.1, replays=4)},
            "gamma × adversarial.replays >= 1",
        ),
        ({"adversarial": AdversarialConfig(eps=0.0)}, "adversarial.eps > 0 for the loop '@pgd'"),
    ],
)
def test_settings_that_silently_disable_a_method_are_refused(settings, message):
    variant = "none@free_gamma" if "gamma" in message else "none@pgd"
    with pytest.raises(ValueError, match=message):
        check_recipe(Recipe("r", variants=(variant,), **settings))


def test_settings_that_disable_trades_merging_or_random_signs_are_refused():
    from tfaux.config import RandomSignConfig

    with pytest.raises(ValueError, match="adversarial.beta > 0 for '@trades'"):
        check_recipe(Recipe("r", variants=("none@trades",), adversarial=AdversarialConfig(beta=0)))
    with pytest.raises(ValueError, match="merge_epoch < training.epochs"):
        check_recipe(
            Recipe("r", variants=("none@auxiliary",), auxiliary=AuxTrainingConfig(merge_epoch=5))
        )
    check_recipe(
        Recipe(
            "r", variants=("none@auxiliary_no_merge",), auxiliary=AuxTrainingConfig(merge_epoch=5)
        )
    )
    with pytest.raises(ValueError, match="random_sign.eps > 0"):
        check_recipe(
            Recipe("r", variants=("none@random_sign",), random_sign=RandomSignConfig(eps=0.0))
        )


def test_the_cli_refuses_a_disabling_setting_in_one_line(capsys, tmp_path):
    from tests.helpers import RECIPES
    from tfaux.cli import main

    # Refused by the checks before any data is loaded or any directory is made.
    arguments = ["seed004_free", "--set", "adversarial.gamma=0.1", "--runs-dir", str(tmp_path)]
    assert main(arguments, recipes_dir=RECIPES) == 2
    assert not any(tmp_path.iterdir())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gamma × adversarial.replays >= 1" in err


@pytest.mark.parametrize(
    ("variant", "settings", "message"),
    [
        ("none@free_scheduled", {"ramp_epochs": 1}, "1 is plain '@free'"),
        ("none@free_scheduled", {"ramp_epochs": 9}, r"set training.epochs to at least 21 or lower"),
        ("none@free_ema", {"ema": 0.0}, "adversarial.ema > 0"),
        ("none@free_gamma", {"gamma": 1.0}, "adversarial.gamma < 1"),
        ("none@trades", {"clean_fraction": 0.5}, "clean_fraction = 0 for '@trades'"),
    ],
)
def test_variants_identical_to_another_method_or_ignoring_a_setting_are_refused(
    variant, settings, message
):
    with pytest.raises(ValueError, match=message):
        check_recipe(Recipe("r", variants=(variant,), adversarial=AdversarialConfig(**settings)))


def test_a_robust_selection_needs_a_robust_validation_budget():
    from tfaux.config import EvalConfig

    with pytest.raises(ValueError, match="evaluation.eps > 0 to select the best robust epoch"):
        check_recipe(Recipe("r", variants=("none@pgd",), evaluation=EvalConfig(eps=0.0)))


CLEAN = [0.5, 0.6, 0.9, 0.7]  # val_accuracy: epoch 3 is the best (1-based)
EARLY, LATE = [0.3, 0.2, 0.25, 0.1], [0.1, 0.2, 0.25, 0.4]  # val_pgd_accuracy: 1 or 4 best
COLLAPSE = [0.5, 0.6, 0.55, 0.1]  # the guard's best is epoch 2; epoch 4 collapses
STEADY = [0.5, 0.6, 0.55, 0.5]


@pytest.mark.parametrize(
    ("rule", "pgd", "guard", "epoch", "value", "rolled_back_from"),
    [
        ("last", EARLY, STEADY, 4, None, None),
        ("best_clean", EARLY, STEADY, 3, 0.9, None),
        ("best_robust", EARLY, STEADY, 1, 0.3, None),
        ("last", EARLY, COLLAPSE, 2, None, 4),  # the collapsed last epoch is discarded
        ("best_clean", EARLY, COLLAPSE, 2, 0.6, 4),  # epoch 3 was selected, then discarded
        ("best_robust", EARLY, COLLAPSE, 1, 0.3, 4),  # selected before the guard's: kept
        ("best_robust", LATE, COLLAPSE, 2, 0.2, 4),  # the collapsed epoch was selected
    ],
)
def test_the_evaluated_weights_are_the_recorded_epochs_after_a_guard_rollback(
    rule, pgd, guard, epoch, value, rolled_back_from
):
    model = loop_model("standard")
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    weights, selection = [], ModelSelection(rule)
    snapshot = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: weights.append(model.get_weights())
    )
    made_up = MadeUpLogs(val_accuracy=CLEAN, val_pgd_accuracy=pgd)
    callbacks = [made_up, snapshot, selection, ForcedGuard(guard, selection)]
    model.fit(X, Y, batch_size=8, epochs=4, verbose=0, callbacks=callbacks)
    summary = selection.summary()
    assert (summary["epoch"], summary["value"]) == (epoch, value)
    assert summary["rolled_back_from"] == rolled_back_from and summary["epochs_run"] == 4
    for held, recorded in zip(model.get_weights(), weights[epoch - 1], strict=True):
        np.testing.assert_array_equal(held, recorded)
    if epoch != 4:  # the last epoch's weights really differ: holding the recorded one mattered
        assert any(
            not np.array_equal(a, b) for a, b in zip(weights[3], weights[epoch - 1], strict=True)
        )


def test_the_guard_of_a_fit_is_given_its_model_selection():
    recipe = loop_recipe(adversarial=AdversarialConfig(eps=0.1, guard="rollback"))
    selection = ModelSelection("best_robust")
    (guard,) = create_loop("fgsm", recipe).guards(lambda: (X[:2], Y[:2]), selection)
    assert guard.selection is selection and guard.action == "rollback"
    # Put after the guard, the selection would keep a rolled-back epoch: refused, not hidden.
    late = ModelSelection("last")
    late.on_train_begin()
    with pytest.raises(ValueError, match="ModelSelection before the guard"):
        late.roll_back(0, [], collapsed_at=2)


@pytest.mark.parametrize(
    ("tasks", "delta_loss", "passes"),
    [((), "classifier", 1), (("fourier",), "classifier", 2), (("fourier",), "total", 1)],
)
def test_free_at_counts_the_backward_pass_its_delta_takes_with_aux_tasks(
    tasks, delta_loss, passes, monkeypatch
):
    # The count is pinned to the work: one backward pass (tape.gradient) per counted pass.
    adversarial = AdversarialConfig(eps=0.1, replays=2, guard="off", free_delta_loss=delta_loss)
    assert (
        create_loop("free", loop_recipe(adversarial=adversarial)).passes_per_step(tasks) == passes
    )
    model = loop_model("free", [create_task(t) for t in tasks], adversarial=adversarial)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)  # replays in Python
    backward, gradient = [], tf.GradientTape.gradient
    monkeypatch.setattr(
        tf.GradientTape,
        "gradient",
        lambda tape, *a, **k: backward.append(1) or gradient(tape, *a, **k),
    )
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    steps = int(model.optimizer.iterations.numpy())
    assert steps == 2 * 2 and len(backward) == passes * steps


def test_example_passes_count_attack_steps_free_ats_delta_and_two_views():
    recipe = loop_recipe(adversarial=AdversarialConfig(eps=0.1, pgd_steps=3))
    info = types.SimpleNamespace(num_train=64)  # 8 batches of 8
    expected = {
        "none@free": 1,
        "fourier@free": 2,  # δ's own backward pass
        "none@pgd": 4,
        "fourier@pgd": 4,  # the attack is on the classifier alone: aux heads add no pass
        "none": 1,
        "projection": 2,  # two views of every example
        "projection@free": 2 * 2,
    }
    counted = {v: experiment.example_passes(recipe, v, info, steps=10) for v in expected}
    assert counted == {variant: 10 * 8 * passes for variant, passes in expected.items()}
    total = loop_recipe(adversarial=AdversarialConfig(eps=0.1, free_delta_loss="total"))
    assert experiment.example_passes(total, "fourier@free", info, steps=10) == 10 * 8


def test_budgets_are_compared_with_the_baseline_within_two_percent_boundary_included():
    from tfaux.runner import BUDGET_TOLERANCE, compare_budgets

    passes = {
        "none@pgd": 10_000,  # the baseline
        "none": 10_200,  # exactly +2 %: within (1.02 - 1 > 0.02 in floating point)
        "recon": 9_800,  # exactly -2 %
        "fourier": 10_201,
        "denoise": 9_799,
        "projection": 15_000,
    }
    variants = {
        v: {"budget": {"optimizer_steps": 50, "example_passes": n}} for v, n in passes.items()
    }
    recipe = Recipe("r", variants=tuple(passes), baseline="none@pgd", budget="example_passes")
    rule = compare_budgets(recipe, variants)
    assert BUDGET_TOLERANCE == 0.02
    assert rule == {"quantity": "example_passes", "tolerance": 0.02}
    relative = {v: r["budget"]["relative"] for v, r in variants.items()}
    assert relative == {
        "none@pgd": 1.0,
        "none": 1.02,
        "recon": 0.98,
        "fourier": 1.0201,
        "denoise": 0.9799,
        "projection": 1.5,
    }
    within = {v for v, r in variants.items() if r["budget"]["within"]}
    assert within == {"none@pgd", "none", "recon"}

    counts = {"none@pgd": 50, "none": 51, "recon": 52}  # +2 % and +4 % of the baseline's steps
    steps = {v: {"budget": {"optimizer_steps": n, "example_passes": 1}} for v, n in counts.items()}
    recipe = Recipe("r", variants=tuple(counts), baseline="none@pgd")
    assert compare_budgets(recipe, steps)["quantity"] == "optimizer_steps"  # the default rule
    assert [r["budget"]["within"] for r in steps.values()] == [True, True, False]

    untouched = {v: {"budget": {"optimizer_steps": n}} for v, n in (("none", 50), ("recon", 99))}
    rule = compare_budgets(Recipe("r", variants=("none", "recon"), budget="none"), untouched)
    assert rule == {"quantity": None, "tolerance": BUDGET_TOLERANCE}
    assert untouched == {
        "none": {"budget": {"optimizer_steps": 50}},
        "recon": {"budget": {"optimizer_steps": 99}},
    }


@pytest.mark.parametrize("variant", ["none", "none@pgd"])
def test_a_robust_loop_selects_by_every_epochs_validation_pgd_and_a_natural_one_runs_none(
    variant, tmp_path
):
    # Validation PGD is only run where it is read (`experiment.val_pgd_every`): a natural loop
    # selects by clean accuracy without it; PGD-AT measures every epoch and selects the best.
    recipe = Recipe(
        "r",
        variants=(variant,),
        data=DataConfig("digits", batch_size=64, train_size=256),
        training=TrainingConfig(epochs=3),
        adversarial=AdversarialConfig(pgd_steps=2),
        monitor=MonitorConfig(robust_examples=64, images_every=0),
    )
    splits = experiment.load_splits(recipe)
    model, strategy = experiment.build_model(recipe, variant, splits.info)
    loop = experiment.loop_of(recipe, variant)
    callbacks = experiment.training_callbacks(
        recipe, loop, 3, splits, history_file=tmp_path / "h.csv"
    )
    history = experiment.fit(model, splits, epochs=3, callbacks=callbacks, strategy=strategy)
    selection, seconds = experiment.selection_of(callbacks), experiment.monitor_seconds(callbacks)
    if variant == "none":
        assert "val_pgd_accuracy" not in history.history and seconds == {}
        assert selection["metric"] == "val_accuracy"
        return
    pgd = history.history["val_pgd_accuracy"]
    assert len(pgd) == 3 and all(0.0 <= value <= 1.0 for value in pgd)
    assert (selection["metric"], selection["value"]) == ("val_pgd_accuracy", max(pgd))
    assert selection["epoch"] == pgd.index(max(pgd)) + 1
    assert list(seconds) == ["val_pgd"] and seconds["val_pgd"] > 0
