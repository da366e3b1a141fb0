"""Seed 003's random-sign perturbation: the `RandomSign` layer and `with_random_sign`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_images
from tfaux.models.layers import RandomSign
from tfaux.models.random_sign import with_random_sign
from tfaux.models.registry import create_backbone


def normal(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# === RandomSign ===


def test_identity_at_inference():
    layer = RandomSign(eps=0.3, seed=0)
    x = normal((4, 8, 8, 3))
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(layer(x), x)  # training=None


def test_training_scales_each_element_by_one_plus_or_minus_eps():
    x = normal((8, 64))
    x[0, :10] = 0.0
    out = RandomSign(eps=0.2, seed=1)(x, training=True).numpy()
    np.testing.assert_allclose(np.abs(out - x), 0.2 * np.abs(x), atol=1e-6)
    assert np.all(out[0, :10] == 0.0)  # zeros stay zero
    assert np.all(np.sign(out) == np.sign(x))  # eps < 1 keeps every sign


@pytest.mark.parametrize("probability", [0.0, 0.5, 0.9, 1.0])
def test_fraction_of_l_equal_sgn_is_probability(probability):
    # l(x) = sgn(x) means g(x) - x = eps * x * sgn(x) = eps * |x| > 0, for either sign of x.
    x = normal((200, 1000))  # 10^5 nonzero elements of each sign (about)
    out = RandomSign(eps=0.1, probability=probability, seed=2)(x, training=True).numpy()
    for part in (x > 0, x < 0):
        fraction = np.mean(out[part] > x[part])
        bound = 5 * np.sqrt(probability * (1 - probability) / part.sum())  # 5 binomial sigmas
        assert abs(fraction - probability) <= bound, (fraction, probability, bound)


def test_gradient_is_one_plus_eps_times_the_sign_pattern():
    eps = 0.25
    x = tf.constant(normal((6, 40)))
    x = tf.tensor_scatter_nd_update(x, [[0, 0], [1, 1]], [0.0, 0.0])
    layer = RandomSign(eps=eps, seed=3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
        total = tf.reduce_sum(out)
    grad = tape.gradient(total, x).numpy()
    x, out = x.numpy(), out.numpy()
    nonzero = x != 0
    pattern = np.zeros_like(x)
    pattern[nonzero] = (out[nonzero] - x[nonzero]) / (eps * x[nonzero])  # l(x) = ±1; 0 at 0
    np.testing.assert_allclose(np.abs(pattern[nonzero]), 1.0, atol=1e-4)
    assert 0 < np.mean(pattern == 1) < 1  # both signs occur
    pattern = np.round(pattern)
    np.testing.assert_allclose(grad, 1.0 + eps * pattern, atol=1e-6)
    assert grad[0, 0] == 1.0 and grad[1, 1] == 1.0


def test_same_seed_same_output_and_fresh_draws_per_call():
    x = normal((16, 32))
    a, b = RandomSign(0.1, seed=7), RandomSign(0.1, seed=7)
    first_a, first_b = a(x, training=True).numpy(), b(x, training=True).numpy()
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(a(x, training=True).numpy(), first_a)  # the generator advances
    assert not np.array_equal(RandomSign(0.1, seed=8)(x, training=True).numpy(), first_a)


def test_works_in_tf_function_with_new_draws_per_call():
    layer = RandomSign(0.1, seed=4)
    x = tf.constant(normal((4, 100)))
    step = tf.function(lambda t: layer(t, training=True))
    first, second = step(x).numpy(), step(x).numpy()
    np.testing.assert_allclose(np.abs(first - x.numpy()), 0.1 * np.abs(x.numpy()), atol=1e-6)
    assert not np.array_equal(first, second)


def test_replicas_draw_their_own_patterns(mirrored):
    with mirrored.scope():
        layer = RandomSign(0.1, seed=5)
    x = tf.constant(normal((4, 50)))

    @tf.function
    def step(t):
        return mirrored.run(lambda v: layer(v, training=True), args=(t,))

    first, second = (v.numpy() for v in mirrored.experimental_local_results(step(x)))
    for out in (first, second):
        np.testing.assert_allclose(np.abs(out - x.numpy()), 0.1 * np.abs(x.numpy()), atol=1e-6)
    assert not np.array_equal(first, second)


def test_config_round_trip():
    layer = RandomSign(eps=0.05, probability=0.7, seed=11, name="rs")
    config = layer.get_config()
    assert {k: config[k] for k in ("eps", "probability", "seed", "name")} == {
        "eps": 0.05,
        "probability": 0.7,
        "seed": 11,
        "name": "rs",
    }
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, RandomSign)
    assert clone.get_config() == config
    x = normal((3, 20))
    np.testing.assert_array_equal(clone(x, training=True), RandomSign(**config)(x, training=True))


@pytest.mark.parametrize(
    "kwargs", [{"eps": -0.1}, {"eps": float("nan")}, {"probability": -0.1}, {"probability": 1.5}]
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="Expected .* Received"):
        RandomSign(**kwargs)


# === with_random_sign ===

CASES = {
    "resnet8": ["stage1_block1_out", "stage2_block1_out"],  # Add layers in the graph
    "small_cnn": ["block1_relu", "block2_pool"],
    "googlenet": ["inception_a3_concat", "inception_a3_b2_reduce_relu"],  # inside a branch
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_with_random_sign_shares_layers_and_matches_at_inference(name):
    keras.utils.set_random_seed(0)
    backbone = create_backbone(name, input_shape=(28, 28, 1), width=0.25)
    after = CASES[name]
    model = with_random_sign(backbone, after, eps=0.1, seed=3)
    x = random_images(4, (28, 28, 1))

    assert model.input_shape == backbone.input_shape
    assert model.output_shape == backbone.output_shape
    inserted = [model.get_layer(f"{n}_random_sign") for n in after]
    assert sum(isinstance(layer, RandomSign) for layer in model.layers) == len(after)
    assert [layer.seed for layer in inserted] == [3, 4]  # seed + position in `after`
    assert all(layer.eps == 0.1 and layer.probability == 0.5 for layer in inserted)
    hidden = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert all(model.get_layer(layer.name) is layer for layer in hidden)
    assert len(model.layers) == len(backbone.layers) + len(after)
    assert {id(w) for w in model.weights} == {id(w) for w in backbone.weights}

    # Each RandomSign is called once, on the output of its layer.
    for layer_name in after:
        (node,) = model.get_layer(f"{layer_name}_random_sign")._inbound_nodes
        assert [parent.operation.name for parent in node.parent_nodes] == [layer_name]

    np.testing.assert_allclose(model(x, training=False), backbone(x, training=False), atol=1e-6)
    out_model, out_backbone = model(x, training=True), backbone(x, training=True)
    assert not np.allclose(out_model, out_backbone, atol=1e-3)

    # Shared variables: changing the backbone's weights changes the new model the same way.
    kernel = backbone.layers[1].kernel
    before = model(x, training=False).numpy()
    kernel.assign(kernel * 2.0 + 0.01)
    after_change = model(x, training=False).numpy()
    assert not np.allclose(before, after_change)
    np.testing.assert_allclose(after_change, backbone(x, training=False), atol=1e-6)


def test_with_random_sign_trains_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = create_backbone("small_cnn", input_shape=(16, 16, 1), width=0.25)
    model = with_random_sign(backbone, ["block1_relu"], eps=0.2, seed=0)
    x = tf.constant(random_images(4, (16, 16, 1)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("block1_relu_random_sign"), RandomSign)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_with_random_sign_rejects_bad_names():
    backbone = create_backbone("resnet8", input_shape=(28, 28, 1), width=0.25)
    with pytest.raises(
        ValueError, match="Unknown backbone layer 'stage1_block1_ot'.*stage1_block1_out"
    ):
        with_random_sign(backbone, ["stage1_block1_ot"], eps=0.1)
    with pytest.raises(ValueError, match="input layer"):
        with_random_sign(backbone, [backbone.layers[0].name], eps=0.1)
    with pytest.raises(ValueError, match="distinct"):
        with_random_sign(backbone, ["stem_relu", "stem_relu"], eps=0.1)
    with pytest.raises(ValueError, match="eps"):
        with_random_sign(backbone, ["stem_relu"], eps=-1.0)
    assert with_random_sign(backbone, [], eps=0.1) is backbone


def test_build_puts_random_sign_on_the_input_and_after_hidden_layers():
    from tfaux import build
    from tfaux.config import RandomSignConfig

    config = RandomSignConfig(after=("input", "stage1_block1_out"), eps=0.2)
    kwargs = {"input_shape": (28, 28, 1), "num_classes": 10, "width": 0.5}
    keras.utils.set_random_seed(0)
    r_model = build("resnet8", random_sign=config, **kwargs)
    keras.utils.set_random_seed(0)
    base = build("resnet8", **kwargs)
    names = [layer.name for layer in r_model.layers]
    assert "input_random_sign" in names
    backbone = r_model.get_layer("resnet8")
    assert "stage1_block1_out_random_sign" in [layer.name for layer in backbone.layers]
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    base.set_weights(r_model.get_weights())  # same variables in the same order
    np.testing.assert_allclose(r_model(x)["logits"], base(x)["logits"], atol=1e-5)
    assert not np.allclose(r_model(x, training=True)["logits"], base(x, training=True)["logits"])
