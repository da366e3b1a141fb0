"""`tfaux.experiment`, unit by unit: the budget arithmetic, the checks a recipe passes before
anything trains, the tuned variant, a variant's loop and the per-step learning rates, each
against a count or formula written out here."""

import dataclasses
import math

import numpy as np
import pytest

from tfaux import experiment
from tfaux.config import (
    AdversarialConfig,
    Claim,
    DataConfig,
    EvalConfig,
    MonitorConfig,
    Recipe,
    TrainingConfig,
    TuningConfig,
)


def _recipe(*variants: str, **sections) -> Recipe:
    return Recipe(
        name="unit",
        variants=variants or ("none",),
        data=sections.pop("data", DataConfig("digits", 64, train_size=300)),
        training=sections.pop("training", TrainingConfig(epochs=2)),
        **sections,
    )


@pytest.fixture(scope="module")
def info():
    return experiment.load_splits(_recipe()).info


def test_steps_and_example_passes_count_every_forward_backward_pass(info):
    recipe = _recipe(adversarial=AdversarialConfig(pgd_steps=5))
    steps = experiment.steps_per_epoch(recipe, info)
    assert info.num_train == 300 and steps == math.ceil(300 / 64) == 5
    per_step = 300 / 5  # examples per optimizer step, the last batch short
    expected = {
        "none": 1,  # one forward-backward pass per example
        "fourier": 1,  # the aux head rides on the same pass
        "none@fgsm": 2,  # the attack's gradient, then the weights'
        "none@pgd": 5 + 1,  # k attack steps, then the weights'
        "projection": 2,  # a two-view task sees each image twice
    }
    for variant, passes in expected.items():
        assert experiment.example_passes(recipe, variant, info, steps) == round(
            steps * per_step * passes
        ), variant
    assert experiment.task_views(["fourier"]) == 1 and experiment.task_views(["projection"]) == 2


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (_recipe("fourier@pdg"), "Did you mean 'pgd'"),
        (_recipe("fourier=0"), "Expected λ > 0 for the aux task 'fourier'"),
        (_recipe("fourier", aux_weight=0.0), "set aux_weight > 0"),
        (
            _recipe(
                "none",
                training=TrainingConfig(epochs=2, select="best_robust"),
                monitor=MonitorConfig(robust_examples=0),
            ),
            "monitor.robust_examples > 0",
        ),  # fmt: skip
        (
            _recipe("none", evaluation=EvalConfig(autoattack_version="strong")),
            "evaluation.autoattack_version",
        ),
        (
            _recipe(
                "none",
                "fourier",
                claims=(
                    Claim("s", "t", a="fourier", b="none", metric="disturbance:blur", effect=1.0),
                ),
                evaluation=EvalConfig(disturbances=True),
            ),
            "disturbance",
        ),  # fmt: skip
        (_recipe("none", tuning=TuningConfig(eps=(0.05, 0.1))), "a variant with aux tasks"),
    ],
)
def test_check_recipe_refuses_in_one_line_what_the_schema_cannot_see(recipe, message):
    with pytest.raises(ValueError, match=message) as error:
        experiment.check_recipe(recipe)
    assert "\n" not in str(error.value)


def test_check_recipe_keeps_a_two_view_control_at_zero_weight():
    experiment.check_recipe(_recipe("none", "projection=0"))  # seed 002's control: no error


def test_the_tuned_variant_is_the_first_with_aux_tasks_and_its_loop_must_use_the_searched_value():
    recipe = _recipe("none", "recon@fgsm", "fourier")
    assert experiment.tuning_variant(recipe) == "recon@fgsm"
    named = dataclasses.replace(recipe, tuning=TuningConfig(variant="fourier"))
    assert experiment.tuning_variant(named) == "fourier"
    searched_eps = dataclasses.replace(
        recipe, tuning=TuningConfig(variant="fourier", eps=(0.05, 0.1))
    )
    with pytest.raises(ValueError, match="a loop that trains at adversarial.eps"):
        experiment.tuning_variant(searched_eps)
    learned = _recipe("fourier~uncertainty")
    with pytest.raises(ValueError, match="whose weighting uses λ"):
        experiment.tuning_variant(learned)
    assert experiment.tuning_variant(_recipe("fourier~pcgrad")) == "fourier~pcgrad"  # λ scales


def test_a_variants_loop_carries_its_bracketed_settings_and_nothing_else_changes():
    recipe = _recipe(adversarial=AdversarialConfig(eps=0.1, pgd_steps=7))
    loop = experiment.loop_of(recipe, "none@pgd[eps=0.3;pgd_steps=3]")
    assert loop.name == "pgd"
    assert loop.recipe.adversarial.eps == 0.3 and loop.recipe.adversarial.pgd_steps == 3
    assert loop.passes_per_step() == 3 + 1
    plain = experiment.loop_of(recipe, "none@pgd")
    assert plain.recipe.adversarial == recipe.adversarial and plain.passes_per_step() == 7 + 1


def test_step_learning_rates_follow_the_one_cycle_formula_step_by_step():
    recipe = _recipe(training=TrainingConfig(epochs=2, learning_rate=0.4, schedule="onecycle"))
    steps_per_epoch, total = 10, 20
    rates = experiment.step_learning_rates(recipe, steps_per_epoch, {}, 0, total)
    warmup = round(0.2 * total)  # the default warm-up fraction
    step = np.arange(total)
    expected = np.where(
        step < warmup,
        0.4 * step / warmup,
        0.4 * 0.5 * (1 + np.cos(np.pi * (step - warmup) / (total - warmup))),
    )
    np.testing.assert_allclose(rates, expected, rtol=1e-5, atol=1e-7)


def test_a_constant_rate_is_read_per_epoch_from_the_history_cuts_included():
    recipe = _recipe(training=TrainingConfig(epochs=3, learning_rate=0.1, schedule="plateau"))
    history = {"learning_rate": [0.1, 0.02, 0.004]}  # cut twice on a plateau
    rates = experiment.step_learning_rates(recipe, 4, history, 2, 12)
    np.testing.assert_allclose(
        rates, [0.1, 0.1, 0.02, 0.02, 0.02, 0.02, 0.004, 0.004, 0.004, 0.004]
    )
    with pytest.raises(ValueError, match="0 <= start <= stop"):
        experiment.step_learning_rates(recipe, 4, history, 5, 2)


def test_first_examples_are_the_splits_first_images_and_primary_labels(info):
    splits = experiment.load_splits(_recipe())
    x, y = experiment.first_examples(splits.test, 70)  # crosses a batch boundary (64)
    batches = list(splits.test.take(2))
    np.testing.assert_array_equal(x, np.concatenate([b[0].numpy() for b in batches])[:70])
    labels = np.concatenate([np.asarray(b[1]) for b in batches])[:70]
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (70, *info.image_shape)
