"""Recon: reconstruct the clean input image (the classic auxiliary task, seed 000 §2.3)."""

from __future__ import annotations

import keras

from tfaux.models.heads import decoder
from tfaux.tasks.base import AuxTask, register_task


@register_task
class ReconTask(AuxTask):
    """Decoder back to the input shape, target = the clean input in [0, 1], pixel-wise MSE."""

    name = "recon"

    def __init__(self, weight: float = 0.01):
        super().__init__(weight)
        self._mse = keras.losses.MeanSquaredError()

    def head(self, features, *, images, stride, norm=None):
        return decoder(
            features,
            output_shape=images.shape[1:],
            stride=stride,
            name=self.name,
            activation="sigmoid",
            norm=norm,
        )

    def target(self, x, y):
        return x

    def loss(self, target, prediction):
        return self._mse(target, prediction)
