"""FT: estimate the Fourier transform of the input image (seed 000's proposed auxiliary task)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfaux.aux.base import AuxTask, register_task
from tfaux.models.heads import decoder


def fourier_target(images: tf.Tensor) -> tf.Tensor:
    """Two-channel Fourier map of the grayscale image: log-magnitude and phase.

    Channel 0 is `log(1 + |F|)` (the raw magnitude spans four orders of magnitude, which MSE
    would reduce to fitting the DC term); channel 1 is the phase divided by π, in [-1, 1]. Both
    are fftshifted so low frequencies sit in the centre, like the picture in the paper.

    Args:
        images: (batch, H, W, C) float images in [0, 1], C = 1 or 3 (RGB → ITU-R 601 luma).

    Returns:
        (batch, H, W, 2) float32.

    Reference:
        Chen Liu, "An alternative auxiliary task for enhancing image classification" (seed 000).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    gray = images if images.shape[-1] == 1 else tf.image.rgb_to_grayscale(images)
    spectrum = tf.signal.fft2d(tf.complex(gray[..., 0], tf.zeros_like(gray[..., 0])))
    spectrum = tf.signal.fftshift(spectrum, axes=(-2, -1))
    magnitude = tf.math.log1p(tf.abs(spectrum))
    phase = tf.math.angle(spectrum) / math.pi
    return tf.stack([magnitude, phase], axis=-1)


@register_task
class FourierTask(AuxTask):
    """Decoder to a (H, W, 2) map, target = `fourier_target` of the clean input, MSE."""

    name = "fourier"

    def __init__(self, weight: float = 0.01):
        super().__init__(weight)
        self._mse = keras.losses.MeanSquaredError()

    def head(self, features, *, images, stride, norm=None):
        height, width = images.shape[1:3]
        return decoder(
            features, output_shape=(height, width, 2), stride=stride, name=self.name, norm=norm
        )

    def target(self, x, y):
        return fourier_target(x)

    def loss(self, target, prediction):
        return self._mse(target, prediction)
