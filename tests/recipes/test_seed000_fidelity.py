"""Issue 16, seed 000: aux targets from the perturbed input; per-variant loop settings."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import check_variant, loop_model, random_images
from tfaux.config import (
    AdversarialConfig,
    DataConfig,
    ModelConfig,
    Recipe,
)
from tfaux.data.pipeline import DatasetInfo
from tfaux.experiment import build_model, check_recipe, loop_of
from tfaux.running.evaluation import hparams
from tfaux.tasks import ReconTask
from tfaux.variant import Variant


class _RecordingRecon(ReconTask):
    """Recon whose target records the images it was computed from."""

    def __init__(self, weight: float = 0.01):
        super().__init__(weight)
        self.seen = []

    def target(self, x, y):
        self.seen.append(np.asarray(x))
        return super().target(x, y)


@pytest.mark.parametrize("aux_targets", ["clean", "perturbed"])
def test_recon_target_is_the_input_aux_targets_names_in_a_pgd_step(aux_targets):
    task = _RecordingRecon(1.0)
    model = loop_model(
        "pgd", [task], adversarial=AdversarialConfig(eps=0.1, pgd_steps=2, aux_targets=aux_targets)
    )
    assert model.aux_targets == aux_targets
    assert model.get_config()["aux_targets"] == aux_targets
    model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    x = tf.constant(random_images(4, (16, 16, 1)))
    y = tf.constant([0, 1, 2, 3])
    # The attack's random start is a stateless function of the step counter: at step 0 and
    # before the update, `perturb` gives the very input the step trains on.
    x_adv = model.perturb(x, y).numpy()
    assert np.abs(x_adv - x.numpy()).max() > 0.05  # a real perturbation, within ε = 0.1
    model.train_step((x, y))
    (target,) = task.seen
    np.testing.assert_allclose(
        target, x_adv if aux_targets == "perturbed" else x.numpy(), atol=1e-6
    )


def test_aux_targets_is_validated():
    with pytest.raises(ValueError, match="'perturbd'"):
        AdversarialConfig(aux_targets="perturbd")


# === Per-variant loop settings: "fourier@fgsm[eps=0.3]" ===
def _recipe(variants=("none@fgsm",), eps=0.1, **settings):
    return Recipe(
        "seed000_fidelity",
        variants=variants,
        data=DataConfig(batch_size=4),
        model=ModelConfig(backbone="small_cnn", width=0.25),
        adversarial=AdversarialConfig(eps=eps, guard="off"),
        **settings,
    )


def test_variant_settings_are_parsed_by_field_type_and_ignored_elsewhere():
    variant = "recon=0.5+fourier@pgd[eps=0.3; pgd_steps=3;aux_targets=perturbed]:geometric~fixed"
    parsed = Variant.parse(variant)
    assert parsed.settings == {"eps": 0.3, "pgd_steps": 3, "aux_targets": "perturbed"}
    assert isinstance(parsed.settings["pgd_steps"], int)
    assert parsed.weights(0.01) == {"recon": 0.5, "fourier": 0.01}
    assert parsed.tasks == ("recon", "fourier")
    assert parsed.loop == "pgd"
    assert parsed.augmentation == "geometric"
    assert parsed.weighting == "fixed"
    assert Variant.parse("fourier@fgsm").settings == {}
    check_variant(variant)


@pytest.mark.parametrize(
    "variant, message",
    [
        ("none@fgsm[epss=0.3]", r"Unknown adversarial setting .*'epss'.* Did you mean 'eps'"),
        ("none@fgsm[eps=high]", r"Expected adversarial.eps to be of type float"),
        ("none@fgsm[eps=1.5]", r"Received: eps=1.5"),
        ("none@fgsm[aux_targets=noisy]", r"Unknown adversarial.aux_targets 'noisy'"),
        ("none@fgsm[eps]", r"key=value loop settings"),
        ("none@fgsm[eps=0.3;eps=0.2]", r"each loop setting once"),
        ("none[eps=0.3]", r"right after the variant's loop"),
        ("none@fgsm:geometric[eps=0.3]", r"right after the variant's loop"),
        ("none@fgsm[eps=0.3]x", r"right after the variant's loop"),
        ("none@fgsm[eps=0.3", r"right after the variant's loop"),
    ],
)
def test_bad_variant_settings_fail_in_one_line(variant, message):
    with pytest.raises(ValueError, match=message):
        check_variant(variant)
    with pytest.raises(ValueError, match=message):
        check_recipe(_recipe(variants=("none", variant)))


def test_variant_recipe_applies_the_settings_to_adversarial_only():
    recipe = _recipe(variants=("none@fgsm", "none@fgsm[eps=0.3]", "none@pgd[eps=0.2;pgd_steps=3]"))
    assert Variant.parse("none@fgsm").recipe(recipe) is recipe
    at_03 = Variant.parse("none@fgsm[eps=0.3]").recipe(recipe)
    assert (at_03.adversarial.eps, at_03.adversarial.pgd_steps) == (0.3, 7)
    pgd = Variant.parse("none@pgd[eps=0.2;pgd_steps=3]").recipe(recipe).adversarial
    assert (pgd.eps, pgd.pgd_steps, pgd.guard) == (0.2, 3, "off")
    assert at_03.training == recipe.training and at_03.variants == recipe.variants
    assert recipe.adversarial.eps == 0.1  # the recipe itself is unchanged
    # The loop settings a recipe validates are the variant's: ε = 0 is refused for "@fgsm".
    with pytest.raises(ValueError, match=r"adversarial.eps > 0 for the loop '@fgsm'"):
        check_recipe(_recipe(variants=("none", "none@fgsm[eps=0]")))
    # The recipe's ε = 0 is not used.
    check_recipe(_recipe(variants=("none", "none@fgsm[eps=0.3]"), eps=0.0))


def test_a_bracketed_variant_trains_at_its_own_eps():
    info = DatasetInfo(
        name="fashion_mnist",
        num_classes=10,
        class_names=tuple(map(str, range(10))),
        image_shape=(16, 16, 1),
        mean=(0.3,),
        std=(0.3,),
        num_train=8,
        num_val=4,
        num_test=4,
    )
    recipe = _recipe(variants=("none@fgsm", "none@fgsm[eps=0.3]"))
    x = tf.constant(0.2 + 0.6 * random_images(4, (16, 16, 1)))  # away from 0 and 1: no clipping
    y = tf.constant([0, 1, 2, 3])
    for variant, eps in [("none@fgsm", 0.1), ("none@fgsm[eps=0.3]", 0.3)]:
        model, _ = build_model(recipe, variant, info)
        assert model.eps == pytest.approx(eps) and model.step_size == pytest.approx(eps)
        assert loop_of(recipe, variant).recipe.adversarial.eps == eps
        assert model.get_config()["eps"] == pytest.approx(eps)
        delta = np.abs(model.perturb(x, y).numpy() - x.numpy())
        np.testing.assert_allclose(delta.max(), eps, rtol=1e-5)  # FGSM: every pixel moves by ε
        np.testing.assert_allclose(np.median(delta), eps, rtol=1e-5)
        logs = model.train_on_batch(x, y, return_dict=True)
        assert np.isfinite(logs["loss"])
    assert hparams(recipe, "none@fgsm[eps=0.3]")["eps"] == 0.3
    assert hparams(recipe, "none@fgsm")["eps"] == 0.1
