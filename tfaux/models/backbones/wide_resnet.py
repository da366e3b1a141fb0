"""Wide Residual Networks WRN-d-k: pre-activation basic blocks, k times wider than ResNet.

Reference:
    Zagoruyko, Komodakis. "Wide Residual Networks", BMVC 2016 (Table 1: conv1 16 filters, then
    3 groups of (d - 4) / 6 blocks with 16k, 32k, 64k filters, dropout between the two convs).
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled


def _conv(filters: int, kernel_size: int, strides: int, name: str) -> layers.Layer:
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name
    )


def _wide_block(x, filters: int, strides: int, dropout: float, norm: NormFactory, name: str):
    """Pre-activation block: norm-ReLU-conv3x3, norm-ReLU-(dropout)-conv3x3, add."""
    preact = norm(f"{name}_1_bn")(x)
    preact = layers.ReLU(name=f"{name}_1_relu")(preact)
    # Where the shape changes, the shortcut is a 1x1 conv of the pre-activated input (no norm
    # of its own: the next block's pre-activation normalizes the sum).
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, f"{name}_shortcut_conv")(preact)
    else:
        shortcut = x
    y = _conv(filters, 3, strides, f"{name}_1_conv")(preact)
    y = norm(f"{name}_2_bn")(y)
    y = layers.ReLU(name=f"{name}_2_relu")(y)
    if dropout > 0:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = _conv(filters, 3, 1, f"{name}_2_conv")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def wide_resnet(
    input_shape,
    depth: int,
    widen_factor: int,
    *,
    dropout: float = 0.0,
    width: float = 1.0,
    norm: NormFactory = None,
    name: str = "wide_resnet",
) -> keras.Model:
    """WRN-`depth`-`widen_factor`: 3x3 stem, 3 groups of pre-activation blocks, final norm-ReLU.

    Args:
        input_shape: (H, W, C) of the images.
        depth: total depth d; (d - 4) must be divisible by 6.
        widen_factor: k, the widening of the three groups (16k, 32k, 64k filters).
        dropout: dropout rate between the two convs of every block (0.3 in the paper's
            CIFAR runs with dropout; 0 disables it).
        width: channel multiplier on top of `widen_factor`.
        norm: normalization factory `norm(name) -> layer`.
        name: model name.

    Returns:
        A functional `keras.Model` from images to the feature map (stride 4).
    """
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(f"Expected depth = 6n + 4 with n >= 1. Received: depth={depth}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout}")
    n = (depth - 4) // 6
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(scaled(16, width), 3, 1, "stem_conv")(inputs)
    for g, filters in enumerate((16 * widen_factor, 32 * widen_factor, 64 * widen_factor)):
        for b in range(n):
            strides = 2 if g > 0 and b == 0 else 1
            x = _wide_block(
                x, scaled(filters, width), strides, dropout, norm, f"group{g + 1}_block{b + 1}"
            )
    x = norm("final_bn")(x)
    x = layers.ReLU(name="final_relu")(x)
    # === Functional Model ===
    return keras.Model(inputs, x, name=name)


@register_backbone
def wrn_16_2(
    input_shape, width: float = 1.0, norm: NormFactory = None, dropout: float = 0.0
) -> keras.Model:
    """WRN-16-2: 2 blocks per group, 32/64/128 filters; stride 4."""
    return wide_resnet(input_shape, 16, 2, dropout=dropout, width=width, norm=norm, name="wrn_16_2")


@register_backbone
def wrn_16_4(
    input_shape, width: float = 1.0, norm: NormFactory = None, dropout: float = 0.0
) -> keras.Model:
    """WRN-16-4: 2 blocks per group, 64/128/256 filters; stride 4."""
    return wide_resnet(input_shape, 16, 4, dropout=dropout, width=width, norm=norm, name="wrn_16_4")


@register_backbone
def wrn_28_10(
    input_shape, width: float = 1.0, norm: NormFactory = None, dropout: float = 0.0
) -> keras.Model:
    """WRN-28-10: 4 blocks per group, 160/320/640 filters; stride 4."""
    return wide_resnet(
        input_shape, 28, 10, dropout=dropout, width=width, norm=norm, name="wrn_28_10"
    )
