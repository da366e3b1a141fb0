"""Train-time image augmentations as in-graph, stateless, per-example TensorFlow ops.

The two-view contrastive loop (SimCLR) and seed 004's geometric augmentation augment inside a
compiled `train_step`, also per replica under `MirroredStrategy`, so every op here is a pure
function of the batch and a shape-[2] stateless seed (the same seed gives the same output), draws
its own random parameters for each image without a Python loop over the batch, and works for any
batch size, dynamic or 0. Images are float NHWC in [0, 1] with 1 or 3 channels; outputs keep the
shape and dtype and are clipped to [0, 1].

Reference:
    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
    ICML 2020 (the crop, flip, colour jitter and grayscale of `simclr_augment`).

Example:
    seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int32), replica_id])
    views = two_views(x, seed, simclr_augment)  # 2B images: x's first views, then its second
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from tfaux.data.corruptions import rotate, stateless_seed
from tfaux.registry import Registry

# ITU-R 601-2 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


# SimCLR's crop keeps 8-100 % of the area; ours 25-100 %. At 28×28 an 8 % crop is a ~8×8 px
# patch upsampled 3.5×, and Fashion-MNIST is half black background (49.6 % zero pixels): of
# 2,000 training images, 7 % of 8 %-area crops are >= 90 % background (pixels < 0.05), against
# 0.4 % of 25 %-area crops, and such views match any other image's as well as their own.
SIMCLR_CROP_SCALE = (0.25, 1.0)


def random_resized_crop(x, seed, *, scale=SIMCLR_CROP_SCALE, ratio=(3 / 4, 4 / 3)) -> tf.Tensor:
    """SimCLR's random crop: a random box per image, resized back to (H, W) bilinearly.

    The box's area is a uniform fraction of the image in `scale` and its aspect ratio
    (width / height, in pixels) is log-uniform in `ratio`; a side longer than the image is
    clipped to it, and the box is placed uniformly inside the image. Torchvision and SimCLR
    instead retry (10 or 100 times) and fall back to a centre or whole-image crop; clipping keeps
    it one vectorized draw.

    Args:
        x: float images, NHWC, in [0, 1], with 1 or 3 channels.
        seed: shape-[2] integer stateless seed.
        scale: (min, max) area fraction, 0 < min <= max <= 1.
        ratio: (min, max) aspect ratio, 0 < min <= max.
    """
    x, dtype = _check_images(x)
    seed = stateless_seed(seed)
    low, high = _check_range("scale", scale, upper=1.0)
    ratio_low, ratio_high = _check_range("ratio", ratio)
    area_seed, ratio_seed, y_seed, x_seed = _split(seed, 4)
    shape = tf.shape(x)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    area = tf.random.stateless_uniform(shape[:1], area_seed, low, high)
    log_ratio = tf.random.stateless_uniform(
        shape[:1], ratio_seed, math.log(ratio_low), math.log(ratio_high)
    )
    # Box sides as fractions of the image: w * h = area and (w * W) / (h * H) = ratio.
    aspect = tf.exp(log_ratio) * height / width
    box_width = tf.minimum(tf.sqrt(area * aspect), 1.0)
    box_height = tf.minimum(tf.sqrt(area / aspect), 1.0)
    top = tf.random.stateless_uniform(shape[:1], y_seed) * (1.0 - box_height)
    left = tf.random.stateless_uniform(shape[:1], x_seed) * (1.0 - box_width)
    # Normalized [y1, x1, y2, x2]: 0 and 1 are the centres of the first and last pixels.
    boxes = tf.stack([top, left, top + box_height, left + box_width], axis=1)
    out = tf.image.crop_and_resize(x, boxes, tf.range(shape[0]), shape[1:3], method="bilinear")
    return _finish(out, x, dtype)


def random_flip(x, seed) -> tf.Tensor:
    """Mirrors each image left-right with probability 1/2."""
    x, dtype = _check_images(x)
    flip = _coin(tf.shape(x)[:1], stateless_seed(seed), 0.5)
    return _finish(tf.where(flip, tf.reverse(x, axis=[2]), x), x, dtype)


def color_jitter(x, seed, *, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1) -> tf.Tensor:
    """Torchvision's `ColorJitter`, with its own factors and order for each image.

    Per image: brightness multiplies by a factor in [max(0, 1 - b), 1 + b]; contrast blends
    with the image's mean gray level by a factor in [max(0, 1 - c), 1 + c]; saturation blends
    with the grayscale image by a factor in [max(0, 1 - s), 1 + s]; hue shifts by a fraction
    of the hue circle in [-h, h] (in HSV). As in torchvision and SimCLR the four adjustments come
    in a random order (one per image) and each clips to [0, 1]. A strength of 0 leaves its
    property exactly unchanged (the adjustment is skipped). Saturation and hue do not exist on
    1-channel images, so there they are skipped: only brightness and contrast apply.

    Args:
        x: float images, NHWC, in [0, 1], with 1 or 3 channels.
        seed: shape-[2] integer stateless seed.
        brightness, contrast, saturation: strengths >= 0.
        hue: strength in [0, 0.5].
    """
    x, dtype = _check_images(x)
    seed = stateless_seed(seed)
    for name, value in (
        ("brightness", brightness),
        ("contrast", contrast),
        ("saturation", saturation),
    ):
        _check_strength(name, value)
    _check_strength("hue", hue, upper=0.5)
    batch = tf.shape(x)[:1]
    # Fixed seed slots: a property's factors do not depend on which others are on.
    brightness_seed, contrast_seed, saturation_seed, hue_seed, order_seed = _split(seed, 5)

    def factors(strength, factor_seed):
        draw = tf.random.stateless_uniform(
            batch, factor_seed, max(0.0, 1.0 - strength), 1.0 + strength
        )
        return tf.reshape(draw, [-1, 1, 1, 1])

    # (adjustment, its per-image parameter), each a pure function of the image.
    adjustments = []
    if brightness:
        adjustments.append((_adjust_brightness, factors(brightness, brightness_seed)))
    if contrast:
        adjustments.append((_adjust_contrast, factors(contrast, contrast_seed)))
    if saturation and x.shape[-1] == 3:
        adjustments.append((_adjust_saturation, factors(saturation, saturation_seed)))
    if hue and x.shape[-1] == 3:
        shift = tf.random.stateless_uniform(batch, hue_seed, -hue, hue)
        adjustments.append((_shift_hue, tf.reshape(shift, [-1, 1, 1, 1])))

    def adjust(index, image):
        function, parameter = adjustments[index]
        return tf.clip_by_value(function(image, parameter), 0.0, 1.0)

    if len(adjustments) <= 1:
        return _finish(adjust(0, x) if adjustments else x, x, dtype)
    # A random permutation per image; at stage k each image takes adjustment order[:, k]. Every
    # adjustment runs on the whole batch at every stage (n² for n on, cheap next to a network).
    order = tf.argsort(
        tf.random.stateless_uniform(tf.concat([batch, [len(adjustments)]], 0), order_seed),
        axis=1,
    )
    out = x
    for stage in range(len(adjustments)):
        chosen = tf.reshape(order[:, stage], [-1, 1, 1, 1])
        staged = adjust(0, out)
        for index in range(1, len(adjustments)):
            staged = tf.where(chosen == index, adjust(index, out), staged)
        out = staged
    return _finish(out, x, dtype)


def random_grayscale(x, seed, *, probability=0.2) -> tf.Tensor:
    """Replaces each RGB image by its luminance with probability `probability`.

    The luminance is ITU-R 601-2 (0.299 R + 0.587 G + 0.114 B) repeated on 3 channels, so the
    shape is kept; 1-channel images are already gray and come back unchanged.
    """
    x, dtype = _check_images(x)
    seed = stateless_seed(seed)
    _check_probability(probability)
    if x.shape[-1] == 1:
        return _finish(x, x, dtype)
    gray = grayscale(x)
    return _finish(tf.where(_coin(tf.shape(x)[:1], seed, probability), gray, x), x, dtype)


def random_rotation(x, seed, *, max_degrees=20.0) -> tf.Tensor:
    """Rotates each image about its centre by an angle uniform in [-max_degrees, max_degrees].

    Bilinear with reflected borders (`tfaux.data.corruptions`'s rotation), so no black corners.
    """
    x, dtype = _check_images(x)
    seed = stateless_seed(seed)
    _check_strength("max_degrees", max_degrees, upper=180.0)
    degrees = tf.random.stateless_uniform(tf.shape(x)[:1], seed, -1.0, 1.0) * max_degrees
    return _finish(rotate(x, degrees), x, dtype)


def simclr_augment(x, seed, *, flip=True) -> tf.Tensor:
    """SimCLR's view of a small image (Chen et al. 2020, CIFAR-10 setting).

    Random resized crop (area 25-100 %, ratio 3/4-4/3), left-right flip (if `flip`), colour
    jitter (0.4, 0.4, 0.4, 0.1, i.e. strength 0.5) applied with probability 0.8, grayscale with
    probability 0.2. Pass `flip=False` where a mirror changes the label (digits).

    The crop's smallest area is 25 %, not SimCLR's 8 % (`SIMCLR_CROP_SCALE`): on 28×28 images
    an 8 % crop is ~8×8 px, often all background on Fashion-MNIST (see docs/decisions.md,
    issue 16). SimCLR's 8 % suits ImageNet (63×63 px at 224) and CIFAR-10, whose photographs
    fill the frame; `random_resized_crop(..., scale=(0.08, 1.0))` gives it.
    """
    x, dtype = _check_images(x)
    crop_seed, flip_seed, jitter_seed, apply_seed, gray_seed = _split(stateless_seed(seed), 5)
    out = random_resized_crop(x, crop_seed, scale=SIMCLR_CROP_SCALE)
    if flip:
        out = random_flip(out, flip_seed)
    jittered = color_jitter(out, jitter_seed, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    out = tf.where(_coin(tf.shape(x)[:1], apply_seed, 0.8), jittered, out)
    out = random_grayscale(out, gray_seed, probability=0.2)
    return _finish(out, x, dtype)


def geometric_augment(
    x, seed, *, flip=True, max_degrees=20.0, hue=0.1, saturation=0.3
) -> tf.Tensor:
    """Seed 004's "geometric augmentation": rotation, then hue and saturation, then a flip.

    Volkovskyi et al. found hue, saturation and rotation the most effective augmentations. A
    rotation in [-max_degrees, max_degrees], `color_jitter` with only `saturation` and `hue`,
    and a left-right flip with probability 1/2 if `flip`. Saturation and hue are the identity on
    grayscale images, so on grayscale data only the rotation (and the flip) apply.
    """
    x, dtype = _check_images(x)
    rotate_seed, jitter_seed, flip_seed = _split(stateless_seed(seed), 3)
    out = random_rotation(x, rotate_seed, max_degrees=max_degrees)
    out = color_jitter(
        out, jitter_seed, brightness=0.0, contrast=0.0, saturation=saturation, hue=hue
    )
    if flip:
        out = random_flip(out, flip_seed)
    return _finish(out, x, dtype)


AUGMENTATIONS: Registry[Callable[..., tf.Tensor]] = Registry("augmentation")
"""Augmentation name → `fn(x, seed, **kwargs)`, for configs that name their augmentation."""
AUGMENTATIONS.register(simclr_augment, name="simclr")
AUGMENTATIONS.register(geometric_augment, name="geometric")


def get_augmentation(name: str) -> Callable[..., tf.Tensor]:
    """The augmentation called `name` in `AUGMENTATIONS`; an unknown name suggests close ones."""
    return AUGMENTATIONS.get(name)


def two_views(x, seed, augment: Callable[..., tf.Tensor], **kwargs) -> tf.Tensor:
    """Two independent augmentations of each image, for contrastive learning (SimCLR).

    Returns `concat([augment(x, s1, **kwargs), augment(x, s2, **kwargs)])` on the batch axis
    (2B images: row i and row B + i are views of image i), where `s1, s2` are
    `tf.random.experimental.stateless_split(seed, 2)`.
    """
    first, second = _split(stateless_seed(seed), 2)
    return tf.concat([augment(x, first, **kwargs), augment(x, second, **kwargs)], axis=0)


def _check_images(x) -> tuple[tf.Tensor, tf.DType]:
    """Float NHWC images with 1 or 3 channels, as float32, and their dtype to cast back to."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4 or not x.dtype.is_floating or x.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected float NHWC images of rank 4 with 1 or 3 channels. "
            f"Received: shape={x.shape}, dtype={x.dtype.name}"
        )
    return tf.cast(x, tf.float32), x.dtype


def _check_range(name: str, value, upper: float | None = None) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not (0.0 < low <= high and (upper is None or high <= upper)):
        bound = f" <= {upper:g}" if upper is not None else ""
        raise ValueError(
            f"Expected {name}=(min, max) with 0 < min <= max{bound}. Received: {name}={value}"
        )
    return low, high


def _check_strength(name: str, value, upper: float | None = None) -> None:
    if not (0.0 <= value and (upper is None or value <= upper)):
        bound = f" <= {upper:g}" if upper is not None else ""
        raise ValueError(f"Expected 0 <= {name}{bound}. Received: {name}={value}")


def _check_probability(probability) -> None:
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"Expected probability in [0, 1]. Received: probability={probability}")


def _split(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def _coin(batch: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """True with probability `probability` per example, shaped (batch, 1, 1, 1)."""
    heads = tf.random.stateless_uniform(batch, seed) < probability
    return tf.reshape(heads, [-1, 1, 1, 1])


def grayscale(x) -> tf.Tensor:
    """Every image as gray: the ITU-R 601-2 luminance repeated on its channels (the identity on
    1-channel images); the test-time disturbance and `random_grayscale`'s replacement."""
    x = tf.convert_to_tensor(x)
    return tf.repeat(_gray(x), x.shape[-1], axis=-1)


def _gray(x: tf.Tensor) -> tf.Tensor:
    """Luminance (one channel) of RGB images; 1-channel images are their own."""
    if x.shape[-1] == 1:
        return x
    return tf.reduce_sum(x * tf.constant(_LUMA, x.dtype), axis=-1, keepdims=True)


def _blend(image: tf.Tensor, other: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """torchvision's `_blend`: factor * image + (1 - factor) * other (clipped by the caller)."""
    return factor * image + (1.0 - factor) * other


def _adjust_brightness(x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    return x * factor


def _adjust_contrast(x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    return _blend(x, tf.reduce_mean(_gray(x), axis=(1, 2, 3), keepdims=True), factor)


def _adjust_saturation(x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    return _blend(x, _gray(x), factor)


def _shift_hue(x: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """Rotates the hue of RGB images by `shift` (fractions of the circle, shaped (B, 1, 1, 1))."""
    hsv = tf.image.rgb_to_hsv(x)
    hue = tf.math.floormod(hsv[..., 0] + shift[..., 0], 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))


def _finish(out: tf.Tensor, x: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Clips to [0, 1], restores the static shape (lost by some ops) and the input dtype."""
    return tf.cast(tf.ensure_shape(tf.clip_by_value(out, 0.0, 1.0), x.shape), dtype)
