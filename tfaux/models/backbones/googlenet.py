"""GoogLeNet (Inception v1) for CIFAR: a 3x3 stem and nine Inception modules.

Reference:
    Szegedy et al. "Going Deeper with Convolutions", CVPR 2015; CIFAR layout of
    kuangliu/pytorch-cifar `models/googlenet.py` (BatchNorm after every conv, the 5x5 branch
    as two 3x3 convs, no 7x7 stem, no auxiliary classifiers).
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled

# (n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj) per module, from Table 1 of the paper.
_INCEPTION = {
    "a3": (64, 96, 128, 16, 32, 32),
    "b3": (128, 128, 192, 32, 96, 64),
    "a4": (192, 96, 208, 16, 48, 64),
    "b4": (160, 112, 224, 24, 64, 64),
    "c4": (128, 128, 256, 24, 64, 64),
    "d4": (112, 144, 288, 32, 64, 64),
    "e4": (256, 160, 320, 32, 128, 128),
    "a5": (256, 160, 320, 32, 128, 128),
    "b5": (384, 192, 384, 48, 128, 128),
}


def _conv_bn_relu(x, filters: int, kernel_size: int, norm: NormFactory, name: str):
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _inception(x, filters: tuple[int, ...], norm: NormFactory, name: str):
    """Four parallel branches (1x1 · 1x1→3x3 · 1x1→3x3→3x3 · maxpool→1x1), concatenated."""
    n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj = filters
    b1 = _conv_bn_relu(x, n1x1, 1, norm, f"{name}_b1")
    b2 = _conv_bn_relu(x, n3x3red, 1, norm, f"{name}_b2_reduce")
    b2 = _conv_bn_relu(b2, n3x3, 3, norm, f"{name}_b2")
    b3 = _conv_bn_relu(x, n5x5red, 1, norm, f"{name}_b3_reduce")
    b3 = _conv_bn_relu(b3, n5x5, 3, norm, f"{name}_b3_a")
    b3 = _conv_bn_relu(b3, n5x5, 3, norm, f"{name}_b3_b")
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_b4_pool")(x)
    b4 = _conv_bn_relu(b4, pool_proj, 1, norm, f"{name}_b4")
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


def _maxpool(x, name: str):
    return layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)


@register_backbone
def googlenet(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """CIFAR GoogLeNet: 3x3 stem (192), a3 b3, maxpool, a4–e4, maxpool, a5 b5; stride 4."""
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = _conv_bn_relu(inputs, scaled(192, width), 3, norm, "stem")
    for module in ("a3", "b3", "pool3", "a4", "b4", "c4", "d4", "e4", "pool4", "a5", "b5"):
        if module.startswith("pool"):
            x = _maxpool(x, module)
        else:
            filters = tuple(scaled(f, width) for f in _INCEPTION[module])
            x = _inception(x, filters, norm, f"inception_{module}")
    # === Functional Model ===
    return keras.Model(inputs, x, name="googlenet")
