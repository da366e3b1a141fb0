"""TRADES and MART: losses against numpy references of the official code, the inner attacks'
invariants, a train step and config round trip, 1 vs 2 replicas, and robustness on real digits."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.helpers import random_images, tiny_model
from tfaux import data
from tfaux.attacks import PGD, logits_fn
from tfaux.config import AdversarialConfig, DataConfig, Recipe
from tfaux.models import build
from tfaux.tasks import FourierTask
from tfaux.training import create_loop
from tfaux.training.loops import trades
from tfaux.training.loops.mart import MARTModel, mart_loss
from tfaux.training.loops.trades import TRADESModel, trades_examples, trades_loss

X, Y = random_images(16, (16, 16, 1), seed=1), np.arange(16) % 4
EPS, STEPS, BETA = 0.1, 3, 6.0


def _recipe(eps=EPS, steps=STEPS, beta=BETA, dataset="fashion_mnist", batch_size=8):
    return Recipe(
        name="t",
        adversarial=AdversarialConfig(eps=eps, pgd_steps=steps, beta=beta),
        data=DataConfig(dataset=dataset, batch_size=batch_size),
    )


def _wrapped(loop, model=None, recipe=None):
    model = create_loop(loop, recipe or _recipe()).wrap(model or tiny_model())
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    return model


# === Losses against numpy references of the official PyTorch code ===
def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _numpy_trades(clean, adv, y, beta):
    """yaodongyu/TRADES: CE(logits, y) + β·(1/B)·KLDiv(sum)(log_softmax(adv), softmax(clean))."""
    log_p_clean = np.log(_softmax(clean))
    cross_entropy = -log_p_clean[np.arange(len(y)), y].mean()
    p_clean = _softmax(clean)
    kl = np.sum(p_clean * (log_p_clean - np.log(_softmax(adv)))) / len(y)
    return cross_entropy, kl, cross_entropy + beta * kl


def _numpy_mart(clean, adv, y, beta):
    """YisenWang/MART's mart_loss, line for line (argsort, new_y, the 1e-12/1.0001 offsets)."""
    rows = np.arange(len(y))
    adv_probs = _softmax(adv)
    tmp1 = np.argsort(adv_probs, axis=1)[:, -2:]
    new_y = np.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = -np.log(adv_probs[rows, y]).mean()
    loss_adv += -np.log(1.0001 - adv_probs + 1e-12)[rows, new_y].mean()
    nat_probs = _softmax(clean)
    true_probs = nat_probs[rows, y]
    kl = nat_probs * (np.log(nat_probs) - np.log(adv_probs + 1e-12))
    loss_robust = np.sum(kl.sum(1) * (1.0000001 - true_probs)) / len(y)
    return loss_adv, loss_robust, loss_adv + beta * loss_robust


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 2, (6, 4))
    adv = clean + rng.normal(0, 1.5, (6, 4))
    y = np.array([0, 1, 2, 3, 0, 1])
    adv[0, 0] = adv[0].max() + 2  # the label is the adversarial top class: new_y is the runner-up
    adv[1, 2] = adv[1].max() + 2  # a wrong class is on top: new_y is that class
    return clean, adv, y


def test_trades_loss_matches_the_official_formula(logits):
    clean, adv, y = logits
    want_ce, want_kl, want = _numpy_trades(clean, adv, y, BETA)
    got = trades_loss(clean.astype("float32"), adv.astype("float32"), y, BETA).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # The model's terms: CE on the clean logits, "robust" = the KL, total = CE + β·KL
    model = _wrapped("trades")
    outputs = {"logits": tf.constant(clean, tf.float32), trades.ADVERSARIAL: tf.constant(adv)}
    total, terms = model.loss_terms(tf.zeros((6, 16, 16, 1)), tf.constant(y), outputs)
    np.testing.assert_allclose(terms["logits"], want_ce, rtol=1e-5)
    np.testing.assert_allclose(terms["robust"], want_kl, rtol=1e-5)
    np.testing.assert_allclose(total, want, rtol=1e-5)
    # KL(p(x) ‖ p(x′)), not KL(p(x′) ‖ p(x)): the arguments are not interchangeable
    swapped = trades_loss(clean, adv, y, 0.0) + BETA * np.mean(trades.kl_divergence(adv, clean))
    assert abs(float(swapped) - want) > 1e-3


def test_mart_loss_matches_the_official_formula(logits):
    clean, adv, y = logits
    want_bce, want_robust, want = _numpy_mart(clean, adv, y, BETA)
    got = mart_loss(clean.astype("float32"), adv.astype("float32"), y, BETA).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    model = _wrapped("mart")
    outputs = {"logits": tf.constant(adv, tf.float32), "clean_logits": tf.constant(clean)}
    total, terms = model.loss_terms(tf.zeros((6, 16, 16, 1)), tf.constant(y), outputs)
    np.testing.assert_allclose(terms["logits"], want_bce, rtol=1e-5)
    np.testing.assert_allclose(terms["robust"], want_robust, rtol=1e-5)
    np.testing.assert_allclose(total, want, rtol=1e-5)


@pytest.mark.parametrize("loop", ["trades", "mart"])
def test_without_an_attack_the_robust_term_is_zero(loop, logits):
    # Validation runs on clean images only (x′ = x): the robust term is 0.
    clean, _, y = logits
    outputs = {"logits": tf.constant(clean, tf.float32)}
    _, terms = _wrapped(loop).loss_terms(tf.zeros((6, 16, 16, 1)), tf.constant(y), outputs)
    assert float(terms["robust"]) == 0.0


# === Inner attacks ===
def _kl(model, x, x_adv):
    predict = logits_fn(model)
    return float(np.mean(trades.kl_divergence(predict(x), predict(x_adv))))


def test_trades_attack_increases_the_kl_and_stays_in_budget():
    model = _wrapped("trades", recipe=_recipe(steps=5))
    x = tf.constant(X)
    attack = {"eps": EPS, "step_size": model.step_size, "seed": tf.constant([0, 0])}
    x_adv = model.perturb(x, tf.constant(Y)).numpy()  # seeded by step 0 on one replica: [0, 0]
    np.testing.assert_array_equal(x_adv, trades_examples(model, x, steps=5, **attack))
    assert np.abs(x_adv - X).max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    start = trades_examples(model, x, steps=0, **attack).numpy()
    assert 0 < np.abs(start - X).max() < 0.01  # x + 0.001·N(0, I)
    uniform = np.clip(X + np.random.default_rng(0).uniform(-EPS, EPS, X.shape), 0, 1)
    kl_start, kl_uniform, kl_adv = (_kl(model, x, z) for z in (start, uniform, x_adv))
    assert kl_adv > 100 * kl_start and kl_adv > 3 * kl_uniform, (kl_start, kl_uniform, kl_adv)


def test_mart_attack_increases_the_cross_entropy_and_stays_in_budget():
    model = _wrapped("mart")
    x_adv = model.perturb(tf.constant(X), tf.constant(Y)).numpy()
    assert np.abs(x_adv - X).max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1

    def cross_entropy(x):
        logits = logits_fn(model)(x)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(Y, logits).numpy().mean()

    assert cross_entropy(x_adv) > cross_entropy(X) + 0.1


def _mart_model(**kwargs):
    graph = tiny_model()
    model = MARTModel(inputs=graph.input, outputs=graph.output, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    return model


def test_mart_starts_at_x_plus_a_thousandth_of_a_standard_normal():
    # YisenWang/MART's mart_loss: x_adv = x + 0.001 * torch.randn(x.shape). With α = 0 the PGD
    # steps do not move, so x′ is the start.
    x = 0.25 + 0.5 * random_images(16, (16, 16, 1), seed=2)  # far from 0 and 1: no clipping
    model = _mart_model(eps=EPS, steps=1, step_size=0.0)
    noise = (model.perturb(tf.constant(x), tf.constant(Y)).numpy() - x) / 0.001
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1) < 0.05, (noise.mean(), noise.std())
    assert stats.kstest(noise.ravel(), "norm").pvalue > 0.01  # a uniform start in ±ε fails this
    # Seeded like TRADES' start: the same at the same step, fresh at the next one.
    again = (model.perturb(tf.constant(x), tf.constant(Y)).numpy() - x) / 0.001
    np.testing.assert_array_equal(again, noise)
    model.optimizer.iterations.assign(1)
    later = (model.perturb(tf.constant(x), tf.constant(Y)).numpy() - x) / 0.001
    assert np.corrcoef(noise.ravel(), later.ravel())[0, 1] < 0.1
    # random_start=False starts at x itself.
    at_x = _mart_model(eps=EPS, steps=1, step_size=0.0, random_start=False)
    np.testing.assert_array_equal(at_x.perturb(tf.constant(x), tf.constant(Y)), x)


@pytest.mark.parametrize("step_size", [0.0, None])
def test_mart_examples_stay_in_the_ball_and_pixel_range_from_the_gaussian_start(step_size):
    # Pixels at 0 and 1 (the start leaves [0, 1] there) and ε below the start's spread.
    x = np.round(random_images(8, (16, 16, 1), seed=3))
    eps = 0.0005
    model = _mart_model(eps=eps, steps=3, step_size=step_size)
    x_adv = model.perturb(tf.constant(x), tf.constant(Y[:8])).numpy()
    assert np.abs(x_adv - x).max() <= eps + 1e-7 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert np.abs(x_adv - x).max() > 0


# === Train step, registry, config ===
@pytest.mark.parametrize("loop, model_class", [("trades", TRADESModel), ("mart", MARTModel)])
def test_a_train_step_changes_the_weights_and_logs_the_robust_term(loop, model_class):
    model = _wrapped(loop, tiny_model([FourierTask(0.01)]))
    assert type(model) is model_class
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(X[:8], Y[:8], batch_size=8, epochs=1, verbose=0, shuffle=False).history
    assert set(history) >= {"loss", "logits_loss", "robust_loss", "fourier_loss", "accuracy"}
    assert np.isfinite(history["loss"][0]) and history["robust_loss"][0] > 0
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True))


# The official codes' training-mode passes, in order: TRADES' trades_loss runs model(x_natural)
# for the CE, then model(x_adv) and model(x_natural) inside the KL; MART's mart_loss runs
# model(x_natural), then model(x_adv). Each moves BatchNorm's moving statistics.
PASSES = {"trades": ("x", "x_adv", "x"), "mart": ("x", "x_adv")}


def _moving_statistics(model):
    return {
        layer.name: (layer.moving_mean.numpy(), layer.moving_variance.numpy())
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def _expected_moving_statistics(model, initial, batches, momentum):
    """Keras' update, moving ← μ·moving + (1 − μ)·batch statistic (biased variance), applied
    once per pass to each BatchNorm layer's input on that pass."""
    expected = {}
    for name, (mean, variance) in initial.items():
        inputs = keras.Model(model.input, model.get_layer(name).input)
        for batch in batches:
            features = inputs(batch, training=True).numpy().astype("float64")
            mean = momentum * mean + (1 - momentum) * features.mean((0, 1, 2))
            variance = momentum * variance + (1 - momentum) * features.var((0, 1, 2))
        expected[name] = (mean, variance)
    return expected


def _flat_batchnorm_model(loop, momentum):
    """Two conv-BatchNorm blocks in one flat graph, so each BatchNorm's input is a layer away."""
    images = keras.Input((16, 16, 1), name="images")
    h = images
    for block in (1, 2):
        h = keras.layers.Conv2D(4, 3, strides=block, name=f"conv{block}")(h)
        h = keras.layers.BatchNormalization(momentum=momentum, name=f"bn{block}")(h)
        h = keras.layers.ReLU(name=f"relu{block}")(h)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.GlobalAveragePooling2D()(h))
    looped = create_loop(loop, _recipe())
    options = looped.model_options(batch_size=8)
    return looped.model_class(inputs=images, outputs={"logits": logits}, **options)


@pytest.mark.parametrize("loop", ["trades", "mart"])
def test_one_step_moves_batchnorm_statistics_like_the_official_passes(loop):
    momentum = 0.5  # a slow μ = 0.9 would hide the order of the passes in rounding
    keras.utils.set_random_seed(0)
    model = _flat_batchnorm_model(loop, momentum)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    crafted, perturb = [], model.perturb
    model.perturb = lambda x, y: crafted.append(perturb(x, y)) or crafted[-1]
    before, initial = model.get_weights(), _moving_statistics(model)
    assert sorted(initial) == ["bn1", "bn2"]
    x, y = X[:8], Y[:8]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history
    assert int(model.optimizer.iterations) == 1  # one gradient step
    after = _moving_statistics(model)
    model.set_weights(before)  # the BatchNorm inputs every pass saw
    batches = {"x": x, "x_adv": crafted[0].numpy()}

    def expected(passes):
        stats = [batches[p] for p in passes]
        return _expected_moving_statistics(model, initial, stats, momentum)

    want, other = expected(PASSES[loop]), expected(PASSES["mart" if loop == "trades" else "trades"])
    for name, (mean, variance) in after.items():
        np.testing.assert_allclose(mean, want[name][0], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(variance, want[name][1], rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.abs(want[name][0] - other[name][0]).max() > 1e-3  # the test tells them apart
    if loop == "trades":  # and the loss is still the official formula on training-mode logits
        logits = [model(b, training=True)["logits"].numpy() for b in (x, batches["x_adv"])]
        want_ce, want_kl, want_total = _numpy_trades(*logits, y, BETA)
        np.testing.assert_allclose(history["logits_loss"][0], want_ce, rtol=1e-5)
        np.testing.assert_allclose(history["robust_loss"][0], want_kl, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(history["loss"][0], want_total, rtol=1e-5)


@pytest.mark.parametrize("loop", ["trades", "mart"])
def test_the_loop_sets_the_model_from_the_recipe_and_its_config_round_trips(loop):
    recipe = _recipe(eps=0.2, steps=4, beta=1.5)
    looped = create_loop(loop, recipe)
    assert looped.trains_at_eps and looped.model().fixed_loss_weights
    assert looped.passes_per_step() == 4 + len(PASSES[loop])
    model = _wrapped(loop, recipe=recipe)
    assert (model.eps, model.steps, model.beta) == (0.2, 4, 1.5)
    assert model.step_size == pytest.approx(2.5 * 0.2 / 4)
    revived = type(model).from_config(model.get_config())
    assert type(revived) is type(model)
    for key in model.LOOP_PARAMS:
        assert getattr(revived, key) == getattr(model, key), key


def test_invalid_settings_fail_with_the_received_value():
    graph = tiny_model()
    with pytest.raises(ValueError, match="beta=-1"):
        TRADESModel(inputs=graph.input, outputs=graph.output, beta=-1.0)
    with pytest.raises(ValueError, match="steps=0"):
        MARTModel(inputs=graph.input, outputs=graph.output, steps=0)


# === Learning on real digits ===
def test_trades_and_mart_beat_standard_training_under_pgd_on_real_digits():
    digits = data.load("digits", batch_size=32, seed=0)
    info = digits.info
    x_test = np.concatenate([x for x, _ in digits.test])
    y_test = np.concatenate([y for _, y in digits.test])
    eps, accuracy = 0.15, {}
    for loop in ("standard", "trades", "mart"):
        keras.utils.set_random_seed(0)
        model = build(
            "small_cnn", input_shape=info.image_shape, num_classes=10, mean=info.mean,
            std=info.std,
        )  # fmt: skip
        recipe = _recipe(eps=eps, steps=5, dataset="digits", batch_size=32)
        model = create_loop(loop, recipe).wrap(model)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
        model.fit(digits.train, epochs=4, verbose=0, shuffle=False)
        pgd = PGD(model, steps=10)
        x_adv = pgd(x_test, y_test, eps=eps, seed=0)
        accuracy[loop] = np.mean(np.argmax(pgd.model.predict(x_adv), -1) == y_test)
    # Measured with seeds 0-3: standard 0.03-0.12, TRADES 0.53-0.64, MART 0.45-0.60.
    assert accuracy["trades"] > accuracy["standard"] + 0.3, accuracy
    assert accuracy["mart"] > accuracy["standard"] + 0.3, accuracy
