"""Recipe overrides: typed parsing, validation, and helpful errors."""

import pytest

from tfaux.config import DataConfig, Recipe, apply_overrides, field_paths, variant_tasks

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
        ("training.strategy=tpu", "strategy in"),
        ("epochs", "Expected --set key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(assignment, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(BASE, [assignment])


def test_field_paths_and_variant_tasks():
    assert "training.epochs" in field_paths(BASE) and "data.dataset" in field_paths(BASE)
    assert variant_tasks("none") == () and variant_tasks("recon+fourier") == ("recon", "fourier")
    with pytest.raises(ValueError, match="val_fraction"):
        DataConfig(val_fraction=1.5)
