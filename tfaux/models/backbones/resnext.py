"""ResNeXt-29 for CIFAR: bottleneck blocks whose 3x3 conv is split into `cardinality` groups.

Reference:
    Xie, Girshick, Dollár, Tu, He. "Aggregated Residual Transformations for Deep Neural
    Networks", CVPR 2017 (§5.2, CIFAR); layout of kuangliu/pytorch-cifar `models/resnext.py`
    (ResNeXt29_32x4d).
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled

_EXPANSION = 2  # block output = 2 × group width, as in kuangliu's ResNeXt `Block`


def _conv(filters: int, kernel_size: int, name: str, strides: int = 1, groups: int = 1):
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        groups=groups,
        use_bias=False,
        name=name,
    )


def _resnext_block(x, group_width: int, cardinality: int, strides: int, norm, name: str):
    """1x1 conv, grouped 3x3 conv (strided), 1x1 conv to 2 × `group_width`, add, ReLU."""
    out_filters = _EXPANSION * group_width
    shortcut = x
    if strides != 1 or x.shape[-1] != out_filters:
        shortcut = _conv(out_filters, 1, f"{name}_shortcut_conv", strides)(x)
        shortcut = norm(f"{name}_shortcut_bn")(shortcut)
    x = _conv(group_width, 1, f"{name}_1_conv")(x)
    x = norm(f"{name}_1_bn")(x)
    x = layers.ReLU(name=f"{name}_1_relu")(x)
    x = _conv(group_width, 3, f"{name}_2_conv", strides, groups=cardinality)(x)
    x = norm(f"{name}_2_bn")(x)
    x = layers.ReLU(name=f"{name}_2_relu")(x)
    x = _conv(out_filters, 1, f"{name}_3_conv")(x)
    x = norm(f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def resnext(
    input_shape,
    stage_blocks: tuple[int, ...] = (3, 3, 3),
    *,
    cardinality: int = 32,
    bottleneck_width: int = 4,
    width: float = 1.0,
    norm: NormFactory = None,
    name: str = "resnext",
) -> keras.Model:
    """A CIFAR ResNeXt: 3x3 stem with 64 filters, then stages whose bottleneck width doubles.

    The width multiplier scales the group width (cardinality × bottleneck width) and keeps the
    cardinality, rounding to a multiple of it, so every group keeps at least one channel.

    Args:
        input_shape: (H, W, C) of the images.
        stage_blocks: number of blocks per stage; every stage after the first has stride 2.
        cardinality: number of groups of the 3x3 conv.
        bottleneck_width: channels per group in the first stage.
        width: channel multiplier.
        norm: normalization factory `norm(name) -> layer`.
        name: model name.

    Returns:
        A functional `keras.Model` from images to the last stage's feature map.
    """
    if cardinality < 1 or bottleneck_width < 1:
        raise ValueError(
            "Expected cardinality >= 1 and bottleneck_width >= 1. "
            f"Received: cardinality={cardinality}, bottleneck_width={bottleneck_width}"
        )
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    # The paper's 3x3 stem; kuangliu's ResNeXt uses a 1x1 one.
    x = layers.Conv2D(scaled(64, width), 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = norm("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, blocks in enumerate(stage_blocks):
        group_width = scaled(cardinality * bottleneck_width * 2**s, width, divisor=cardinality)
        for b in range(blocks):
            strides = 2 if s > 0 and b == 0 else 1
            block_name = f"stage{s + 1}_block{b + 1}"
            x = _resnext_block(x, group_width, cardinality, strides, norm, block_name)
    # === Functional Model ===
    return keras.Model(inputs, x, name=name)


@register_backbone
def resnext29(
    input_shape, width: float = 1.0, norm: NormFactory = None, cardinality: int = 32
) -> keras.Model:
    """ResNeXt-29 (32x4d): 3 stages × 3 blocks, cardinality 32, bottleneck width 4; stride 4."""
    return resnext(
        input_shape,
        (3, 3, 3),
        cardinality=cardinality,
        bottleneck_width=4,
        width=width,
        norm=norm,
        name="resnext29",
    )
