"""Every registered backbone: forward, backward, config round trip, norm factory, registry errors.

Parametrized over `list_backbones()`, so a new backbone is tested by registering it. Models are
built once per (name, input shape) at width 0.25 and shared between tests to keep the file fast.
"""

from __future__ import annotations

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaux.models.layers import batch_norm, selective_batch_norm
from tfaux.models.registry import create_backbone, feature_stride, list_backbones

BACKBONES = list_backbones()
WIDTH = 0.25
BATCH = 2
MNIST_SHAPE = (28, 28, 1)
CIFAR_SHAPE = (32, 32, 3)


def _recording_norm():
    """A BatchNorm factory that records the name of every layer it creates."""
    calls: list[str] = []
    make_bn = batch_norm()

    def norm(name: str) -> keras.layers.Layer:
        calls.append(name)
        return make_bn(name)

    return norm, calls


@functools.cache
def _build(name: str, input_shape: tuple[int, int, int]) -> tuple[keras.Model, tuple[str, ...]]:
    norm, calls = _recording_norm()
    keras.utils.set_random_seed(0)
    model = create_backbone(name, input_shape=input_shape, width=WIDTH, norm=norm)
    return model, tuple(calls)


def _images(input_shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(BATCH, *input_shape)).astype("float32")


def _check_forward(name: str, input_shape: tuple[int, int, int]) -> int:
    model, _ = _build(name, input_shape)
    out = keras.ops.convert_to_numpy(model(_images(input_shape), training=False))
    stride = feature_stride(model)
    h, w = input_shape[:2]
    assert model.name == name
    assert out.ndim == 4 and out.shape[0] == BATCH
    assert stride in (2, 4, 8, 16), f"{name}: stride {stride} is not 2^n <= 16"
    assert out.shape[1:3] == (math.ceil(h / stride), math.ceil(w / stride))
    assert out.shape[1:] == tuple(model.output_shape[1:])
    assert np.isfinite(out).all()
    return stride


@pytest.mark.parametrize("name", BACKBONES)
def test_forward(name):
    _check_forward(name, MNIST_SHAPE)


@pytest.mark.parametrize(
    "name,input_shape",
    [
        pytest.param(n, shape, id=f"{n}-{'x'.join(map(str, shape))}")
        for n, shape in [(n, CIFAR_SHAPE) for n in BACKBONES]
        + [("resnet18", (64, 64, 3)), ("efficientnet_b0", (64, 64, 3))]
    ],
)
def test_forward_other_shapes_same_stride(name, input_shape):
    stride = _check_forward(name, input_shape)
    # The stride is a property of the architecture, not of the input size.
    assert stride == feature_stride(_build(name, MNIST_SHAPE)[0])


@pytest.mark.parametrize("name", BACKBONES)
def test_backward(name):
    model, _ = _build(name, MNIST_SHAPE)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(_images(MNIST_SHAPE, seed=1), training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) > 0
    for var, grad in zip(model.trainable_weights, grads, strict=True):
        assert grad is not None, f"{name}: no gradient for {var.path}"
        assert np.isfinite(grad.numpy()).all(), f"{name}: non-finite gradient for {var.path}"
    assert any(np.any(g.numpy() != 0) for g in grads)


@pytest.mark.parametrize("name", BACKBONES)
def test_config_round_trip(name):
    model, _ = _build(name, MNIST_SHAPE)
    clone = keras.Model.from_config(model.get_config())
    assert clone.output_shape == model.output_shape
    clone.set_weights(model.get_weights())
    x = _images(MNIST_SHAPE, seed=2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        atol=1e-5,
    )


@pytest.mark.parametrize("name", BACKBONES)
def test_every_norm_layer_comes_from_the_factory(name):
    model, calls = _build(name, MNIST_SHAPE)
    bn_names = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(calls) > 0
    assert len(bn_names) == len(calls)
    assert sorted(bn_names) == sorted(calls)


def test_width_scales_parameters():
    narrow = create_backbone("resnet8", input_shape=CIFAR_SHAPE, width=0.5)
    wide = create_backbone("resnet8", input_shape=CIFAR_SHAPE, width=1.0)
    assert narrow.count_params() < wide.count_params()
    assert narrow.output_shape[-1] < wide.output_shape[-1]


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="resnet18"):
        create_backbone("resnet-18", input_shape=CIFAR_SHAPE)


def test_families_are_registered():
    expected = {
        "alexnet",
        "efficientnet_b0",
        "googlenet",
        "mobilenetv2",
        "resnet8",
        "resnet18",
        "resnet20",
        "resnet34",
        "resnet50",
        "resnext29",
        "wrn_16_2",
        "wrn_16_4",
        "wrn_28_10",
    }
    assert expected <= set(BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_selective_batch_norm_plugs_into_every_backbone(name):
    """Through the norm factory, SBN on [clean, corrupted] leaves every moving statistic exactly
    where plain BatchNorm on the clean images alone would (seed 001's Selective BatchNorm)."""
    clean = np.random.default_rng(0).random((2, *CIFAR_SHAPE), dtype=np.float32)
    corrupted = 4 * clean + 1  # a chunk with very different statistics
    keras.utils.set_random_seed(0)
    selective = create_backbone(
        name, input_shape=CIFAR_SHAPE, width=WIDTH, norm=selective_batch_norm(2)
    )
    keras.utils.set_random_seed(0)
    plain = create_backbone(name, input_shape=CIFAR_SHAPE, width=WIDTH, norm=batch_norm())
    plain.set_weights(selective.get_weights())
    keras.utils.set_random_seed(1)
    selective(np.concatenate([clean, corrupted]), training=True)
    keras.utils.set_random_seed(1)
    plain(clean, training=True)
    moving = [w for w in selective.weights if "moving" in w.path]
    assert moving
    for a, b in zip(moving, [w for w in plain.weights if "moving" in w.path], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.path)
