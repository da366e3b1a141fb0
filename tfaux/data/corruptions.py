"""Train-time corruptions of Auxiliary Training, as stateless TensorFlow ops for a `train_step`.

Zhang et al. train on "Gaussian noise, Gaussian blur, rotation and images' contrast and
brightness". Everything here is a pure function of the batch and a shape-[2] stateless seed, so
it runs inside a compiled `train_step` (also per replica under `MirroredStrategy`) and a run can be
reproduced. Images are float NHWC in [0, 1] of any batch size (0 included), size and channels.

Severities 1..5 (`SEVERITY_PARAMETERS`):

| corruption          | parameter                  | 1    | 2    | 3    | 4    | 5    |
|---------------------|----------------------------|------|------|------|------|------|
| gaussian_noise      | noise σ                    | 0.04 | 0.06 | 0.08 | 0.09 | 0.10 |
| gaussian_blur       | blur σ (pixels)            | 0.4  | 0.6  | 0.7  | 0.8  | 1.0  |
| rotation            | max angle (degrees)        | 5    | 10   | 15   | 20   | 30   |
| contrast_brightness | contrast factor            | 0.75 | 0.5  | 0.4  | 0.3  | 0.15 |
|                     | brightness shift (± sign)  | 0.05 | 0.1  | 0.15 | 0.2  | 0.3  |

Noise, blur, contrast and brightness are the CIFAR-10-C constants of Hendrycks & Dietterich's
generation code (`make_cifar_c.py`); its blur is `skimage.filters.gaussian` (truncate 4, border
mode "nearest"), which `gaussian_blur` reproduces exactly. CIFAR-10-C has no rotation and the paper
gives no angles: ours stay well below 90° so a 6 never becomes a 9.

Reference:
    Zhang et al., "Auxiliary Training: Towards Accurate and Robust Models", CVPR 2020.
    Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR 2019.

Example:
    seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int32), replica_id])
    x = random_corruption(x, "gaussian_blur", seed=seed)
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfaux.config import TRAIN_CORRUPTIONS  # noqa: F401  (re-exported: the names live in config)
from tfaux.names import unknown_name

SEVERITY_PARAMETERS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "rotation": (5.0, 10.0, 15.0, 20.0, 30.0),
    # (contrast factor, brightness shift): CIFAR-10-C `contrast` and `brightness` at one severity.
    "contrast_brightness": ((0.75, 0.05), (0.5, 0.1), (0.4, 0.15), (0.3, 0.2), (0.15, 0.3)),
}
"""Corruption name → its parameter at severities 1..5 (see the module docstring's table)."""

NUM_SEVERITIES = 5

# skimage.filters.gaussian's (and scipy's) default: the kernel reaches out to 4σ.
_BLUR_TRUNCATE = 4.0


def corrupt(x, name: str, *, severity, seed) -> tf.Tensor:
    """Applies corruption `name` at a per-example severity.

    Random draws depend on the seed and the batch shape only, never on the severity: noise is a
    standard normal image scaled by σ, the rotation is a uniform u ∈ [-1, 1) per example times the
    maximum angle, the brightness sign is a coin per example. So a batch with mixed severities
    equals, row by row, whole-batch calls at each severity with the same seed.

    Args:
        x: float images, NHWC, in [0, 1].
        name: one of `TRAIN_CORRUPTIONS`.
        severity: a Python int in 1..5 for the whole batch, or int values in 1..5 of shape (batch,).
        seed: shape-[2] integer stateless seed; the same seed gives the same output.

    Returns:
        The corrupted images, same shape and dtype as `x`, clipped to [0, 1].
    """
    _check_name(name)
    x = _check_images(x)
    seed = stateless_seed(seed)
    level = _severity_index(severity, tf.shape(x)[0])
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    if name == "gaussian_noise":
        sigma = _per_example(SEVERITY_PARAMETERS[name], level)
        out = x + sigma * tf.random.stateless_normal(tf.shape(x), seed)
    elif name == "gaussian_blur":
        out = _blur(x, tf.gather(_blur_kernels(), level))
    elif name == "rotation":
        max_degrees = tf.gather(tf.constant(SEVERITY_PARAMETERS[name], tf.float32), level)
        u = tf.random.stateless_uniform(tf.shape(level), seed, -1.0, 1.0)  # sign and size
        out = rotate(x, max_degrees * u)
    else:
        contrast, shift = zip(*SEVERITY_PARAMETERS[name], strict=True)
        # Both signs: CIFAR-10-C only brightens, but darker test images are just as plausible.
        sign = tf.where(tf.random.stateless_uniform(tf.shape(level), seed) < 0.5, -1.0, 1.0)
        mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)  # per image and channel
        out = (x - mean) * _per_example(contrast, level) + mean
        out += tf.reshape(sign, [-1, 1, 1, 1]) * _per_example(shift, level)
    return tf.cast(tf.clip_by_value(out, 0.0, 1.0), dtype)


def random_corruption(x, name: str, *, seed) -> tf.Tensor:
    """Applies corruption `name` at a severity drawn uniformly from 1..5 for each example.

    What a train step calls. `stateless_split` turns the seed into two: the first draws the
    severities, the second is `corrupt`'s seed. Under a distribution strategy, put the replica id
    in the seed so replicas draw different corruptions.

    Args:
        x: float images, NHWC, in [0, 1].
        name: one of `TRAIN_CORRUPTIONS`.
        seed: shape-[2] integer stateless seed, e.g. (step, replica id).

    Returns:
        The corrupted images, same shape and dtype as `x`, clipped to [0, 1].
    """
    _check_name(name)
    x = _check_images(x)
    severity_seed, corrupt_seed = tf.unstack(
        tf.random.experimental.stateless_split(stateless_seed(seed), 2)
    )
    severity = tf.random.stateless_uniform(
        tf.shape(x)[:1], severity_seed, minval=1, maxval=NUM_SEVERITIES + 1, dtype=tf.int32
    )
    return corrupt(x, name, severity=severity, seed=corrupt_seed)


def _check_name(name: str) -> None:
    if name not in TRAIN_CORRUPTIONS:
        raise unknown_name("corruption", name, TRAIN_CORRUPTIONS)


def _check_images(x) -> tf.Tensor:
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4 or not x.dtype.is_floating:
        raise ValueError(
            f"Expected float NHWC images of rank 4. Received: shape={x.shape}, dtype={x.dtype.name}"
        )
    return x


def stateless_seed(seed) -> tf.Tensor:
    """`seed` as an integer tensor of shape [2], as TF's stateless random ops take it."""
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or not seed.shape.is_compatible_with([2]):
        raise ValueError(
            "Expected an integer stateless seed of shape [2]. "
            f"Received: seed with shape={seed.shape}, dtype={seed.dtype.name}"
        )
    return tf.cast(seed, tf.int64) if seed.dtype not in (tf.int32, tf.int64) else seed


def _severity_index(severity, batch: tf.Tensor) -> tf.Tensor:
    """Severity 1..5 → int32 row index 0..4 of shape (batch,)."""
    if isinstance(severity, int | np.integer):
        if not 1 <= severity <= NUM_SEVERITIES:
            raise ValueError(f"Expected severity in 1..5. Received: severity={severity}")
        return tf.fill([batch], tf.constant(int(severity) - 1, tf.int32))
    known = not (tf.is_tensor(severity) and tf.is_symbolic_tensor(severity))
    severity = tf.convert_to_tensor(severity)
    if not severity.dtype.is_integer or severity.shape.rank != 1:
        raise ValueError(
            "Expected severity as an int or integers of shape (batch,). "
            f"Received: shape={severity.shape}, dtype={severity.dtype.name}"
        )
    if known:  # values known now (numpy, list, eager): check them here rather than in the graph
        values = tf.get_static_value(severity)
        if values.size and not (values.min() >= 1 and values.max() <= NUM_SEVERITIES):
            raise ValueError(f"Expected severity in 1..5. Received: severity={values.tolist()}")
    return tf.cast(severity, tf.int32) - 1


def _per_example(values, level: tf.Tensor) -> tf.Tensor:
    """The severity table's value for each example, shaped to broadcast over NHWC."""
    return tf.reshape(tf.gather(tf.constant(values, tf.float32), level), [-1, 1, 1, 1])


def _blur_kernels() -> tf.Tensor:
    """One normalized 1-D Gaussian per severity, as scipy builds it, zero-padded to one width.

    Zero taps leave the sum unchanged, so one padded width lets each example have its own σ.
    """
    sigmas = SEVERITY_PARAMETERS["gaussian_blur"]
    radius = int(_BLUR_TRUNCATE * max(sigmas) + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernels = np.zeros((len(sigmas), offsets.size))
    for row, sigma in enumerate(sigmas):
        r = int(_BLUR_TRUNCATE * sigma + 0.5)
        taps = np.exp(-0.5 * (offsets / sigma) ** 2) * (np.abs(offsets) <= r)
        kernels[row] = taps / taps.sum()
    return tf.constant(kernels, tf.float32)


def _blur(x: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """Separable Gaussian blur with one kernel per example (kernels: [batch, taps])."""
    return _blur_axis(_blur_axis(x, kernels, axis=1), kernels, axis=2)


def _blur_axis(x: tf.Tensor, kernels: tf.Tensor, axis: int) -> tf.Tensor:
    # A weighted sum of shifted copies rather than a conv: convolutions share one kernel across
    # the batch, and this costs (taps) multiply-adds per pixel whatever the severities.
    taps = kernels.shape[1]
    radius = taps // 2
    size = tf.shape(x)[axis]
    # Border mode "nearest" (edge pixels repeat), skimage's default used by CIFAR-10-C; an index
    # gather pads by any radius, even past a 1-pixel image, where tf.pad's modes cannot.
    padded = tf.gather(
        x, tf.clip_by_value(tf.range(-radius, size + radius), 0, size - 1), axis=axis
    )
    out = tf.zeros_like(x)
    for k in range(taps):
        window = padded[(slice(None),) * axis + (slice(k, k + size),)]
        out += tf.reshape(kernels[:, k], [-1, 1, 1, 1]) * window
    return out


def rotate(x: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Rotates each image about its centre by its own angle (bilinear, reflected borders).

    Reflection rather than zeros: black corners would be a cue of the corruption on natural
    images, and on digits with a black margin it is black anyway.
    """
    radians = degrees * (math.pi / 180.0)
    cos, sin = tf.cos(radians), tf.sin(radians)
    height = tf.cast(tf.shape(x)[1], tf.float32) - 1.0
    width = tf.cast(tf.shape(x)[2], tf.float32) - 1.0
    # Output pixel → input pixel, a rotation about the centre ((W - 1) / 2, (H - 1) / 2).
    x_offset = (width - (cos * width - sin * height)) / 2.0
    y_offset = (height - (sin * width + cos * height)) / 2.0
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.shape(x)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return tf.ensure_shape(out, x.shape)
