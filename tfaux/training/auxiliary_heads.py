"""Auxiliary classifiers of Auxiliary Training (Zhang et al. 2020, §3.3), one per corruption.

Head j sees only chunk j of the training batch (the images of corruption T_j) through
`ChunkSelect`: attention module (one conv + one deconv, a sigmoid mask on the features, as in
SCAN) → bottleneck (1×1, 3×3, 1×1 convs) → global pooling → a dense layer shaped exactly like the
primary classifier's, so the weight-merging penalty ‖θ_0 − θ_j‖² is defined.
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.data.pipeline import labels_of
from tfaux.models.layers import ChunkSelect, batch_norm, single_chunk
from tfaux.tasks.base import AuxTask


@keras.saving.register_keras_serializable(package="tfaux")
class CorruptionClassifier(AuxTask):
    """Classifier head `aux_<corruption>` on chunk `index` of `chunks`; loss = CE(labels).

    Its `weight` is α_j of eq. (7); the distillation and merging terms live in the training loop
    (`AuxiliaryTrainingModel`), which knows the primary classifier.

    Args:
        weight: α_j, the weight of this head's cross-entropy (paper: 0.05).
        corruption: the train-time corruption this head classifies (names the output).
        index: its chunk of the training batch (1..t; 0 is the clean chunk).
        chunks: t + 1.
        num_classes: classes of the primary task.
        attention: include the attention module (off in the ablation "w/o attention").
    """

    def __init__(
        self,
        weight: float = 0.05,
        *,
        corruption: str,
        index: int,
        chunks: int,
        num_classes: int,
        attention: bool = True,
    ):
        super().__init__(weight)
        if not 1 <= index < chunks:
            raise ValueError(f"Expected 1 <= index < chunks. Received: {index=}, {chunks=}")
        self.corruption, self.index, self.chunks = corruption, int(index), int(chunks)
        self.num_classes, self.attention = int(num_classes), bool(attention)
        self.name = f"aux_{corruption}"
        self._cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def head(self, features, *, images, stride, norm=None):
        norm = single_chunk(norm or batch_norm())
        name, channels = self.name, features.shape[-1]
        x = ChunkSelect(self.index, self.chunks, name=f"{name}_chunk")(features)
        if self.attention:
            x = _attention(x, channels, norm, f"{name}_attention")
        x = _bottleneck(x, channels, norm, f"{name}_bottleneck")
        x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
        return layers.Dense(self.num_classes, name=name, dtype="float32")(x)  # like the logits

    def target(self, x, y):
        return labels_of(y)

    def loss(self, target, prediction):
        return self._cross_entropy(target, prediction)

    def get_config(self) -> dict:
        return {
            "weight": self.weight,
            "corruption": self.corruption,
            "index": self.index,
            "chunks": self.chunks,
            "num_classes": self.num_classes,
            "attention": self.attention,
        }

    def __repr__(self) -> str:
        return f"CorruptionClassifier({self.corruption!r}, weight={self.weight})"


def _attention(x, channels: int, norm, name: str):
    """Conv (stride 2) → deconv back to the feature size → sigmoid mask multiplying the features."""
    height, width = x.shape[1], x.shape[2]
    a = layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv")(
        x
    )
    a = layers.ReLU(name=f"{name}_relu")(norm(f"{name}_conv_bn")(a))
    a = layers.Conv2DTranspose(
        channels, 3, strides=2, padding="same", use_bias=False, name=f"{name}_deconv"
    )(a)
    if (a.shape[1], a.shape[2]) != (height, width):  # odd sizes: 7 → 4 → 8, crop back to 7
        a = layers.Cropping2D(
            ((0, a.shape[1] - height), (0, a.shape[2] - width)), name=f"{name}_crop"
        )(a)
    a = layers.Activation("sigmoid", name=f"{name}_mask")(norm(f"{name}_deconv_bn")(a))
    return layers.Multiply(name=f"{name}_apply")([x, a])


def _bottleneck(x, channels: int, norm, name: str):
    """1×1 (channels/4) → 3×3 → 1×1 (channels), each with norm and ReLU (He et al.'s bottleneck)."""
    inner = max(4, channels // 4)
    for i, (filters, size) in enumerate([(inner, 1), (inner, 3), (channels, 1)], start=1):
        x = layers.Conv2D(filters, size, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(norm(f"{name}_bn{i}")(x))
    return x
