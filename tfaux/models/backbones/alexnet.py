"""AlexNet for CIFAR-sized inputs: five 3x3 convs (64-192-384-256-256) and three max-pools.

Reference:
    Krizhevsky, Sutskever, Hinton. "ImageNet Classification with Deep Convolutional Neural
    Networks", NeurIPS 2012. The CIFAR variant keeps the five conv layers, their filter counts
    (those of torchvision's single-GPU AlexNet) and the pool positions, but uses 3x3 kernels with
    stride 1 and 'same' padding instead of the 11x11/4 and 5x5 ones, and a normalization layer
    after every conv instead of local response normalization. The three fully connected layers
    are replaced by the shared classifier head (global average pooling + dense) that
    `tfaux.models.build` adds to every backbone; this backbone returns the last feature map.
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.models.layers import NormFactory
from tfaux.models.registry import register_backbone, scaled

# Filters of conv1..conv5, and whether a 3x3/2 max-pool follows (after conv1, conv2, conv5).
_CONVS = ((64, True), (192, True), (384, False), (256, False), (256, True))


def _conv_bn_relu(x, filters: int, norm: NormFactory, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@register_backbone
def alexnet(input_shape, width: float = 1.0, norm: NormFactory = None) -> keras.Model:
    """CIFAR AlexNet: conv-norm-ReLU ×5 with max-pools after conv1, conv2, conv5; stride 8."""
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, (filters, pool) in enumerate(_CONVS, start=1):
        x = _conv_bn_relu(x, scaled(filters, width), norm, f"conv{i}")
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"conv{i}_pool")(x)
    # === Functional Model ===
    return keras.Model(inputs, x, name="alexnet")
