"""FT: estimate the Fourier transform of the input image (seed 000's proposed auxiliary task)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfaux.models.heads import decoder
from tfaux.tasks.base import AuxTask, register_task

MAGNITUDES = ("log1p", "raw")


def fourier_target(images: tf.Tensor, magnitude: str = "log1p") -> tf.Tensor:
    """Two-channel Fourier map of the grayscale image: magnitude and phase.

    Channel 0 is `log(1 + |F|)` by default. The log is tfaux's choice, not the paper's (which
    names the Fourier transform as the target and says nothing of a compression): the raw
    magnitude spans four orders of magnitude, which MSE would reduce to fitting the DC term.
    `magnitude="raw"` gives the paper's literal `|F|`. Channel 1 is the phase divided by π, in
    (-1, 1]. Both are fftshifted so low frequencies sit in the centre, like the picture in the
    paper.

    A real image's self-conjugate bins (DC, and the Nyquist row and column of an even size) are
    real; their imaginary part is set to exactly 0, so a negative one has phase +π (target 1),
    not ±π from the sign of a rounding error.

    Args:
        images: (batch, H, W, C) float images in [0, 1], C = 1 or 3 (RGB → ITU-R 601 luma).
        magnitude: "log1p" (`log(1 + |F|)`, tfaux's default) or "raw" (`|F|`).

    Returns:
        (batch, H, W, 2) float32.

    Reference:
        Chen Liu, "An alternative auxiliary task for enhancing image classification" (seed 000).
    """
    if magnitude not in MAGNITUDES:
        raise ValueError(f"Expected magnitude in {MAGNITUDES}. Received: magnitude={magnitude!r}")
    images = tf.convert_to_tensor(images, tf.float32)
    gray = images if images.shape[-1] == 1 else tf.image.rgb_to_grayscale(images)
    spectrum = tf.signal.fft2d(tf.complex(gray[..., 0], tf.zeros_like(gray[..., 0])))
    real = tf.math.real(spectrum)
    imaginary = tf.where(
        _self_conjugate(tf.shape(gray)[1], tf.shape(gray)[2]), 0.0, tf.math.imag(spectrum)
    )
    real = tf.signal.fftshift(real, axes=(-2, -1))
    imaginary = tf.signal.fftshift(imaginary, axes=(-2, -1))
    modulus = tf.math.sqrt(real**2 + imaginary**2)
    if magnitude == "log1p":
        modulus = tf.math.log1p(modulus)
    phase = tf.math.atan2(imaginary, real) / math.pi
    return tf.stack([modulus, phase], axis=-1)


def _self_conjugate(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """(H, W) mask of the bins k with k = −k (mod size) in both axes: 0 and, if even, size/2."""
    rows = tf.math.floormod(2 * tf.range(height), height) == 0
    cols = tf.math.floormod(2 * tf.range(width), width) == 0
    return rows[:, None] & cols[None, :]


@register_task
class FourierTask(AuxTask):
    """Decoder to a (H, W, 2) map, target = `fourier_target` of the clean input, MSE.

    Args:
        weight: λ.
        magnitude: channel 0 of the target: "log1p" (`log(1 + |F|)`, tfaux's default, see
            docs/decisions.md) or "raw" (the paper's `|F|`).
    """

    name = "fourier"

    def __init__(self, weight: float = 0.01, magnitude: str = "log1p"):
        super().__init__(weight)
        if magnitude not in MAGNITUDES:
            raise ValueError(
                f"Expected magnitude in {MAGNITUDES}. Received: magnitude={magnitude!r}"
            )
        self.magnitude = magnitude
        self._mse = keras.losses.MeanSquaredError()

    def head(self, features, *, images, stride, norm=None):
        height, width = images.shape[1:3]
        return decoder(
            features, output_shape=(height, width, 2), stride=stride, name=self.name, norm=norm
        )

    def target(self, x, y):
        return fourier_target(x, self.magnitude)

    def loss(self, target, prediction):
        return self._mse(target, prediction)

    def get_config(self) -> dict:
        return {**super().get_config(), "magnitude": self.magnitude}
