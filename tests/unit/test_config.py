"""Recipe overrides: typed parsing, validation, and helpful errors."""

import re

import pytest

from tfaux.config import DataConfig, Recipe
from tfaux.experiment import check_recipe
from tfaux.overrides import apply_overrides, field_paths
from tfaux.variant import Variant

BASE = Recipe(name="r", variants=("none", "fourier"))


def test_overrides_are_parsed_by_field_type():
    recipe = apply_overrides(
        BASE,
        [
            "training.epochs=3",
            "training.learning_rate=0.05",
            "data.augment=false",
            "data.train_size=100",
            "variants=none,recon+fourier",
            "evaluation.fgsm_eps=0.1,0.2",
            "data.test_size=none",
            "model.backbone=small_cnn",
        ],
    )
    assert recipe.training.epochs == 3 and recipe.training.learning_rate == 0.05
    assert recipe.data.augment is False and recipe.data.train_size == 100
    assert recipe.data.test_size is None
    assert recipe.variants == ("none", "recon+fourier")
    assert recipe.evaluation.fgsm_eps == (0.1, 0.2)
    assert recipe.model.backbone == "small_cnn"
    assert BASE.training.epochs == 5  # frozen: the original is untouched


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("training.epoch=3", "Did you mean training.epochs"),
        ("trainig.epochs=3", "Unknown recipe key 'trainig.epochs'"),
        ("training=3", "Unknown recipe key 'training'"),
        ("training.epochs=three", "Expected training.epochs to be of type int"),
        ("data.augment=maybe", "Expected data.augment to be true or false"),
        ("evaluation.fgsm_eps=-0.1", "Received: eps=-0.1"),
        ("aux_weight=-1", "Received: aux_weight=-1.0"),
        ("data.batch_size=0", "Received: batch_size=0"),
        ("training.strategy=tpu", "Unknown training.strategy .tpu."),
        ("epochs", "Expected --set key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(assignment, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(BASE, [assignment])


def test_field_paths_and_variant_tasks():
    assert "training.epochs" in field_paths(BASE) and "data.dataset" in field_paths(BASE)
    assert Variant.parse("none").tasks == ()
    assert Variant.parse("recon+fourier").tasks == ("recon", "fourier")
    with pytest.raises(ValueError, match="val_fraction"):
        DataConfig(val_fraction=1.5)


def test_variant_grammar_weights_loop_and_augmentation():
    variant = Variant.parse("denoise=10+projection@fgsm:geometric")
    assert variant.weights(0.5) == {"denoise": 10.0, "projection": 0.5}
    assert variant.tasks == ("denoise", "projection")
    assert (variant.loop, variant.augmentation) == ("fgsm", "geometric")
    assert Variant.parse("none").augmentation is None
    assert Variant.parse("none:simclr").loop == "standard"
    recipe = apply_overrides(BASE, ["variants=none,projection=0.1:geometric,none@random_sign"])
    assert recipe.variants[1] == "projection=0.1:geometric"


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("none:simclrr", "Unknown augmentation 'simclrr'. Did you mean 'simclr'"),
        ("projection=x", "Expected a number λ after 'projection=' in variant 'projection=x'"),
        ("projection=-1", "task weights λ >= 0"),
        ("projection@auxiliary", "no two-view task"),
        ("none@auxiliary:geometric", "no augmentation"),
        ("coarse+coarse", "distinct tasks"),
        ("none@random_signs", "Did you mean 'random_sign'"),
    ],
)
def test_bad_variants_say_what_is_wrong(variant, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_recipe(Recipe(name="r", variants=(variant,)))


def test_training_schedule_and_seed_settings_are_validated():
    with pytest.raises(ValueError, match="Unknown training.optimizer"):
        apply_overrides(BASE, ["training.optimizer=adam"])
    with pytest.raises(ValueError, match="warmup_epochs < epochs"):
        apply_overrides(BASE, ["training.warmup_epochs=5"])
    with pytest.raises(ValueError, match="distinct seeds"):
        apply_overrides(BASE, ["seeds=1,1"])
    with pytest.raises(ValueError, match="0 <= probability <= 1"):
        apply_overrides(BASE, ["random_sign.probability=2"])
    with pytest.raises(ValueError, match="Unknown augmentation 'geometri'"):
        check_recipe(apply_overrides(BASE, ["evaluation.augmented=geometri"]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"variants": ("none", "recon=0")}, "or drop it. Received: recon=0.0"),
        ({"variants": ("fourier",), "aux_weight": 0.0}, "set aux_weight > 0"),
        ({"variants": ("projection+recon",), "aux_weight": 0.0}, "'recon' of variant"),
    ],
)
def test_an_aux_task_at_lambda_zero_is_refused(settings, message):
    with pytest.raises(
        ValueError, match=r"Expected λ > 0 for the aux task .*" + re.escape(message)
    ):
        check_recipe(Recipe(name="r", **settings))


def test_lambda_zero_is_kept_where_it_is_not_a_no_op():
    check_recipe(Recipe(name="r", variants=("none", "projection=0")))  # seed 002's control
    check_recipe(Recipe(name="r", variants=("projection",), aux_weight=0.0))
    # Learned weights replace λ; a recipe whose variants all name their λ never reads aux_weight.
    check_recipe(
        Recipe(name="r", variants=("fourier~uncertainty", "fourier+recon~gradnorm"), aux_weight=0)
    )
    check_recipe(Recipe(name="r", variants=("none", "recon=0.1"), aux_weight=0.0))


def test_every_recipe_file_builds():
    from tests.helpers import RECIPES
    from tfaux.cli import load_recipe_file

    # seed002_coarse's "projection=0" among them: the λ = 0 rule must not refuse it.
    paths = [path for path in sorted(RECIPES.glob("*.py")) if path.name != "run.py"]
    names = {load_recipe_file(path).name for path in paths}
    assert {"seed002_coarse", "robust_baselines"} <= names and len(names) == len(paths)
