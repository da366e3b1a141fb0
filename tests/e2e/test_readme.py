"""The README's "Extending it" examples run as written: a backbone, a task, a loop, a loss
weighting, a recipe and an attack, each registered only for the test that runs it."""

import contextlib
import dataclasses
import re
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ROOT, quick_eval, random_images, tiny_model, with_loop
from tfaux import experiment
from tfaux.attacks import ATTACKS, AttackedModel, create_attack
from tfaux.cli import load_recipe_file
from tfaux.config import DataConfig
from tfaux.evaluate import attack_jobs
from tfaux.models import list_backbones
from tfaux.models.registry import BACKBONES
from tfaux.tasks import FourierTask
from tfaux.tasks.base import TASKS
from tfaux.training.loop import LOOPS, list_loops
from tfaux.weighting import WEIGHTINGS, list_weightings


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Extending it") :]
    return section[: section.index("\n## ", 1)]


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _section(), flags=re.DOTALL)


@pytest.fixture
def scoped_registries():
    """Every registry the examples add to, restored after the test: they leave no trace."""
    with contextlib.ExitStack() as stack:
        for registry in (BACKBONES, TASKS, LOOPS, WEIGHTINGS, ATTACKS):
            stack.enter_context(registry.scoped())
        yield


def _run(source: str, module_name: str, monkeypatch) -> types.ModuleType:
    module = types.ModuleType(module_name)
    monkeypatch.setitem(sys.modules, module.__name__, module)  # as an imported file would be
    exec(compile(source, f"README example {module_name}", "exec"), module.__dict__)
    return module


def test_the_section_says_what_each_plugin_takes_and_shows_an_example_of_each():
    intro = " ".join(_section().split())
    kinds = "an attack, a training loop, an auxiliary task, a backbone, a loss weighting or "
    kinds += "a recipe"
    assert f"Adding {kinds} is one new file each." in intro
    markers = ("@register_backbone", "@register_task", "@register_loop", "@register_weighting")
    markers += ("@register_weighting", "RECIPE = Recipe(", "@register_attack")
    examples = _examples()
    assert len(examples) == len(markers)
    assert all(marker in example for marker, example in zip(markers, examples, strict=True))
    assert all(f"`{marker.split('(')[0]}`" in intro for marker in markers if "@" in marker)


def test_the_extension_examples_register_and_train(tmp_path, monkeypatch, scoped_registries):
    backbone, task, loop, weighting, _, recipe_file, _ = _examples()
    for index, source in enumerate((backbone, task, loop, weighting)):
        _run(source, f"readme_extension_{index}", monkeypatch)
    assert "strided_cnn" in list_backbones() and "gaussian_noise" in list_loops()
    assert "warmup" in list_weightings()

    path = tmp_path / "noise_vs_standard.py"
    path.write_text(recipe_file)
    recipe = load_recipe_file(path)  # what `python recipes/run.py <file>` reads
    assert [(c.a, c.b, c.metric) for c in recipe.claims] == [
        ("none@gaussian_noise", "none", "fgsm:0.1")
    ]
    recipe = dataclasses.replace(recipe, data=DataConfig("digits", 64, train_size=256))
    splits = experiment.load_splits(recipe)
    experiment.check_recipe(recipe, splits.info.image_shape)
    models, batch_logs = {}, {}
    for variant in recipe.variants:
        model, strategy = experiment.build_model(recipe, variant, splits.info)
        seen = batch_logs[variant] = []
        record = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs, seen=seen: seen.append(dict(logs))
        )
        history = experiment.fit(model, splits, epochs=1, callbacks=[record], strategy=strategy)
        assert np.isfinite(history.history["loss"]).all(), variant
        models[variant] = model
    model = models["none@gaussian_noise"]
    assert type(model).__name__ == "GaussianNoiseModel" and model.sigma == 0.1
    x = next(iter(splits.train))[0].numpy()
    noisy = model.perturb(x, None).numpy()
    assert noisy.min() >= 0 and noisy.max() <= 1
    inside = (x > 0.3) & (x < 0.7)  # away from the clipping: the noise itself, σ = 0.1
    assert 0.09 < np.std((noisy - x)[inside]) < 0.11

    # The warm-up: after step k the aux weight is λ·min(1, k/500) (the logs hold its running
    # mean over the epoch), the primary's stays 1, and the step count is a saved model weight.
    warm, logs = models["brightness~warmup"], batch_logs["brightness~warmup"]
    steps = np.arange(1, len(logs) + 1)
    ramp = recipe.aux_weight * np.minimum(1.0, steps / type(warm.weighting).ramp_steps)
    assert warm.weighting.lambdas == {"logits": 1.0, "brightness": recipe.aux_weight}
    logged = [log["weight_brightness"] for log in logs]
    np.testing.assert_allclose(logged, np.cumsum(ramp) / steps, rtol=1e-6)
    assert all(log["weight_logits"] == 1.0 for log in logs)
    assert not any("weight_brightness" in log for log in batch_logs["brightness"])
    total = warm.weighting.total({"logits": tf.constant(2.0), "brightness": tf.constant(3.0)})
    np.testing.assert_allclose(total, 2.0 + 3.0 * ramp[-1], rtol=1e-6)  # the next step's loss
    revived = type(warm).from_config(warm.get_config())
    assert float(revived.weighting.steps_taken) == 0
    revived.set_weights(warm.get_weights())
    assert float(revived.weighting.steps_taken) == len(logs) > 1


def test_the_gradient_combination_example_registers_and_trains(monkeypatch, scoped_registries):
    _run(_examples()[4], "readme_extension_combination", monkeypatch)
    assert "equal_norms" in list_weightings()
    model = with_loop(tiny_model([FourierTask(0.01)]), "standard", weighting="equal_norms")
    gram = tf.constant([[4.0, 1.0], [1.0, 0.25]])
    np.testing.assert_allclose(model.weighting.combine(gram, None, None), [1.0, 4.0])
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    x, y = random_images(16, (16, 16, 1), seed=3), np.arange(16) % 4
    logs = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert logs["weight_logits"] == [1.0] and logs["weight_fourier"][0] > 0
    assert -1 <= logs["cosine_fourier"][0] <= 1


def test_the_attack_example_registers_and_joins_the_report(monkeypatch, scoped_registries):
    *_, attack = _examples()
    _run(attack, "readme_extension_attack", monkeypatch)
    model = tiny_model()
    noise = create_attack("uniform_noise", model, steps=3)
    assert (noise.name, noise.norm, noise.steps) == ("uniform_noise", "linf", 3)
    x, y = random_images(8, (16, 16, 1), seed=2), np.arange(8) % 4
    x_adv = noise(x, y, eps=0.1, seed=1).numpy()
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
    np.testing.assert_array_equal(noise(x, y, eps=0.1, seed=1).numpy(), x_adv)
    jobs, _ = attack_jobs(quick_eval(), AttackedModel(model))
    assert jobs[-1].key == "UNIFORM_NOISE-8 ε=0.1" and jobs[-1].limit == 32
