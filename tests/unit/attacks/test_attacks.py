"""Attack invariants: budget, pixel range, reproducibility, exact results on a linear model,
equality with cleverhans, and one trace per attack for a whole evaluation."""

import dataclasses
import importlib
import logging
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks.basic_iterative_method import basic_iterative_method
from cleverhans.tf2.attacks.momentum_iterative_method import momentum_iterative_method
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
from tensorflow.python.eager.polymorphic_function import polymorphic_function
from tensorflow.python.util import deprecation

from tests.helpers import quick_eval, random_images, tiny_model
from tfaux import config
from tfaux.attacks import (
    ATTACKS,
    BIM,
    FGSM,
    MIM,
    NORMS,
    PGD,
    SPSA,
    Attack,
    AttackedModel,
    CarliniWagner,
    ReportColumn,
    create_attack,
    list_attacks,
    logits_fn,
    random_in_ball,
)
from tfaux.attacks.carlini_wagner import cw_l2_attack
from tfaux.attacks.names import AUTOATTACK_ATTACKS, AUTOATTACK_ORDER
from tfaux.attacks.threat_model import clip
from tfaux.config import EvalConfig, Recipe
from tfaux.evaluate import robustness
from tfaux.evaluate.robustness import attack_jobs
from tfaux.experiment import check_recipe
from tfaux.models import build
from tfaux.training.callbacks import RobustAccuracy

EPS = 0.1
# (registered name, settings, ε), one per attack of the report.
REPORT_ATTACKS = [
    ("fgsm", {}, EPS),
    ("pgd", {"steps": 5}, EPS),
    ("pgd", {"steps": 5, "restarts": 2}, EPS),
    ("pgd", {"norm": "l2", "steps": 5}, 1.0),
    ("bim", {"steps": 4}, EPS),
    ("mim", {"steps": 4}, EPS),
    ("spsa", {"steps": 3, "samples": 16}, EPS),
    ("cw-l2", {"steps": 10, "search_steps": 2}, 1.0),
]


@pytest.fixture(scope="module")
def setup():
    model = tiny_model()
    x, y = random_images(8, (16, 16, 1), seed=3), np.arange(8) % 4
    return AttackedModel(model), x, y


def _loss(attacked, x, y):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(y, attacked.predict(x)).numpy()


def _accuracy(attacked, x, y):
    return np.mean(np.argmax(attacked.predict(x).numpy(), -1) == y)


@pytest.mark.parametrize(
    "name, settings, eps",
    REPORT_ATTACKS,
    ids=["-".join([n, *map(str, s.values())]) for n, s, _ in REPORT_ATTACKS],
)
def test_attack_stays_in_budget_and_pixel_range(setup, name, settings, eps):
    attacked, x, y = setup
    attack = create_attack(name, attacked, **settings)
    x_adv = attack(x, y, eps=eps, seed=1).numpy()
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    delta = (x_adv - x).reshape(len(x), -1)
    if attack.norm == "l2" or attack.name == "cw-l2":
        assert np.linalg.norm(delta, axis=1).max() <= eps + 1e-4
    else:
        assert np.abs(delta).max() <= eps + 1e-6
    assert _accuracy(attacked, x_adv, y) <= _accuracy(attacked, x, y)
    if attack.name in ("fgsm", "pgd", "bim", "mim"):  # gradient attacks raise the loss
        assert _loss(attacked, x_adv, y).mean() > _loss(attacked, x, y).mean()


def test_same_seed_same_images_other_seed_other_start(setup):
    attacked, x, y = setup
    pgd = PGD(attacked, steps=1, step_size=1e-4)  # mostly the random start
    a, b = pgd(x, y, eps=EPS, seed=5).numpy(), pgd(x, y, eps=EPS, seed=5).numpy()
    c = pgd(x, y, eps=EPS, seed=6).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.01


def test_spsa_seed_gives_the_same_images_on_every_call_and_other_seeds_other_images():
    # cleverhans' SPSA draws with stateful ops seeded when traced: the first call's seed was
    # every later call's, and a new attack with the same seed drew other images.
    model = tiny_model()
    x = random_images(4, (16, 16, 1), seed=3)
    spsa = SPSA(model, steps=3, samples=8)
    y = np.argmax(spsa.model.predict(x).numpy(), -1)  # attacked, not returned unchanged
    first, other, again = (spsa(x, y, eps=EPS, seed=s).numpy() for s in (5, 6, 5))
    np.testing.assert_array_equal(again, first)
    fresh = SPSA(model, steps=3, samples=8)  # its own AttackedModel: a new trace
    np.testing.assert_array_equal(fresh(x, y, eps=EPS, seed=5), first)
    assert np.abs(other - first).reshape(4, -1).max(1).min() > 0.01  # every image differs
    assert spsa.model.tracing_counts()["spsa 8 3 16x16x1"] == 1  # the seed is a tensor


def test_restarts_never_do_worse_per_example(setup):
    attacked, x, y = setup
    one = PGD(attacked, steps=2)(x, y, eps=EPS, seed=2)
    many = PGD(attacked, steps=2, restarts=4)(x, y, eps=EPS, seed=2)
    fooled = lambda x_adv: np.argmax(attacked.predict(x_adv).numpy(), -1) != y  # noqa: E731
    assert np.all(fooled(many) >= fooled(one))
    same = fooled(many) == fooled(one)
    assert np.all(_loss(attacked, many, y)[same] >= _loss(attacked, one, y)[same] - 1e-5)


def test_pgd_without_random_start_equals_cleverhans_projected_gradient_descent(setup):
    attacked, x, y = setup
    ours = PGD(attacked, steps=4, random_start=False)(x, y, eps=EPS).numpy()
    reference = projected_gradient_descent(
        attacked.model_fn, tf.constant(x), EPS, 2.5 * EPS / 4, 4, np.inf,
        clip_min=0.0, clip_max=1.0, y=tf.constant(y), rand_init=False, sanity_checks=False,
    ).numpy()  # fmt: skip
    np.testing.assert_allclose(ours, reference, atol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("name", ["bim", "mim"])
def test_bim_and_mim_equal_cleverhans(setup, name, norm):
    # Ours loop in the graph with tensor ε, α and k; cleverhans' unroll a Python loop. L2:
    # seed 001's Table 8 runs BIM and MIM in both norms.
    attacked, x, y = setup
    eps = EPS if norm == "linf" else 1.0
    if name == "bim":
        attack = BIM(attacked, norm=norm, steps=4)
    else:
        attack = MIM(attacked, norm=norm, steps=4, decay=0.5)
    ours = attack(x, y, eps=eps, seed=7).numpy()
    order = np.inf if norm == "linf" else 2
    args = (attacked.model_fn, tf.constant(x), eps, eps / 4, 4, order, 0.0, 1.0)
    if name == "bim":
        reference = basic_iterative_method(*args, y=tf.constant(y), sanity_checks=False)
    else:
        reference = momentum_iterative_method(
            *args, y=tf.constant(y), decay_factor=0.5, sanity_checks=False
        )
    np.testing.assert_allclose(ours, reference.numpy(), atol=1e-5)
    moved = (ours - x).reshape(len(x), -1)
    size = np.abs(moved).max(1) if norm == "linf" else np.linalg.norm(moved, axis=1)
    assert size.max() > eps / 2 and size.max() <= eps + 1e-5  # moved, within the ball


def _linear_model(w: np.ndarray) -> keras.Model:
    """logits = [0, w·x]: class 1 iff w·x > 0, with an exactly known L∞ distance to the boundary."""
    images = keras.Input((4, 4, 1))
    score = keras.layers.Dense(1, use_bias=False)(keras.layers.Flatten()(images))
    logits = keras.layers.Concatenate()([keras.ops.zeros_like(score), score])
    model = keras.Model(images, {"logits": logits})
    model.layers[2].set_weights([w.reshape(16, 1)])
    return model


@pytest.mark.parametrize("name", ["fgsm", "pgd", "bim", "mim"])
def test_attacks_find_the_guaranteed_adversarial_example_of_a_linear_model(name):
    rng = np.random.default_rng(0)
    w = rng.normal(size=16).astype("float32")
    w -= w.mean()  # so that images around mid-gray fall on both sides of the boundary
    x = np.clip(0.5 + rng.normal(scale=0.15, size=(64, 4, 4, 1)), 0.1, 0.9).astype("float32")
    score = x.reshape(64, 16) @ w
    y = (score > 0).astype("int32")
    # The closest L∞ adversarial example is at distance |w·x| / ‖w‖₁ (no clipping: x ± ε ∈ [0,1]).
    distance = np.abs(score) / np.abs(w).sum()
    eps = 0.05
    attacked = AttackedModel(_linear_model(w))
    settings = {} if name == "fgsm" else {"steps": 10}
    x_adv = create_attack(name, attacked, **settings)(x, y, eps=eps)
    wrong = np.argmax(attacked.predict(x_adv).numpy(), -1) != y
    assert np.all(wrong[distance < eps * 0.99]), "an attack missed a guaranteed adversarial example"
    assert not np.any(wrong[distance > eps * 1.01]), "no attack can cross the boundary there"
    assert (distance < eps).sum() > 10 and (distance > eps).sum() > 10  # both cases are tested


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "pgd", "eps": -0.1}, "Received: eps=-0.1"),
        ({"name": "pgd", "eps": 1.5}, "Received: eps=1.5"),
        ({"name": "pgdd", "eps": 0.1}, "Did you mean 'pgd'"),
        ({"name": "spsa", "eps": 0.1, "norm": "l2"}, "Expected norm='linf' for spsa"),
        ({"name": "pgd", "eps": 0.1, "steps": 0}, "Received: steps=0"),
        ({"name": "bim", "eps": 0.1, "step_size": 0.2}, "step_size <= eps"),
        ({"name": "spsa", "eps": 0.1, "samples": 3}, "even number"),
    ],
)
def test_attacks_reject_bad_arguments_before_any_work(setup, monkeypatch, kwargs, message):
    # Settings fail when the attack is built, a budget when it is checked (the report checks
    # each job's as it lists them): neither compiles anything.
    attacked, x, y = setup
    monkeypatch.setattr(attacked, "function", None)  # any compiled work would fail otherwise
    kwargs = dict(kwargs)
    name, eps = kwargs.pop("name"), kwargs.pop("eps")
    with pytest.raises(ValueError, match=message):
        create_attack(name, attacked, **kwargs).check_eps(eps)
    if name != "pgdd":
        with pytest.raises(ValueError, match=message):
            create_attack(name, attacked, **kwargs)(x, y, eps=eps)


def test_attacks_reject_mismatched_labels(setup):
    attacked, x, y = setup
    with pytest.raises(ValueError, match="as many labels as images"):
        FGSM(attacked)(x, y[:3], eps=EPS)


def test_attacks_use_the_primary_logits_in_inference_mode():
    model = tiny_model()
    x = random_images(4, (16, 16, 1))
    np.testing.assert_allclose(
        logits_fn(model)(x), model(x, training=False)["logits"], rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("name", ["cw-l2", "spsa"])
def test_optimization_attacks_find_the_linear_models_adversarial_examples(name):
    rng = np.random.default_rng(1)
    w = rng.normal(size=16).astype("float32")
    w -= w.mean()
    x = np.clip(0.5 + rng.normal(scale=0.15, size=(16, 4, 4, 1)), 0.1, 0.9).astype("float32")
    score = x.reshape(16, 16) @ w
    y = (score > 0).astype("int32")
    norm = 2 if name == "cw-l2" else 1  # L2 distance |w·x|/‖w‖₂, L∞ distance |w·x|/‖w‖₁
    distance = np.abs(score) / np.linalg.norm(w, ord=norm)
    eps = float(np.median(distance))
    model = _linear_model(w)
    attack = (
        CarliniWagner(model, steps=200) if name == "cw-l2" else SPSA(model, steps=30, samples=32)
    )
    wrong = np.argmax(attack.model.predict(attack(x, y, eps=eps)).numpy(), -1) != y
    assert np.all(wrong[distance < 0.7 * eps]), "missed an easy adversarial example"
    assert not np.any(wrong[distance > eps * 1.01]), "crossed the boundary beyond the budget"


def _cw_l2_run(model_fn, x, **settings):
    """C&W-L2 on the batch `x`: its images, and c and the loss at each of its gradient calls."""
    attack = cw_l2_attack(model_fn, len(x), abort_early=False, **settings)
    constants, losses, gradient = [], [], attack.gradient

    def recorded(x, y, modifier, const):
        x_new, grads, loss, preds, l2_dist = gradient(x, y, modifier, const)
        constants.append(const.numpy())
        losses.append(float(loss))
        return x_new, grads, loss, preds, l2_dist

    attack.gradient = recorded
    return attack.attack(x), np.stack(constants), losses


def test_cw_l2_keeps_one_constant_per_example_like_attacking_each_example_alone():
    # cleverhans makes c the images' shape; its loss then multiplied each example's margin by
    # n·H·W·c (batch 4 of 16x16x1: 1024 c), and a batch's result depended on its size.
    model_fn = AttackedModel(tiny_model()).model_fn
    x = random_images(4, (16, 16, 1), seed=3)
    settings = {"steps": 10, "search_steps": 3, "learning_rate": 0.5}
    batch, constants, losses = _cw_l2_run(model_fn, x, **settings)
    assert constants.shape == (3 * 10, 4)  # one c per example at every step, never [n, H, W, n]
    # The first loss, at δ = 0: Σ_i c·(z_pred − max other z) with cleverhans' c = 0.01.
    top2 = np.sort(model_fn(tf.constant(x)).numpy(), -1)[:, -2:]
    np.testing.assert_allclose(losses[0], 0.01 * np.sum(top2[:, 1] - top2[:, 0]), rtol=1e-4)
    assert len(np.unique(constants[-1])) > 1  # the binary search moved each c its own way
    for i in range(len(x)):
        alone, alone_constants, _ = _cw_l2_run(model_fn, x[i : i + 1], **settings)
        np.testing.assert_allclose(alone_constants[:, 0], constants[:, i], rtol=1e-6)
        np.testing.assert_allclose(alone[0], batch[i], atol=1e-5)
    assert np.abs(batch - x).max() > 0.01  # an example found an adversarial image


def test_cw_l2_attacks_colour_batches():
    # cleverhans' [n, H, W, 3] constant times [n] margins failed to broadcast unless n was 1 or 3.
    model = build("small_cnn", input_shape=(8, 8, 3), num_classes=4, width=0.25)
    x, y = random_images(4, (8, 8, 3), seed=5), np.arange(4)
    x_adv = CarliniWagner(model, steps=5, search_steps=2)(x, y, eps=1.0).numpy()
    assert x_adv.shape == x.shape
    assert np.linalg.norm((x_adv - x).reshape(4, -1), axis=1).max() <= 1.0 + 1e-4


@pytest.mark.parametrize(
    "name, settings, eps",
    [("cw-l2", {"steps": 50}, 10.0), ("spsa", {"steps": 3, "samples": 8}, 0.3)],
)
def test_optimizing_attacks_never_turn_a_misclassified_image_into_a_correct_one(
    name, settings, eps
):
    # C&W attacks the *predicted* label and SPSA starts at a random point and stops early; on a
    # misclassified image either could land on the true label and inflate accuracy above clean.
    # Those images must come back unchanged.
    rng = np.random.default_rng(2)
    w = rng.normal(size=16).astype("float32")
    w -= w.mean()
    x = np.clip(0.5 + rng.normal(scale=0.15, size=(8, 4, 4, 1)), 0.1, 0.9).astype("float32")
    wrong_labels = (x.reshape(8, 16) @ w <= 0).astype("int32")  # every label is the wrong class
    attack = create_attack(name, _linear_model(w), **settings)
    x_adv = attack(x, wrong_labels, eps=eps).numpy()
    np.testing.assert_array_equal(x_adv, x)


@pytest.fixture
def tensorflow_warnings(monkeypatch, caplog):
    """TensorFlow's warnings from here on, as if this test ran in a fresh process: its retracing
    detector counts traces per Python function across every attack so far (earlier tests'
    included), and it logs a deprecation only once per process."""
    fresh = polymorphic_function._FrequentTracingDetectorManager()
    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager", fresh)
    monkeypatch.setattr(deprecation, "_PRINTED_WARNING", {})
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        yield lambda: [r.getMessage() for r in caplog.records if r.name == "tensorflow"]


def test_an_evaluation_traces_each_attack_once_and_warns_of_nothing(
    monkeypatch, tensorflow_warnings
):
    # 3 batches, the last one short, prefixes that cut a batch; 5 ε values, PGD-2, PGD-3 and
    # PGD-6, 1 and 2 restarts, BIM, MIM, SPSA, C&W, a surrogate: every compiled attack is traced
    # once (before issue 13: twice each, and TensorFlow warned about retracing).
    attackers = []

    class Recorded(AttackedModel):
        def __init__(self, model):
            super().__init__(model)
            attackers.append(self)

    module = importlib.import_module("tfaux.evaluate.robustness")
    monkeypatch.setattr(module, "AttackedModel", Recorded)
    x, y = random_images(21, (16, 16, 1), seed=4), np.arange(21) % 4
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    config = quick_eval(
        pgd_steps=(2, 3), extra_eps=(0.05,), curve_eps=(0.1, 0.2, 0.5), curve_examples=12,
        sanity_examples=12,
    )  # fmt: skip
    report = robustness(tiny_model(), dataset, config, surrogate=tiny_model(seed=1), progress=False)
    assert report["num_examples"] == 21 and report["examples"]["PGD-6 ε=0.1"] == 12
    assert {label.split(" ε")[0] for label in report["attacks"] if " L2" in label} == {
        f"{name}-{k} L2"
        for name, k in (("PGD", 3), ("BIM", config.bim_steps), ("MIM", config.mim_steps))
    }  # seed 001's Table 8: BIM and MIM in L2 too
    model, surrogate = attackers
    assert model.tracing_counts() == {
        "predict 16x16x1": 1,
        "fgsm linf 16x16x1": 1,
        "pgd linf 16x16x1": 1,  # PGD-k for every k, ε and restart count, and BIM
        "mim linf 16x16x1": 1,
        "pgd l2 16x16x1": 1,  # PGD-L2 and BIM-L2
        "mim l2 16x16x1": 1,
        "spsa 8 3 16x16x1": 1,
        "cw-l2 5 4 0.01 2x16x16x1": 1,  # twice before c kept one value per example
    }
    assert surrogate.tracing_counts() == {"pgd linf 16x16x1": 1}
    assert tensorflow_warnings() == []  # no retracing, no back_prop=False notice


def test_pgd_on_a_prefix_is_the_full_runs_first_batches_and_the_report_says_how_many():
    # `pgd_examples` runs PGD-k (at ε and at every extra ε) on the first images only: the same
    # per-example results as the full pass on those images (seeded per batch), counted as such.
    x, y = random_images(24, (16, 16, 1), seed=6), np.arange(24) % 4
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model = tiny_model()
    config = quick_eval(pgd_steps=(3,), extra_eps=(0.05,), curve_examples=8, sanity=False)
    full = robustness(model, dataset, config, progress=False)
    prefix = robustness(
        model, dataset, dataclasses.replace(config, pgd_examples=16), progress=False
    )
    for label in ("PGD-3 ε=0.1", "PGD-3 ε=0.05"):
        assert full["examples"][label] == 24 and prefix["examples"][label] == 16
        np.testing.assert_array_equal(prefix["correct"][label], full["correct"][label][:16])
        assert prefix["attacks"][label] == np.mean(full["correct"][label][:16])
    assert prefix["examples"]["FGSM ε=0.1"] == 24 and prefix["clean"] == full["clean"]
    assert prefix["curves"] == full["curves"]  # read from the first 8 images in both
    with pytest.raises(ValueError, match="pgd_examples >= curve_examples"):
        dataclasses.replace(config, pgd_examples=4)


def test_an_attacker_per_model_is_no_retracing_to_warn_about(setup, tensorflow_warnings):
    # A run makes attacks per variant, per epoch callback and for the surrogate: each traces
    # its PGD once and may call it only once or twice. TensorFlow's detector counted all their
    # traces together ("5 out of the last 5 calls ... triggered tf.function retracing", seen in
    # the default recipe's quick run) until each compiled attack became its own key.
    _, x, y = setup
    model = tiny_model()
    for _ in range(6):
        PGD(model, steps=2)(x, y, eps=EPS)
    assert tensorflow_warnings() == []


def test_spsa_hides_only_its_back_prop_notice(setup, tensorflow_warnings):
    _, x, y = setup
    SPSA(tiny_model(), steps=2, samples=4)(x, y, eps=EPS)
    assert tensorflow_warnings() == []
    deprecation._PRINTED_WARNING.clear()  # TensorFlow's once-per-process memory
    tf.while_loop(lambda i: i < 2, lambda i: (i + 1,), (tf.constant(0),), back_prop=False)
    assert any("back_prop=False is deprecated" in m for m in tensorflow_warnings())


def test_robust_accuracy_callback_traces_once_over_epochs():
    model = tiny_model()
    x, y = random_images(10, (16, 16, 1), seed=5), np.arange(10) % 4
    callback = RobustAccuracy(x, y, eps=EPS, steps=2)
    callback.batch_size = 4  # chunks of 4, 4 and 2
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(3):
        model.set_weights([w * 0.9 for w in model.get_weights()])  # as if trained
        logs = {"val_accuracy": 0.5}
        callback.on_epoch_end(epoch, logs)
        assert 0.0 <= logs["val_pgd_accuracy"] <= 1.0
    assert callback._pgd.model.tracing_counts() == {"predict 16x16x1": 1, "pgd linf 16x16x1": 1}


# === The protocol: one call shape, one registry ===
@pytest.fixture
def registry():
    """`ATTACKS` as it is, restored after the test: an attack registered here leaves no trace."""
    with ATTACKS.scoped():
        yield ATTACKS


@pytest.mark.parametrize("name", list_attacks())
def test_every_registered_attack_keeps_the_protocol(setup, name):
    # Tested for free: a new attack file is in this test the moment it registers.
    attacked, x, y = setup
    attack = create_attack(name, attacked)
    assert type(attack).name == attack.name == name
    assert attack.norm in NORMS and attack.steps >= 1
    eps = 0.5 if attack.norm == "l2" else EPS
    assert attack.label(eps).endswith(f"ε={eps:g}")
    sizes = ("steps", "queries", "search_steps", "samples")
    quick = {k: 2 for k in sizes if k in attack.get_config()}
    attack = attack.replace(**quick)
    assert type(attack).name == name and all(attack.get_config()[k] == 2 for k in quick)
    x_adv = attack(x[:4], y[:4], eps=eps, seed=3).numpy()
    delta = (x_adv - x[:4]).reshape(4, -1)
    size = np.abs(delta).max(1) if attack.norm == "linf" else np.linalg.norm(delta, axis=1)
    assert x_adv.shape == x[:4].shape and 0 <= x_adv.min() and x_adv.max() <= 1
    assert size.max() <= eps * (1 + 1e-5) + 1e-6
    np.testing.assert_array_equal(attack(x[:4], y[:4], eps=eps, seed=3).numpy(), x_adv)


class _Noise(Attack):
    """Uniform noise in the L∞ ball (a floor any real attack must beat), written in a test."""

    name, gradient_free, steps = "test-noise", True, 1

    def __init__(self, model):
        self.model = AttackedModel.of(model)

    def get_config(self) -> dict:
        return {}

    def __call__(self, x, y, *, eps, seed=0):
        eps = self.check_eps(eps)
        x = tf.convert_to_tensor(x, tf.float32)
        return clip(x + random_in_ball(tf.shape(x), "linf", eps, tf.constant([seed, 0])))

    @classmethod
    def report_columns(cls, model, config):
        return [ReportColumn(cls(model), config.eps, examples=config.sanity_examples)]


def test_a_registered_attack_is_found_by_name_and_joins_the_report(registry):
    registry.register(_Noise)
    model = tiny_model()
    assert "test-noise" in list_attacks() and isinstance(create_attack("test-noise", model), _Noise)
    with pytest.raises(ValueError, match="Unknown attack 'test-nosie'. Did you mean 'test-noise'"):
        create_attack("test-nosie", model)

    # The report's job list picks it up, after every column of its own, with what it declared.
    config = quick_eval(sanity_examples=5)
    attacked = AttackedModel(model)
    jobs, _ = attack_jobs(config, attacked)
    assert jobs[-1].key == "TEST-NOISE-1 ε=0.1" and jobs[-1].limit == 5
    assert isinstance(jobs[-1].attack, _Noise) and jobs[-1].attack.model is attacked
    registry.unregister("test-noise")
    assert [job.key for job in attack_jobs(config, attacked)[0]] == [j.key for j in jobs[:-1]]

    # A column must not replace one the report has (their per-example results would merge).
    class Clash(_Noise):
        name = "test-clash"

        @classmethod
        def report_columns(cls, model, config):
            return [ReportColumn(PGD(model, steps=config.pgd_steps[-1]), config.eps)]

    registry.register(Clash)
    with pytest.raises(ValueError, match="'PGD-3 ε=0.1', which the report has already"):
        attack_jobs(config, attacked)
    registry.unregister("test-clash")

    # And the report runs it on its prefix, beside the others.
    registry.register(_Noise)
    x, y = random_images(8, (16, 16, 1), seed=4), np.arange(8) % 4
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    quick = quick_eval(sanity=False, curve_eps=(), fgsm_eps=(0.1,), pgd_steps=(1,), l2_eps=0)
    report = robustness(model, dataset, quick, progress=False)
    assert report["examples"]["TEST-NOISE-1 ε=0.1"] == 8  # a prefix of 32: all 8
    assert 0 <= report["attacks"]["TEST-NOISE-1 ε=0.1"] <= report["clean"]


def test_autoattacks_order_names_registered_attacks_and_loads_without_tensorflow():
    assert set(AUTOATTACK_ATTACKS) <= set(list_attacks())
    for version, order in AUTOATTACK_ORDER.items():
        assert set(order) <= set(AUTOATTACK_ATTACKS), version
    assert not hasattr(config, "AUTOATTACK_VERSIONS")  # one owner: check_recipe reads it here
    with pytest.raises(ValueError, match="Unknown evaluation.autoattack_version 'standrad'"):
        check_recipe(Recipe("r", evaluation=EvalConfig(autoattack_version="standrad")))
    code = (
        "import sys, tfaux.config, tfaux.attacks.names\n"
        "assert 'tensorflow' not in sys.modules, 'the attack names imported TensorFlow'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
