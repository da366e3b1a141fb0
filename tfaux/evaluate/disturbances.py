"""Seed 003's "five common disturbances" of the test images, and accuracy under each.

Seed 003 (Table 1) reports top-1 accuracy under random crop, random (horizontal) flip, random
grayscale, random colour jitter and a random five-crop, as "mean ± std" over training seeds. Here:

- random_crop: zero-pad 4 px and crop back at a random offset per image (the CIFAR training
  crop, `tfaux.data.pipeline.random_crop_flip`).
- random_flip: a left-right mirror of EVERY image, not of a random half: a deterministic and
  harder version (a random half would score halfway between clean and this). Only with
  `flip=True`: digits must not be mirrored.
- random_grayscale: EVERY RGB image replaced by its ITU-R 601 luminance (0.299, 0.587, 0.114)
  repeated on 3 channels, for the same reason; omitted for 1-channel images, where it is the
  identity.
- color_jitter: torchvision's ColorJitter(0.4, 0.4, 0.4, 0.1) per image
  (`tfaux.data.augment.color_jitter`): brightness and contrast factors in [0.6, 1.4], and on RGB
  saturation in [0.6, 1.4] and hue in [-0.1, 0.1].
- five_crop: torchvision's FiveCrop at 7/8 of each side (four corners and the centre), each crop
  resized back to (H, W) bilinearly; the accuracy is the mean over the five crops.

Randomness is stateless, from `seed`: each (disturbance, batch) pair gets its own seed derived
with `np.random.SeedSequence`, so the same seed and batch size give the same numbers.

Reference:
    Di, Yu, Tian, "Towards Adversarial Training with Moderate Performance Improvement for Neural
    Network Classification" (Table 1, Figure 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from tfaux.data.augment import color_jitter, grayscale
from tfaux.data.pipeline import random_crop_flip
from tfaux.progress import progress_bar

DISTURBANCES = ("random_crop", "random_flip", "random_grayscale", "color_jitter", "five_crop")
"""The five disturbances, in seed 003's order (the keys of `disturbance_accuracy`)."""

FIVE_CROP_FRACTION = 7 / 8
"""Side of each five-crop crop relative to the image's side."""


def applicable_disturbances(channels: int, flip: bool = True) -> tuple[str, ...]:
    """The disturbances evaluated on images with `channels` channels (see the module doc)."""
    return tuple(
        name
        for name in DISTURBANCES
        if (name != "random_flip" or flip) and (name != "random_grayscale" or channels == 3)
    )


def five_crop(images: tf.Tensor, fraction: float = FIVE_CROP_FRACTION) -> tf.Tensor:
    """torchvision's FiveCrop, each crop resized back to the image size.

    Args:
        images: float (B, H, W, C) with static H and W.
        fraction: crop side relative to the image side, in (0, 1]; sides are floored
            (28 → 24, 32 → 28).

    Returns:
        (5, B, H, W, C): the top-left, top-right, bottom-left, bottom-right and centre crops
        (torchvision's order and centre rounding), resized bilinearly to (H, W).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"Expected 0 < fraction <= 1. Received: fraction={fraction}")
    images = tf.convert_to_tensor(images)
    height, width = images.shape[1], images.shape[2]
    crop_h, crop_w = max(1, int(height * fraction)), max(1, int(width * fraction))
    centre = (int(round((height - crop_h) / 2)), int(round((width - crop_w) / 2)))
    corners = [(0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w)]
    crops = []
    for top, left in [*corners, centre]:
        crop = images[:, top : top + crop_h, left : left + crop_w]
        resized = tf.image.resize(crop, (height, width), method="bilinear")
        crops.append(tf.cast(resized, images.dtype))
    return tf.stack(crops)


def disturbance_accuracy(
    predict: Callable,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    flip: bool = True,
    batch_size: int = 256,
    progress: bool = False,
    return_correct: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Accuracy on clean images and under each of seed 003's five disturbances.

    Args:
        predict: `predict(images) -> logits` (B, classes), called on float32 tf.Tensor batches
            (e.g. a compiled inference function or a Keras model); a dict output uses its
            "logits".
        x: images (N, H, W, C) with 1 or 3 channels, float in [0, 1] (uint8 is divided by 255).
        y: integer labels (N,).
        seed: seed of the random disturbances (>= 0); the same seed and batch size give the same
            numbers.
        flip: evaluate the left-right flip (False for digits).
        batch_size: images per `predict` call.
        progress: show progress (a bar on a terminal) over the batches.
        return_correct: also return each image's correctness, for paired tests between models
            on the same disturbed images.

    Returns:
        {"clean": accuracy, <disturbance>: accuracy, ...}: fractions in [0, 1], in the order of
        `DISTURBANCES`, without "random_flip" if not `flip` and without "random_grayscale" on
        1-channel images. With `return_correct`, (accuracies, correct): `correct` has the same
        keys, bool[N] per image, except "five_crop": float[N], the fraction of an image's five
        crops classified correctly; each accuracy is its array's mean (five_crop's up to
        rounding: it is summed per batch).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(
            f"Expected images (N, H, W, C) with 1 or 3 channels. Received: x.shape={x.shape}"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"Expected integer labels of shape (N,). Received: y.shape={y.shape}, y.dtype={y.dtype}"
        )
    if len(x) != len(y):
        raise ValueError(f"Expected as many labels as images. Received: {len(x)=}, {len(y)=}")
    if len(x) == 0:
        raise ValueError("Expected at least one image. Received: x.shape=" + str(x.shape))
    if batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
    if seed < 0:
        raise ValueError(f"Expected seed >= 0. Received: seed={seed}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32, copy=False)

    names = applicable_disturbances(x.shape[-1], flip)
    # Counts summed per batch as before the per-image arrays existed: five_crop's accuracy,
    # a mean of fractions, would otherwise move in its last bit.
    counts = dict.fromkeys(("clean", *names), 0.0)
    correct = {name: [] for name in counts}
    starts = range(0, len(x), batch_size)
    for batch, start in enumerate(
        progress_bar(starts, desc="disturbances", unit="batch", enabled=progress)
    ):
        images = tf.constant(x[start : start + batch_size])
        labels = y[start : start + batch_size]
        correct["clean"].append(_predicted(predict, images) == labels)
        counts["clean"] += float(np.sum(correct["clean"][-1]))
        for name in names:
            if name == "five_crop":
                crops = [_predicted(predict, c) == labels for c in tf.unstack(five_crop(images))]
                correct[name].append(np.mean(crops, axis=0))
                counts[name] += float(np.mean([float(np.sum(c)) for c in crops]))
            else:
                stateless = _seed(seed, DISTURBANCES.index(name), batch)
                disturbed = _disturb(name, images, stateless)
                correct[name].append(_predicted(predict, disturbed) == labels)
                counts[name] += float(np.sum(correct[name][-1]))
    accuracies = {name: float(count / len(x)) for name, count in counts.items()}
    if not return_correct:
        return accuracies
    return accuracies, {name: np.concatenate(arrays) for name, arrays in correct.items()}


def _disturb(name: str, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    if name == "random_crop":
        return random_crop_flip(images, seed, crop=True, flip=False)
    if name == "random_flip":
        return tf.reverse(images, axis=[2])
    if name == "random_grayscale":
        return grayscale(images)
    if name == "color_jitter":
        return color_jitter(images, seed, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    raise ValueError(f"No single-image version of disturbance {name!r}.")


def _seed(seed: int, disturbance: int, batch: int) -> tf.Tensor:
    """A shape-(2,) int32 stateless seed for one (disturbance, batch) pair."""
    state = np.random.SeedSequence([seed, disturbance, batch]).generate_state(2)
    return tf.constant((state % 2**31).astype(np.int32))


def _predicted(predict: Callable, images: tf.Tensor) -> np.ndarray:
    logits = predict(images)
    if isinstance(logits, Mapping):
        logits = logits["logits"]
    logits = np.asarray(logits)
    if logits.ndim != 2 or len(logits) != len(images):
        raise ValueError(
            f"Expected predict to return logits (B, classes) for B = {len(images)} images. "
            f"Received: shape {logits.shape}"
        )
    return np.argmax(logits, axis=-1)
