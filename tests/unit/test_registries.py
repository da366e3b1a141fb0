"""Every registered training loop and aux task, tested for free: a new one is in these tests the
moment it registers (one step, finite loss, the config round trip, its declared properties)."""

import dataclasses
import sys

import keras
import numpy as np
import pytest

from tests.helpers import (
    assert_same_outputs,
    loop_model,
    loop_recipe,
    random_images,
    small_loop_settings,
    tiny_model,
)
from tfaux.config import (
    AdversarialConfig,
    DataConfig,
    Recipe,
    TuningConfig,
)
from tfaux.data import DatasetInfo
from tfaux.experiment import check_recipe
from tfaux.models.aux_model import AuxModel
from tfaux.tasks import create_task, list_tasks
from tfaux.tasks.base import task_class
from tfaux.training.loop import Loop, create_loop, list_loops, loop_class, register_loop

X = random_images(16, (16, 16, 1), seed=2)
Y = np.arange(16) % 4
SETTINGS = small_loop_settings()


# === Loops ===
@pytest.mark.parametrize("name", list_loops())
def test_every_loop_takes_a_step_and_round_trips_its_config(name):
    model = loop_model(name, **SETTINGS)
    spec = create_loop(name, loop_recipe(**SETTINGS))
    assert isinstance(model, spec.model_class or AuxModel)
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)  # eager: fast
    epochs = spec.epochs(1)
    callbacks = [*spec.callbacks(epochs), *spec.guards(lambda: (X[:8], Y[:8]))]
    history = model.fit(X[:8], Y[:8], batch_size=8, epochs=epochs, verbose=0, callbacks=callbacks)
    assert np.isfinite(history.history["loss"]).all(), history.history
    assert {"loss", "logits_loss", "accuracy"} <= set(history.history)
    changed = [np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True)]
    assert any(changed)

    revived = type(model).from_config(model.get_config())
    assert type(revived) is type(model)
    for key in type(model).LOOP_PARAMS:
        assert getattr(revived, key) == getattr(model, key), key
    revived.set_weights(model.get_weights())
    assert_same_outputs(model, revived, X[:4])


@pytest.mark.parametrize("name", list_loops())
def test_every_loop_declares_a_budget_and_is_validated_by_its_properties(name):
    cls = loop_class(name)
    spec = cls(loop_recipe(**SETTINGS))
    assert spec.name == name and spec.passes_per_step() >= 1
    assert 1 <= spec.epochs(6) <= 6  # never more epochs than natural training's optimizer steps
    # The variant grammar and the loop's own checks accept every registered loop.
    check_recipe(Recipe("ok", variants=(f"none@{name}",)))
    if cls.chunked_batch:  # its batch is [clean, T(x), …]: no augmentation of its own
        with pytest.raises(ValueError, match=f"no augmentation .* loop '@{name}'"):
            check_recipe(Recipe("bad", variants=(f"none@{name}:geometric",)))
    if cls.model().fixed_loss_weights:
        with pytest.raises(ValueError, match=f"fixed loss weights with the loop '@{name}'"):
            check_recipe(Recipe("bad", variants=(f"fourier@{name}~uncertainty",)))
    searched = TuningConfig(variant=f"fourier@{name}", eps=(0.05, 0.2))
    if cls.trains_at_eps:
        check_recipe(Recipe("ok", variants=(f"fourier@{name}",), tuning=searched))
    else:
        with pytest.raises(ValueError, match=f"trains at adversarial.eps \\(not '@{name}'\\)"):
            check_recipe(Recipe("bad", variants=(f"fourier@{name}",), tuning=searched))


def test_unknown_loop_suggests_the_closest_and_a_name_registers_once():
    with pytest.raises(ValueError, match="Unknown training loop 'pgdd'. Did you mean 'pgd'"):
        check_recipe(Recipe("bad", variants=("none@pgdd",)))
    with pytest.raises(ValueError, match="already registered"):

        @register_loop
        class Duplicate(Loop):
            name = "pgd"


def test_a_loop_registered_anywhere_trains_through_the_runners_api():
    # What a user's recipe file does: a loop in a few lines, selected by name.
    class NoisyModel(AuxModel):
        """Trains on x + N(0, σ²) (a stand-in for any perturbation)."""

        LOOP_PARAMS = ("sigma",)

        def __init__(self, *args, sigma=0.1, **kwargs):
            super().__init__(*args, **kwargs)
            self.sigma = sigma

        def perturb(self, x, y):
            return x + self.sigma * keras.random.normal(keras.ops.shape(x), seed=0)

    @register_loop
    class NoisyLoop(Loop):
        name = "test_noisy"
        model_class = NoisyModel

        def model_options(self, batch_size):
            return {"sigma": self.recipe.adversarial.eps}

    model = loop_model("test_noisy", adversarial=AdversarialConfig(eps=0.3))
    assert isinstance(model, NoisyModel) and model.sigma == 0.3
    assert "test_noisy" in list_loops()


# === Aux tasks ===
INFO = DatasetInfo(
    name="fashion_mnist",
    num_classes=10,
    class_names=tuple(map(str, range(10))),
    image_shape=(16, 16, 1),
    mean=(0.5,),
    std=(0.25,),
    num_train=16,
    num_val=0,
    num_test=0,
)


@pytest.mark.parametrize("name", list_tasks())
def test_every_task_trains_a_step_and_round_trips_its_config(name):
    task_class(name).check_dataset(INFO.name)
    task = create_task(name, 0.5, **task_class(name).options(INFO))
    again = type(task).from_config(task.get_config())
    assert again.get_config() == task.get_config() and again.weight == 0.5

    model = tiny_model([task], num_classes=10)
    labels = np.arange(16) % 10
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    history = model.fit(X, labels, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history[f"{name}_loss"]).all() and np.isfinite(history["loss"]).all()
    revived = AuxModel.from_config(model.get_config())
    revived.set_weights(model.get_weights())
    assert_same_outputs(model, revived, X[:4])


def test_tasks_say_what_they_need_of_the_data():
    coarse = task_class("coarse")
    assert coarse.coarse_labels and not task_class("fourier").coarse_labels
    coarse.check_dataset("cifar100")  # its own superclasses
    with pytest.raises(ValueError, match="coarse"):
        coarse.check_dataset("digits")  # no hierarchy
    recipe = Recipe("c", variants=("coarse",), data=DataConfig(dataset="digits"))
    with pytest.raises(ValueError, match="coarse"):
        from tfaux.experiment import check_recipe

        check_recipe(recipe)
    assert dataclasses.replace(recipe, variants=("none",))  # the same recipe without it is fine


def _registries() -> dict:
    from tfaux.attacks import ATTACKS
    from tfaux.data import DATASETS
    from tfaux.data.augment import AUGMENTATIONS
    from tfaux.models.registry import BACKBONES
    from tfaux.tasks.base import TASKS
    from tfaux.training.loop import LOOPS
    from tfaux.weighting import WEIGHTINGS

    return {
        "backbone": BACKBONES,
        "aux task": TASKS,
        "training loop": LOOPS,
        "dataset": DATASETS,
        "loss weighting": WEIGHTINGS,
        "augmentation": AUGMENTATIONS,
        "attack": ATTACKS,
    }


@pytest.mark.parametrize("kind", list(_registries()))
def test_every_plugin_kind_is_one_registry_with_the_same_errors(kind):
    from tfaux.registry import Registry

    registry = _registries()[kind]
    assert isinstance(registry, Registry) and registry.kind == kind
    first = registry.names()[0]
    assert first in registry and len(registry) >= 2
    with pytest.raises(ValueError, match=f"Unknown {kind} '{first}x'. Did you mean '{first}'"):
        registry.get(f"{first}x")
    with pytest.raises(ValueError, match=f"The {kind} '{first}' is already registered"):
        registry.register(object(), name=first)
    entry = registry.get(first)
    with registry.scoped():  # removing one and registering it again is a no-op
        assert registry.unregister(first) is entry and first not in registry
        registry.register(entry, name=first)
    assert registry.get(first) is entry


def test_one_registry_type_registers_looks_up_lists_and_discovers(tmp_path, monkeypatch):
    from tfaux.registry import Registry

    package = tmp_path / "myplugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text(
        "from tests_registry_target import REGISTRY\n"
        "@REGISTRY.register\n"
        "def alpha():\n    return 'a'\n"
        "@REGISTRY.register(name='beta_two')\n"
        "def beta():\n    return 'b'\n"
    )
    registry = Registry("widget", packages=("myplugins",))
    target = type(sys)("tests_registry_target")
    target.REGISTRY = registry
    monkeypatch.setitem(sys.modules, "tests_registry_target", target)
    monkeypatch.syspath_prepend(str(tmp_path))

    assert registry.names() == ["alpha", "beta_two"]  # found by importing the package's files
    assert registry.get("alpha")() == "a" and "beta_two" in registry and len(registry) == 2
    assert registry.names("b*") == ["beta_two"]
    with pytest.raises(ValueError, match="Unknown widget 'alpah'. Did you mean 'alpha'"):
        registry.get("alpah")
    alpha = registry.get("alpha")
    assert registry.register(alpha) is alpha  # the same object again: a module imported twice
    with pytest.raises(ValueError, match="The widget 'alpha' is already registered"):
        registry.register(lambda: None, name="alpha")

    class Named:
        name = "gamma"

    registry.register(Named)  # a class's own `name` names it, as loops and tasks
    assert registry.get("gamma") is Named

    # A scope undoes what is registered or removed in it; removal names what it removes.
    with registry.scoped():
        registry.register(lambda: "d", name="delta")
        assert registry.unregister("alpha") is alpha and registry.names() == [
            "beta_two",
            "delta",
            "gamma",
        ]
        with pytest.raises(ValueError, match="Unknown widget 'alpha'"):
            registry.unregister("alpha")
    assert registry.names() == ["alpha", "beta_two", "gamma"] and registry.get("alpha") is alpha
    with pytest.raises(ValueError, match="The widget 'gamma' is already registered"):
        registry.check_free("gamma")
    registry.check_free("delta")
