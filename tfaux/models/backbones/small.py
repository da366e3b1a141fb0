"""A small 2-conv CNN: the fastest backbone, for tests and quick CPU recipes."""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled


def _conv_block(x, filters: int, norm: NormFactory, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = norm(f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.MaxPooling2D(2, padding="same", name=f"{name}_pool")(x)


@register_backbone
def small_cnn(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """Two conv-BN-ReLU-maxpool blocks (32 and 64 channels at width 1); stride 4."""
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv_block(inputs, scaled(32, width), norm, "block1")
    x = _conv_block(x, scaled(64, width), norm, "block2")
    # === Functional Model ===
    return keras.Model(inputs, x, name="small_cnn")
