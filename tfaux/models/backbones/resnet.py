"""ResNets with CIFAR stems: the 6n+2 CIFAR nets and the 4-stage ImageNet-width nets.

Reference:
    He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", CVPR 2016
    (§4.2 for the 6n+2-layer CIFAR ResNets); the 4-stage variants follow
    kuangliu/pytorch-cifar `models/resnet.py` (3x3 stem with stride 1, no max-pool).
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


def _shortcut(x, filters: int, strides: int, norm: NormFactory, name: str):
    # Projection (1x1 conv + norm) only where the shape changes; identity otherwise.
    if strides == 1 and x.shape[-1] == filters:
        return x
    x = _conv(filters, 1, strides, f"{name}_shortcut_conv")(x)
    return norm(f"{name}_shortcut_bn")(x)


def _basic_block(x, filters: int, strides: int, norm: NormFactory, name: str):
    """3x3 conv-norm-ReLU, 3x3 conv-norm, add the shortcut, ReLU (expansion 1)."""
    shortcut = _shortcut(x, filters, strides, norm, name)
    x = _conv(filters, 3, strides, f"{name}_1_conv")(x)
    x = norm(f"{name}_1_bn")(x)
    x = layers.ReLU(name=f"{name}_1_relu")(x)
    x = _conv(filters, 3, 1, f"{name}_2_conv")(x)
    x = norm(f"{name}_2_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def _bottleneck_block(x, filters: int, strides: int, norm: NormFactory, name: str):
    """1x1 reduce, 3x3 (strided), 1x1 expand to 4 * `filters`, add the shortcut, ReLU."""
    shortcut = _shortcut(x, 4 * filters, strides, norm, name)
    x = _conv(filters, 1, 1, f"{name}_1_conv")(x)
    x = norm(f"{name}_1_bn")(x)
    x = layers.ReLU(name=f"{name}_1_relu")(x)
    x = _conv(filters, 3, strides, f"{name}_2_conv")(x)
    x = norm(f"{name}_2_bn")(x)
    x = layers.ReLU(name=f"{name}_2_relu")(x)
    x = _conv(4 * filters, 1, 1, f"{name}_3_conv")(x)
    x = norm(f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


_BLOCKS = {"basic": _basic_block, "bottleneck": _bottleneck_block}


def resnet(
    input_shape,
    stage_filters: tuple[int, ...],
    stage_blocks: tuple[int, ...],
    *,
    block: str = "basic",
    stem_filters: int = 64,
    width: float = 1.0,
    norm: NormFactory = None,
    name: str = "resnet",
) -> keras.Model:
    """A ResNet: 3x3 stem, then stages of residual blocks; every stage after the first halves
    the resolution.

    Args:
        input_shape: (H, W, C) of the images.
        stage_filters: filters of each stage (before the bottleneck's ×4 expansion).
        stage_blocks: number of blocks in each stage.
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1-3x3-1x1, expansion 4).
        stem_filters: filters of the 3x3 stem conv.
        width: channel multiplier applied to every conv.
        norm: normalization factory `norm(name) -> layer`.
        name: model name.

    Returns:
        A functional `keras.Model` from images to the last stage's feature map
        (stride 2^(len(stages) - 1)).
    """
    if block not in _BLOCKS:
        raise ValueError(f"Expected block in {sorted(_BLOCKS)}. Received: block={block!r}")
    if len(stage_filters) != len(stage_blocks):
        raise ValueError(
            "Expected one block count per stage. "
            f"Received: stage_filters={stage_filters}, stage_blocks={stage_blocks}"
        )
    block_fn = _BLOCKS[block]
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv(scaled(stem_filters, width), 3, 1, "stem_conv")(inputs)
    x = norm("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, (filters, blocks) in enumerate(zip(stage_filters, stage_blocks, strict=True)):
        for b in range(blocks):
            strides = 2 if s > 0 and b == 0 else 1
            x = block_fn(x, scaled(filters, width), strides, norm, f"stage{s + 1}_block{b + 1}")
    # === Functional Model ===
    return keras.Model(inputs, x, name=name)


def _cifar_resnet(input_shape, n: int, width: float, norm: NormFactory, name: str):
    # He et al. §4.2: 6n + 2 layers, 3 stages of n basic blocks with 16, 32, 64 filters.
    # Projection shortcuts (option B) rather than the paper's zero-padding (option A).
    return resnet(
        input_shape, (16, 32, 64), (n, n, n), stem_filters=16, width=width, norm=norm, name=name
    )


@register_backbone
def resnet8(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """CIFAR ResNet-8 (n=1, 16/32/64 filters); stride 4."""
    return _cifar_resnet(input_shape, 1, width, norm, "resnet8")


@register_backbone
def resnet20(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """CIFAR ResNet-20 (n=3, 16/32/64 filters); stride 4."""
    return _cifar_resnet(input_shape, 3, width, norm, "resnet20")


@register_backbone
def resnet18(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """ResNet-18: basic blocks [2, 2, 2, 2], 64–512 filters; stride 8."""
    return resnet(
        input_shape, (64, 128, 256, 512), (2, 2, 2, 2), width=width, norm=norm, name="resnet18"
    )


@register_backbone
def resnet34(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """ResNet-34: basic blocks [3, 4, 6, 3], 64–512 filters; stride 8."""
    return resnet(
        input_shape, (64, 128, 256, 512), (3, 4, 6, 3), width=width, norm=norm, name="resnet34"
    )


@register_backbone
def resnet50(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3], 256–2048 output filters; stride 8."""
    return resnet(
        input_shape,
        (64, 128, 256, 512),
        (3, 4, 6, 3),
        block="bottleneck",
        width=width,
        norm=norm,
        name="resnet50",
    )
