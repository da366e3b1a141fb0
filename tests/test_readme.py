"""The README's "Extending it" examples run as written: a backbone, a task, a loop, a recipe and
an attack."""

import dataclasses
import re
import sys
import types

import numpy as np

from tests.helpers import ROOT, quick_eval, random_images, tiny_model
from tfaux import experiment
from tfaux.attacks import ATTACKS, AttackedModel, create_attack
from tfaux.cli import load_recipe_file
from tfaux.config import DataConfig
from tfaux.evaluate.robustness import attack_jobs
from tfaux.models import list_backbones
from tfaux.training.loop import list_loops


def _examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Extending it") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_extension_examples_register_and_train(tmp_path):
    backbone, task, loop, recipe_file, _ = _examples()
    for index, source in enumerate((backbone, task, loop)):
        module = types.ModuleType(f"readme_extension_{index}")
        sys.modules[module.__name__] = module  # as an imported file would be
        exec(compile(source, f"README example {index}", "exec"), module.__dict__)
    assert "strided_cnn" in list_backbones() and "gaussian_noise" in list_loops()

    path = tmp_path / "noise_vs_standard.py"
    path.write_text(recipe_file)
    recipe = load_recipe_file(path)  # what `python recipes/run.py <file>` reads
    assert [(c.a, c.b, c.metric) for c in recipe.claims] == [
        ("none@gaussian_noise", "none", "fgsm:0.1")
    ]
    recipe = dataclasses.replace(recipe, data=DataConfig("digits", 64, train_size=256))
    splits = experiment.load_splits(recipe)
    experiment.check_recipe(recipe, splits.info.image_shape)
    for variant in recipe.variants:
        model, strategy = experiment.build_model(recipe, variant, splits.info)
        history = experiment.fit(model, splits, epochs=1, callbacks=[], strategy=strategy)
        assert np.isfinite(history.history["loss"]).all(), variant
    assert type(model).__name__ == "GaussianNoiseModel" and model.sigma == 0.1
    x = next(iter(splits.train))[0].numpy()
    noisy = model.perturb(x, None).numpy()
    assert noisy.min() >= 0 and noisy.max() <= 1
    inside = (x > 0.3) & (x < 0.7)  # away from the clipping: the noise itself, σ = 0.1
    assert 0.09 < np.std((noisy - x)[inside]) < 0.11


def test_the_attack_example_registers_and_joins_the_report(monkeypatch):
    ATTACKS.discover()
    monkeypatch.setattr(ATTACKS, "_entries", dict(ATTACKS._entries))  # no trace after this test
    *_, attack = _examples()
    module = types.ModuleType("readme_extension_attack")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(attack, "README attack example", "exec"), module.__dict__)
    model = tiny_model()
    noise = create_attack("uniform_noise", model, steps=3)
    assert (noise.name, noise.norm, noise.steps) == ("uniform_noise", "linf", 3)
    x, y = random_images(8, (16, 16, 1), seed=2), np.arange(8) % 4
    x_adv = noise(x, y, eps=0.1, seed=1).numpy()
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
    np.testing.assert_array_equal(noise(x, y, eps=0.1, seed=1).numpy(), x_adv)
    jobs, _ = attack_jobs(quick_eval(), AttackedModel(model))
    assert jobs[-1].key == "UNIFORM_NOISE-8 ε=0.1" and jobs[-1].limit == 32
