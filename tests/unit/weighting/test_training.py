"""Weightings inside training: the step a combination of gradients takes (checked against the
per-term gradients of an independent tape), every weighting in a loop, the loops that refuse
them, their state in the weights a backup saves, 1 vs 2 replicas and loss scaling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import loop_model, random_images, tiny_model, with_loop
from tfaux.config import AdversarialConfig
from tfaux.models import batch_norm
from tfaux.tasks import FourierTask, ReconTask
from tfaux.weighting import GradientWeighting, list_weightings, weighting_class
from tfaux.weighting.cagrad import cagrad_weights
from tfaux.weighting.imtl_g import imtl_g_weights

X, Y = random_images(16, (16, 16, 1), seed=2), np.arange(16) % 4
TASKS = (ReconTask(0.5), FourierTask(0.01))
LR = 0.05


def _one_step(model, x=X, y=Y):
    model.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=False)
    return model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False).history


def _expected_step(model, combine):
    """The weights after one SGD step, from per-term gradients of a tape of our own: the shared
    weights along Σ w_i·g_i (w = `combine(G·Gᵀ)`), the others along the weighted loss's gradient."""
    variables = model.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(X, training=True)
        total, terms = model.loss_terms(X, Y, outputs)
    own = tape.gradient(total, variables)
    weights = model.weighting.lambdas
    shared = [v for v in variables if v.path in model.weighting.shared]
    rows = [
        np.concatenate(
            [
                np.ravel(g) * weights[name]
                for g in tape.gradient(
                    terms[name], shared, unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
            ]
        )
        for name in model.weighting.names
    ]
    g = np.stack(rows).astype(np.float64)
    w = np.asarray(combine(tf.constant(g @ g.T)), np.float64)
    direction = w @ g
    expected, offset = {}, 0
    for v, grad in zip(variables, own, strict=True):
        if v.path in model.weighting.shared:
            size = int(np.prod(v.shape))
            step = direction[offset : offset + size].reshape(v.shape)
            offset += size
        else:
            step = grad.numpy()
        expected[v.path] = v.numpy() - LR * step
    return expected, w


@pytest.mark.parametrize(
    ("weighting", "combine"),
    [("imtl_g", imtl_g_weights), ("cagrad", lambda k: cagrad_weights(k, 0.5, 1))],
)
def test_a_step_moves_the_shared_weights_along_the_combination_and_the_heads_along_their_own(
    weighting, combine
):
    model = with_loop(tiny_model(TASKS, norm=None), "standard", weighting=weighting)
    backbone = model.get_layer("small_cnn")
    assert model.weighting.shared == {v.path for v in backbone.trainable_weights}
    expected, w = _expected_step(model, combine)
    history = _one_step(model)
    for v in model.trainable_weights:
        np.testing.assert_allclose(
            v.numpy(), expected[v.path], rtol=1e-4, atol=1e-6, err_msg=v.path
        )
    logged = [history[f"weight_{name}"][0] for name in model.weighting.names]
    np.testing.assert_allclose(logged, w, rtol=1e-4)
    assert {"cosine_recon", "cosine_fourier"} <= set(history)


# Each weighting once, the loops taking turns: every one trains in a loop, and the robust loops
# (their primary objective a loss of their own) see gradient combinations.
LOOPS = ["standard", "fgsm", "pgd", "trades", "mart", "free"]
LEARNED_LOOPS = ["standard", "fgsm", "pgd", "free"]  # TRADES and MART fix their own weights
PAIRS = [
    (name, loops[k % len(loops)])
    for k, name in enumerate(n for n in list_weightings() if n not in ("fixed", "gradnorm"))
    for loops in [LEARNED_LOOPS if weighting_class(name).learned else LOOPS]
]


@pytest.mark.parametrize(("weighting", "loop"), PAIRS)
def test_every_weighting_trains_in_a_loop_and_its_state_is_in_the_saved_weights(
    weighting, loop, tmp_path
):
    config = AdversarialConfig(eps=0.05, pgd_steps=1, replays=1, guard="off")

    def model():
        return loop_model(
            loop, TASKS[1:], weighting=weighting, adversarial=config, batch_size=len(X)
        )

    trained = model()
    before = [w.copy() for w in trained.get_weights()]
    history = _one_step(trained)
    assert np.isfinite(history["loss"][0])
    assert {"weight_logits", "weight_fourier"} <= set(history)
    if issubclass(weighting_class(weighting), GradientWeighting):
        assert -1 <= history["cosine_fourier"][0] <= 1
    after = trained.get_weights()
    changed = [np.abs(x - y).max() > 0 for x, y in zip(before, after, strict=True)]
    assert sum(changed) >= len(trained.trainable_weights)
    # What the weighting keeps (Nash-MTL's α, OL-AUX's buffer, DWA's sums, RLW's draw) is a
    # model weight: the file a backup writes holds it.
    state = {v.path: v.numpy() for v in trained.non_trainable_weights if weighting in v.path}
    trained.save_weights(tmp_path / "w.weights.h5")
    revived = model()
    revived.load_weights(tmp_path / "w.weights.h5")
    for v in revived.non_trainable_weights:
        if v.path in state:
            np.testing.assert_array_equal(v.numpy(), state[v.path], err_msg=v.path)


def test_a_trades_step_combines_the_primarys_whole_objective():
    # The primary row is TRADES' CE + β·KL: with β = 0 the step is PGD-AT's CE, else it differs.
    config = AdversarialConfig(eps=0.05, pgd_steps=1, beta=6.0)
    model = loop_model("trades", TASKS[1:], weighting="primary_projection", adversarial=config)
    assert model.weighting.names == ["logits", "fourier"]
    history = _one_step(model)
    assert history["robust_loss"][0] > 0 and np.isfinite(history["weight_logits"][0])


@pytest.mark.parametrize("loop", ["auxiliary", "corruption_augment"])
def test_loops_that_fix_their_aux_weights_refuse_a_combination(loop):
    with pytest.raises(ValueError, match="Expected weighting 'fixed'"):
        with_loop(tiny_model(), loop, weighting="pcgrad")


def test_dwa_rolls_its_history_at_each_epochs_end_through_its_callback():
    model = with_loop(tiny_model(TASKS), "standard", weighting="dwa")
    model.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=False)
    history = model.fit(
        X, Y, batch_size=8, epochs=3, verbose=0, callbacks=model.weighting.callbacks()
    ).history
    np.testing.assert_allclose(history["weight_recon"][:2], 1.0)  # the first two epochs
    assert history["weight_recon"][2] != 1.0
    losses = np.array(  # the last two epochs' mean unweighted losses
        [[history[f"{t}_loss"][e] for t in ("logits", "recon", "fourier")] for e in (1, 2)]
    )
    np.testing.assert_allclose(model.weighting.history.numpy(), losses, rtol=1e-5)


def _first_steps(loop, weighting, strategy, weights):
    config = AdversarialConfig(eps=0.1, replays=1)
    with strategy.scope():
        model = tiny_model(TASKS, norm=batch_norm(synchronized=True))
        model.set_weights(weights)
        model = with_loop(model, loop, weighting=weighting, adversarial=config)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    return model, model.fit(dataset, epochs=1, verbose=0, shuffle=False).history


@pytest.mark.parametrize(("loop", "weighting"), [("free", "pcgrad"), ("standard", "mgda")])
def test_two_replicas_combine_the_global_batchs_gradients_like_one(loop, weighting, mirrored):
    weights = tiny_model(TASKS).get_weights()
    one, h_one = _first_steps(loop, weighting, tf.distribute.get_strategy(), weights)
    two, h_two = _first_steps(loop, weighting, mirrored, weights)
    for key in h_one:
        np.testing.assert_allclose(h_one[key], h_two[key], rtol=1e-4, atol=1e-6, err_msg=key)
    for a, b in zip(one.get_weights(), two.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_a_loss_scaled_step_combines_the_unscaled_gradients():
    # mixed_float16: the rows are unscaled before the combination, so the weights and the step
    # are float32's (up to half precision), not the loss scale's; mixed_bfloat16 (no scaling)
    # likewise.
    steps = {}
    for precision in ("float32", "mixed_float16", "mixed_bfloat16"):
        model = loop_model("standard", TASKS, weighting="nash_mtl", precision=precision)
        history = _one_step(model)
        steps[precision] = [history[f"weight_{n}"][0] for n in model.weighting.names]
    for precision in ("mixed_float16", "mixed_bfloat16"):
        np.testing.assert_allclose(steps[precision], steps["float32"], rtol=0.05, err_msg=precision)
