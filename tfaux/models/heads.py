"""Heads added on top of a backbone's feature map; one function per kind, shared by all tasks."""

from __future__ import annotations

import math

from keras import layers

from tfaux.models.layers import NormFactory, batch_norm


def classifier(features, num_classes: int, *, dropout: float = 0.0):
    """Global average pooling + dense → `logits` (the only output that is deployed).

    The dense layer computes in float32 under any dtype policy: logits, softmax and
    cross-entropy in 16 bits lose the small differences between classes (tfaux.precision).
    """
    x = layers.GlobalAveragePooling2D(name="pool")(features)
    if dropout:
        x = layers.Dropout(dropout, name="pool_dropout")(x)
    return layers.Dense(num_classes, name="logits", dtype="float32")(x)


def decoder(
    features,
    *,
    output_shape: tuple[int, int, int],
    stride: int,
    name: str,
    activation: str | None = None,
    norm: NormFactory | None = None,
    min_channels: int = 8,
):
    """Image decoder of seed 000 Fig. 1: upsample the feature map by 2^n back to the input size.

    Each of the n steps is a stride-2 transposed conv + norm + ReLU, halving the channels; a
    3x3 conv maps to `output_shape[-1]` channels. With 'same' padding the encoder rounds odd sizes
    up (28 → 14 → 7 → 4), so the upsampled map (32) is centre-cropped back to the input (28).

    Args:
        features: the backbone's feature map (KerasTensor).
        output_shape: (H, W, C) the decoder must produce.
        stride: the backbone's feature stride 2^n.
        name: output name; also the prefix of every layer of the decoder.
        activation: final activation ("sigmoid" for images in [0, 1], None for Fourier maps).
        norm: norm factory for the upsampling blocks (default BatchNorm, momentum 0.9).

    Returns:
        A KerasTensor of shape (batch, *output_shape), produced by a layer named `name`.
    """
    norm = norm or batch_norm()
    height, width, channels = output_shape
    x = features
    filters = features.shape[-1]
    for i in range(1, int(math.log2(stride)) + 1):
        filters = max(min_channels, filters // 2)
        x = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_up{i}"
        )(x)
        x = norm(f"{name}_up{i}_bn")(x)
        x = layers.ReLU(name=f"{name}_up{i}_relu")(x)
    x = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv")(x)
    if (x.shape[1], x.shape[2]) != (height, width):
        if x.shape[1] >= height and x.shape[2] >= width:
            x = layers.CenterCrop(height, width, name=f"{name}_crop")(x)
        else:
            x = layers.Resizing(height, width, name=f"{name}_resize")(x)
    # float32 output under any dtype policy: the loss is computed in float32 (tfaux.precision)
    return layers.Activation(activation or "linear", name=name, dtype="float32")(x)
