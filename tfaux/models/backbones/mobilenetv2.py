"""MobileNetV2 for CIFAR: inverted residual blocks with linear bottlenecks.

Reference:
    Sandler, Howard, Zhu, Zhmoginov, Chen. "MobileNetV2: Inverted Residuals and Linear
    Bottlenecks", CVPR 2018 (Table 2); CIFAR layout of kuangliu/pytorch-cifar
    `models/mobilenetv2.py`: stem stride 1 and the second stage's stride 1 instead of 2 (total
    stride 8 instead of 32), ReLU instead of ReLU6, a projected shortcut on stride-1 blocks whose
    channel count changes.
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled

# (expansion, out_channels, num_blocks, stride) per stage; kuangliu's CIFAR strides.
_CFG = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),  # stride 2 → 1 for 32 px inputs
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _inverted_residual(x, out_channels: int, expansion: int, strides: int, norm, name: str):
    """1x1 expand (ReLU), 3x3 depthwise (ReLU), 1x1 linear projection; residual if stride 1."""
    inputs = x
    in_channels = x.shape[-1]
    x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{name}_expand_conv")(x)
    x = norm(f"{name}_expand_bn")(x)
    x = layers.ReLU(name=f"{name}_expand_relu")(x)
    x = layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(x)
    x = norm(f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = norm(f"{name}_project_bn")(x)
    if strides != 1:
        return x
    shortcut = inputs
    if in_channels != out_channels:
        shortcut = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{name}_shortcut_conv")(
            inputs
        )
        shortcut = norm(f"{name}_shortcut_bn")(shortcut)
    return layers.Add(name=f"{name}_add")([shortcut, x])


@register_backbone
def mobilenetv2(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """CIFAR MobileNetV2: 3x3 stem (stride 1), 17 inverted residuals, 1x1 conv to 1280; stride 8.

    Unlike the paper, which keeps 1280 channels for width < 1, the last conv scales with `width`
    too, so narrow CPU models stay small.
    """
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = layers.Conv2D(scaled(32, width), 3, padding="same", use_bias=False, name="stem_conv")(
        inputs
    )
    x = norm("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, (expansion, out_channels, num_blocks, stride) in enumerate(_CFG):
        for b in range(num_blocks):
            x = _inverted_residual(
                x,
                scaled(out_channels, width),
                expansion,
                stride if b == 0 else 1,
                norm,
                f"stage{s + 1}_block{b + 1}",
            )
    x = layers.Conv2D(scaled(1280, width), 1, use_bias=False, name="head_conv")(x)
    x = norm("head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    # === Functional Model ===
    return keras.Model(inputs, x, name="mobilenetv2")
