"""Learned loss weighting: uncertainty (Kendall et al.) and GradNorm (Chen et al.) vs fixed λ."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import check_variant, loop_recipe, random_images, tiny_model, with_loop
from tfaux import build
from tfaux.config import AdversarialConfig, Recipe, WeightingConfig
from tfaux.experiment import check_recipe
from tfaux.models import batch_norm
from tfaux.models.aux_model import AuxModel
from tfaux.overrides import apply_overrides
from tfaux.tasks import FourierTask, ReconTask
from tfaux.training.loops.adversarial import AdversarialModel
from tfaux.training.loops.free import FreeATModel
from tfaux.variant import Variant
from tfaux.weighting import list_weightings
from tfaux.weighting.gradnorm import shared_kernel

X, Y = random_images(16, (16, 16, 1), seed=1), np.arange(16) % 4
SMALL = AdversarialConfig(eps=0.1, pgd_steps=2, replays=2)


def _model(weighting, loop="standard", tasks=None, config=None, **kwargs):
    tasks = [FourierTask(0.01)] if tasks is None else tasks
    recipe = loop_recipe(adversarial=SMALL, weighting=config or WeightingConfig())
    return with_loop(tiny_model(tasks, **kwargs), loop, recipe, weighting=weighting)


class LoudRecon(ReconTask):
    """Recon with its loss ×100: the same task, gradients 100 times larger."""

    name = "loud"

    def loss(self, target, prediction):
        return 100.0 * super().loss(target, prediction)


# === Fixed λ ===
def test_fixed_weighting_is_todays_loss_and_metrics():
    model = _model("fixed")
    outputs = model(X, training=False)
    total, terms = model.loss_terms(X, Y, outputs)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(Y, outputs["logits"])
    task = model.tasks[0]
    fourier = task.loss(task.target(X, Y), outputs["fourier"])
    assert float(total) == float(ce + 0.01 * fourier)  # bit for bit
    assert model.weighting.weights() == {}
    assert [m.name for m in model.metrics] == ["loss", "logits_loss", "fourier_loss", "accuracy"]


# === Uncertainty ===
def test_uncertainty_total_and_its_gradient_are_the_closed_form():
    model = _model("uncertainty")
    s, losses = np.array([0.3, -0.7], "float32"), np.array([1.2, 0.4], "float32")
    model.weighting.log_variances.assign(s)
    with tf.GradientTape() as tape:
        total = model.weighting.total(dict(zip(("logits", "fourier"), losses, strict=True)))
    gradient = tape.gradient(total, model.weighting.log_variances)
    np.testing.assert_allclose(total, np.sum(0.5 * np.exp(-s) * losses + 0.5 * s), rtol=1e-6)
    np.testing.assert_allclose(gradient, 0.5 * (1 - np.exp(-s) * losses), rtol=1e-5)
    weights = model.weighting.weights()
    np.testing.assert_allclose([weights["logits"], weights["fourier"]], 0.5 * np.exp(-s))


def test_uncertainty_weights_reach_one_over_twice_the_loss_despite_weight_decay():
    # Frozen network, so each L_i is constant: ½·exp(−s_i) must settle at 1/(2·L_i), the
    # equilibrium of ½·exp(−s)·L + ½·s. Weight decay 0.5 would shift it by ~20% if it reached s.
    model = _model("uncertainty", tasks=[ReconTask()])
    for layer in model.layers:
        layer.trainable = False
    assert model.trainable_weights == [model.weighting.log_variances]
    model.compile(optimizer=keras.optimizers.SGD(0.5, weight_decay=0.5), jit_compile=False)
    steps = tf.data.Dataset.from_tensors((X[:8], Y[:8])).repeat(120)
    history = model.fit(steps, epochs=1, verbose=0, shuffle=False).history
    weights = model.weighting.weights()
    for term in ("logits", "recon"):
        equilibrium = 1 / (2 * history[f"{term}_loss"][0])
        assert abs(0.5 - equilibrium) > 0.1  # started far from it
        np.testing.assert_allclose(weights[term], equilibrium, rtol=0.01, err_msg=term)
    assert weights["recon"] > 10 * weights["logits"]  # the small MSE gets the large weight


# === GradNorm ===
def test_gradnorm_weights_sum_to_the_term_count_and_a_loud_task_loses_weight():
    model = _model("gradnorm", tasks=[ReconTask(), LoudRecon()])
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    history = []
    for step in range(4):
        model.train_on_batch(X[8 * (step % 2) :][:8], Y[8 * (step % 2) :][:8])
        history.append(model.weighting.task_weights.numpy())
        np.testing.assert_allclose(history[-1].sum(), 3.0, rtol=1e-6)
        assert np.all(history[-1] > 0)
    logits, recon, loud = history[-1]
    assert loud < 1 < recon and loud < logits  # its gradient dominated W, so it was cut back
    assert np.all(np.diff([w[2] for w in history]) < 0)  # and it kept falling


def test_gradnorm_records_the_first_losses_once_and_they_survive_save_and_load(tmp_path):
    model = _model("gradnorm")
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    np.testing.assert_array_equal(model.weighting.initial_losses.numpy(), [0, 0])
    first = model.train_on_batch(X[:8], Y[:8], return_dict=True)
    initial = model.weighting.initial_losses.numpy()
    np.testing.assert_allclose(initial, [first["logits_loss"], first["fourier_loss"]], rtol=1e-5)
    model.train_on_batch(X[8:], Y[8:])
    np.testing.assert_array_equal(model.weighting.initial_losses.numpy(), initial)
    path = tmp_path / "gradnorm.weights.h5"
    model.save_weights(path)
    resumed = _model("gradnorm", seed=1)
    resumed.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(path)
    np.testing.assert_array_equal(resumed.weighting.initial_losses.numpy(), initial)
    np.testing.assert_array_equal(
        resumed.weighting.task_weights.numpy(), model.weighting.task_weights.numpy()
    )


@pytest.mark.parametrize(
    ("backbone", "layer"), [("small_cnn", "block2_conv"), ("resnet8", "stage3_block1_2_conv")]
)
def test_shared_kernel_is_the_last_kernel_of_the_backbone(backbone, layer):
    model = build(backbone, input_shape=(16, 16, 1), num_classes=4, width=0.25)
    assert shared_kernel(model) is model.get_layer(backbone).get_layer(layer).kernel


def test_shared_kernel_needs_a_backbone():
    images = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(images))
    with pytest.raises(ValueError, match="exactly one nested keras.Model"):
        AuxModel(inputs=images, outputs={"logits": logits}, weighting="gradnorm")


# === Integration ===
def test_adversarial_training_logs_the_weights_it_learns():
    model = _model("gradnorm", loop="fgsm")
    assert isinstance(model, AdversarialModel)
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    history = model.fit(X, Y, batch_size=8, epochs=1, verbose=0).history
    assert {"weight_logits", "weight_fourier"} <= set(history)
    np.testing.assert_allclose(history["weight_logits"][0] + history["weight_fourier"][0], 2.0)


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty", "gradnorm"])
@pytest.mark.parametrize("loop", ["standard", "free"])
def test_config_round_trip_keeps_the_weighting(weighting, loop):
    config = WeightingConfig(gradnorm_alpha=0.5, gradnorm_learning_rate=0.1)
    model = _model(weighting, loop=loop, config=config)
    revived = type(model).from_config(model.get_config())
    assert type(revived) is type(model) and revived.weighting.name == weighting
    options = revived.weighting_options
    assert (options["gradnorm_alpha"], options["gradnorm_learning_rate"]) == (0.5, 0.1)
    assert [w.path for w in revived.weights] == [w.path for w in model.weights]
    if weighting == "gradnorm":
        assert (revived.weighting.alpha, revived.weighting.learning_rate) == (0.5, 0.1)


def test_loops_with_their_own_weights_refuse_learned_weighting():
    with pytest.raises(ValueError, match=r"weighting 'fixed' for CorruptionAugmentModel"):
        with_loop(tiny_model(), "corruption_augment", weighting="gradnorm")
    with pytest.raises(ValueError, match="Unknown loss weighting 'gradnrom'"):
        _model("gradnrom")


def _first_steps(loop, weighting, strategy, weights):
    config = AdversarialConfig(eps=0.1, replays=1)  # one replay: half the graph to trace
    with strategy.scope():
        model = tiny_model([FourierTask(0.01)], norm=batch_norm(synchronized=True))
        model.set_weights(weights)
        model = with_loop(model, loop, weighting=weighting, adversarial=config)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    return model, history.history


@pytest.mark.parametrize(
    ("loop", "weighting"),
    [
        ("standard", "uncertainty"),
        ("free", "gradnorm"),
        # The crossed pairs run the same weighting code in the other train step (~15 s each).
        pytest.param("standard", "gradnorm", marks=pytest.mark.slow),
        pytest.param("free", "uncertainty", marks=pytest.mark.slow),
    ],
)
def test_two_replicas_train_like_one(loop, weighting, mirrored):
    weights = tiny_model([FourierTask(0.01)]).get_weights()
    one, h_one = _first_steps(loop, weighting, tf.distribute.get_strategy(), weights)
    two, h_two = _first_steps(loop, weighting, mirrored, weights)
    assert isinstance(two, FreeATModel if loop == "free" else AuxModel)
    assert {"weight_logits", "weight_fourier"} <= set(h_one) == set(h_two)
    for key in h_one:
        np.testing.assert_allclose(h_one[key], h_two[key], rtol=1e-4, err_msg=key)
    for a, b in zip(one.get_weights(), two.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    learned = [v for v in two.weights if v.path.split("/")[-1].startswith(weighting)]
    for variable in learned:  # every replica holds the same copy
        first, second = (copy.numpy() for copy in variable.value.values)
        np.testing.assert_array_equal(first, second, err_msg=variable.path)
    assert learned and not np.allclose(learned[0].numpy(), learned[0].numpy().mean())


# === Variant grammar and config ===
@pytest.mark.parametrize(
    ("variant", "weighting"),
    [
        ("fourier", "fixed"),
        ("fourier~uncertainty", "uncertainty"),
        ("recon+fourier@fgsm~gradnorm", "gradnorm"),
        ("projection@free:geometric~gradnorm", "gradnorm"),
        ("none~uncertainty", "uncertainty"),  # Kendall's single-task case: a learned loss scale
    ],
)
def test_variant_weighting_is_parsed_after_everything_else(variant, weighting):
    check_variant(variant)
    parsed = Variant.parse(variant)
    assert parsed.weighting == weighting
    if variant.startswith("projection"):
        assert parsed.tasks == ("projection",)
        assert (parsed.loop, parsed.augmentation) == ("free", "geometric")


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("fourier~gradnrom", "Unknown loss weighting 'gradnrom'. Did you mean 'gradnorm'"),
        ("none@auxiliary~uncertainty", "fixed loss weights with the loop '@auxiliary'"),
        (
            "fourier@corruption_augment~gradnorm",
            "fixed loss weights with the loop '@corruption_augment'",
        ),
        ("fourier=0.5~uncertainty", "no task λ with '~uncertainty'"),
        ("none~gradnorm", "at least 1 aux task with '~gradnorm'"),
        ("none~pcgrad", "at least 1 aux task with '~pcgrad'"),
        ("fourier=0.5~rlw", "no task λ with '~rlw'"),
        ("fourier@trades~uncertainty", "fixed loss weights with the loop '@trades'"),
    ],
)
def test_bad_weighting_variants_say_what_is_wrong(variant, message):
    with pytest.raises(ValueError, match=message):
        check_variant(variant)


def test_weighting_config_is_validated_and_settable():
    assert list_weightings() == [
        "aligned_mtl",
        "cagrad",
        "dwa",
        "fixed",
        "gradcosine",
        "gradnorm",
        "imtl_g",
        "mgda",
        "nash_mtl",
        "olaux",
        "pcgrad",
        "primary_projection",
        "rlw",
        "uncertainty",
        "upgrad",
    ]
    recipe = apply_overrides(Recipe(name="r"), ["weighting.gradnorm_alpha=0.5"])
    assert recipe.weighting == WeightingConfig(gradnorm_alpha=0.5)
    with pytest.raises(ValueError, match="gradnorm_learning_rate > 0"):
        WeightingConfig(gradnorm_learning_rate=0.0)
    with pytest.raises(ValueError, match="Did you mean 'uncertainty'"):
        check_recipe(Recipe(name="r", variants=("fourier~uncertainity",)))
