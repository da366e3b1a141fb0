"""Issue 16, seeds 002 and 003: the NT-Xent-free control, the paper's PGD step size, and the
seed-003 recipe's dropout, mixed FGSM batches and baseline."""

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import RECIPES, random_images, tiny_model, with_loop
from tfaux.attacks import AttackedModel
from tfaux.config import EvalConfig, comparison_baseline
from tfaux.evaluate.robustness import attack_jobs
from tfaux.models.aux_model import repeat_batch
from tfaux.tasks import ProjectionTask


def _recipe(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RECIPE


# === Seed 002: λ_c = 0 is "two views, no NT-Xent" ===
def test_zero_weight_projection_gives_the_two_view_classifier_gradient():
    model = with_loop(tiny_model([ProjectionTask(0.0)]), "standard")
    x, y = tf.constant(random_images(6, (16, 16, 1), seed=1)), tf.constant([0, 1, 2, 3, 0, 1])
    views, labels, _ = model.augment(x, y, seed=tf.constant([3, 4]))
    assert views.shape[0] == 12
    np.testing.assert_array_equal(labels, repeat_batch(y, 2))
    # The aux model's total loss with λ_c = 0 ...
    with tf.GradientTape() as tape:
        _, terms = model.loss_terms(views, labels, model(views, training=True))
    gradients = tape.gradient(terms["loss"], model.trainable_weights)
    assert float(terms["projection"]) > 0  # NT-Xent is computed, and weighted 0
    # ... against a plain classifier (the same layers without the head) on the same two views.
    plain = keras.Model(model.input, model.output["logits"])
    with tf.GradientTape() as tape:
        ce = keras.losses.sparse_categorical_crossentropy(
            labels, plain(views, training=True), from_logits=True
        )
        loss = tf.reduce_mean(ce)
    reference = dict(
        zip(
            [w.path for w in plain.trainable_weights],
            tape.gradient(loss, plain.trainable_weights),
            strict=True,
        )
    )
    shared = 0
    for weight, gradient in zip(model.trainable_weights, gradients, strict=True):
        if weight.path in reference:
            np.testing.assert_allclose(
                gradient, reference[weight.path], atol=1e-6, err_msg=weight.path
            )
            shared += 1
        else:  # the projection head
            assert weight.path.startswith("projection"), weight.path
            np.testing.assert_array_equal(gradient, 0.0, err_msg=weight.path)
    assert shared == len(plain.trainable_weights) and shared < len(model.trainable_weights)


def test_nonzero_projection_weight_changes_the_encoder_gradient():
    # The comparison above is not vacuous: with λ_c = 1 NT-Xent reaches the shared encoder.
    model = with_loop(tiny_model([ProjectionTask(1.0)]), "standard")
    x, y = tf.constant(random_images(6, (16, 16, 1), seed=1)), tf.constant([0, 1, 2, 3, 0, 1])
    views, labels, _ = model.augment(x, y, seed=tf.constant([3, 4]))
    plain = keras.Model(model.input, model.output["logits"])
    with tf.GradientTape(persistent=True) as tape:
        _, terms = model.loss_terms(views, labels, model(views, training=True))
        ce = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(
                labels, plain(views, training=True), from_logits=True
            )
        )
    first = plain.trainable_weights[0]
    assert not np.allclose(tape.gradient(terms["loss"], first), tape.gradient(ce, first))


def test_seed002_coarse_has_the_two_view_control_and_the_contrastive_recipe_does_not_change():
    assert "projection=0" in _recipe("seed002_coarse").variants
    assert _recipe("seed002_contrastive").variants == ("none", "projection")


# === Seed 002: the paper's PGD step α = 2/255 at ε = 8/255 ===
def _pgd_alphas(config: EvalConfig) -> dict[str, float]:
    jobs, _ = attack_jobs(config, AttackedModel(tiny_model()))
    return {
        job.key: job.attack.alpha(job.eps)
        for job in jobs
        if job.attack is not None and job.attack.name == "pgd" and job.attack.norm == "linf"
    }


def test_seed002_evaluation_uses_the_papers_step_size_at_every_k():
    alphas = _pgd_alphas(EvalConfig.seed002())
    for k in (7, 20, 50):
        assert alphas[f"PGD-{k} ε=0.0313725"] == pytest.approx(2 / 255)
        assert alphas[f"PGD-{k} ε=0.1"] == pytest.approx(0.025)  # the same α/ε = 1/4
    assert alphas["PGD-100 ε=0.0313725"] == pytest.approx(2 / 255)  # the more-steps check
    assert alphas["PGD-50 ε=0.3"] == pytest.approx(0.075)  # the ε curve


def test_default_step_size_is_still_two_and_a_half_eps_over_k():
    alphas = _pgd_alphas(EvalConfig(pgd_steps=(10, 20)))
    assert alphas["PGD-10 ε=0.1"] == pytest.approx(0.025)
    assert alphas["PGD-20 ε=0.1"] == pytest.approx(0.0125)
    assert alphas["PGD-40 ε=0.1"] == pytest.approx(0.00625)


@pytest.mark.parametrize("alpha", [0.0, -0.01, 0.2])
def test_step_size_outside_zero_to_eps_is_rejected(alpha):
    with pytest.raises(ValueError, match="pgd_step_size"):
        EvalConfig(eps=0.1, pgd_step_size=alpha)


def test_configured_step_size_is_the_first_pgd_step_on_a_linear_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, logits)
    config = EvalConfig(eps=8 / 255, pgd_steps=(1,), pgd_step_size=2 / 255)
    (job,) = [
        j for j in attack_jobs(config, AttackedModel(model))[0] if j.key == "PGD-1 ε=0.0313725"
    ]
    attack = job.attack.replace(random_start=False)
    x = np.full((5, 4, 4, 1), 0.5, np.float32)  # far from 0 and 1: no clipping
    delta = attack(x, np.array([0, 1, 2, 0, 1]), eps=job.eps).numpy() - x
    np.testing.assert_allclose(np.abs(delta), 2 / 255, atol=1e-6)


# === Seed 003: dropout, Goodfellow's mixed loss, R-model − base ===
def test_seed003_recipe_has_dropout_mixed_fgsm_batches_and_the_base_model_as_baseline():
    recipe = _recipe("seed003_random_sign")
    assert recipe.model.dropout == 0.5
    assert recipe.adversarial.clean_fraction == 0.5
    assert comparison_baseline(recipe) == "none"
