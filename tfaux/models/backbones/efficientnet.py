"""EfficientNet-B0 for CIFAR: MBConv blocks (expansion, depthwise conv, squeeze-excitation, swish).

Reference:
    Tan, Le. "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
    ICML 2019 (Table 1, the B0 stage table); CIFAR layout of kuangliu/pytorch-cifar
    `models/efficientnet.py`: stem stride 1 instead of 2 (total stride 16 instead of 32), no
    1x1 conv head to 1280 channels, squeeze ratio 0.25 of the block's input channels.
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled

# (expansion, out_channels, num_blocks, kernel_size, stride) per stage: Table 1 of the paper.
_B0 = (
    (1, 16, 1, 3, 1),
    (6, 24, 2, 3, 2),
    (6, 40, 2, 5, 2),
    (6, 80, 3, 3, 2),
    (6, 112, 3, 5, 1),
    (6, 192, 4, 5, 2),
    (6, 320, 1, 3, 1),
)


def _squeeze_excite(x, in_channels: int, se_ratio: float, name: str):
    """Channel attention: global average pool, 1x1 conv (swish), 1x1 conv (sigmoid), rescale."""
    channels = x.shape[-1]
    se = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    se_channels = max(1, int(in_channels * se_ratio))
    se = layers.Conv2D(se_channels, 1, activation="swish", name=f"{name}_reduce")(se)
    se = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(se)
    return layers.Multiply(name=f"{name}_excite")([x, se])


def _mbconv(
    x,
    out_channels: int,
    kernel_size: int,
    strides: int,
    expansion: int,
    se_ratio: float,
    drop_rate: float,
    norm: NormFactory,
    name: str,
):
    """Inverted residual: 1x1 expand, depthwise conv, squeeze-excite, 1x1 project, skip."""
    inputs = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{name}_expand_conv")(x)
        x = norm(f"{name}_expand_bn")(x)
        x = layers.Activation("swish", name=f"{name}_expand_swish")(x)
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = norm(f"{name}_dw_bn")(x)
    x = layers.Activation("swish", name=f"{name}_dw_swish")(x)
    if se_ratio > 0:
        x = _squeeze_excite(x, in_channels, se_ratio, f"{name}_se")
    x = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = norm(f"{name}_project_bn")(x)
    if strides == 1 and in_channels == out_channels:
        if drop_rate > 0:
            # Drop connect (stochastic depth): drop the whole residual branch per sample.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def efficientnet(
    input_shape,
    stages: tuple[tuple[int, int, int, int, int], ...] = _B0,
    *,
    stem_filters: int = 32,
    se_ratio: float = 0.25,
    drop_connect_rate: float = 0.2,
    width: float = 1.0,
    norm: NormFactory = None,
    name: str = "efficientnet",
) -> keras.Model:
    """A CIFAR EfficientNet: 3x3 stem (stride 1, swish), then MBConv stages from `stages`.

    Args:
        input_shape: (H, W, C) of the images.
        stages: (expansion, out_channels, num_blocks, kernel_size, stride) per stage.
        stem_filters: filters of the 3x3 stem conv.
        se_ratio: squeeze-excitation channels as a fraction of a block's input channels.
        drop_connect_rate: drop-connect rate of the last block, rising linearly from 0.
        width: channel multiplier.
        norm: normalization factory `norm(name) -> layer`.
        name: model name.

    Returns:
        A functional `keras.Model` from images to the last block's feature map.
    """
    if not 0.0 <= drop_connect_rate < 1.0:
        raise ValueError(
            f"Expected 0 <= drop_connect_rate < 1. Received: drop_connect_rate={drop_connect_rate}"
        )
    total_blocks = sum(stage[2] for stage in stages)
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Conv2D(
        scaled(stem_filters, width), 3, padding="same", use_bias=False, name="stem_conv"
    )(inputs)
    x = norm("stem_bn")(x)
    x = layers.Activation("swish", name="stem_swish")(x)
    block = 0
    for s, (expansion, out_channels, num_blocks, kernel_size, stride) in enumerate(stages):
        for b in range(num_blocks):
            x = _mbconv(
                x,
                scaled(out_channels, width),
                kernel_size,
                stride if b == 0 else 1,
                expansion,
                se_ratio,
                drop_connect_rate * block / total_blocks,
                norm,
                f"stage{s + 1}_block{b + 1}",
            )
            block += 1
    # === Functional Model ===
    return keras.Model(inputs, x, name=name)


@register_backbone
def efficientnet_b0(
    input_shape,
    width: float = 1.0,
    norm: NormFactory = None,
    drop_connect_rate: float = 0.2,
) -> keras.Model:
    """EfficientNet-B0 with a stride-1 stem: 16 MBConv blocks, 320 channels; stride 16."""
    return efficientnet(
        input_shape,
        _B0,
        drop_connect_rate=drop_connect_rate,
        width=width,
        norm=norm,
        name="efficientnet_b0",
    )
