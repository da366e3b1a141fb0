"""CIFAR-10-C's corruptions: Hendrycks & Dietterich's `make_cifar_c.py`, at the image's own size.

CIFAR-10-C, the -C set seed 001 evaluates on, was made by `make_cifar_c.py` (hendrycks/robustness,
`ImageNet-C/create_c/`) with severity constants tuned for 32x32 images, much milder than
ImageNet-C's for 224 px (`imagecorruptions`): Gaussian noise σ 0.04-0.10 against 0.08-0.38,
defocus radius 0.3-1.5 px against 3-10 px, JPEG quality 80-40 against 25-7. This module ports the
script's 19 functions with their constants (`SEVERITY_CONSTANTS`). Where the script hard-codes 32
(glass blur's shuffle, fog's and frost's crops, snow's reshape, pixelate's sizes, elastic's
IMSIZE) we use the image's height and width, so 28 px Fashion-MNIST is corrupted at 28 px.

Library helpers are reused where the algorithm is the script's: imagecorruptions' `disk`,
`plasma_fractal` and glass blur's pixel shuffle (its numba port of the script's loop, seeded from
numpy's RNG). Differences from the script, all forced or for sizes other than 32:
- `motion_blur` (and snow's streaks) use imagecorruptions' numpy port of ImageMagick's motion
  blur (`_motion_blur`: a one-sided Gaussian kernel of width 2·radius + 1 along the angle) with
  CIFAR's (radius, sigma), instead of Wand/ImageMagick, rounded to 8 bits as the PNG round trip.
- `zoom_blur` and snow use the script's `clipped_zoom` (centred crop, centred trim), written per
  axis for non-square images; imagecorruptions' version trims from the top-left corner.
- `frost` scales its frost photo by 0.2 · side / 32 (the script's 0.2 at 32 px) so the frost
  texture keeps its size relative to the image; like the script it draws from the first five of
  the six photos (`randint(5)`), which imagecorruptions ships.
- `elastic_transform` scales its constants by min(height, width) instead of IMSIZE = 32.
- `spatter` at severities 1-3 returns the image unchanged when no drop passes its threshold; the
  script divides 0 by 0 there and writes a black image.

Every function reads a uint8 HxWxC image (C = 1 or 3, as `np.array` of the script's PIL input)
and the result is cast to uint8 by truncation, as the script's `np.uint8(corruption(img))`.
Randomness comes from numpy's global RNG, as in the script; the caller seeds it.

Reference:
    Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR 2019. https://github.com/hendrycks/robustness
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from io import BytesIO

import cv2
import numpy as np
import skimage as sk
from imagecorruptions.corruptions import _motion_blur as _motion_blur_numpy
from imagecorruptions.corruptions import (  # the package's helpers: the script's algorithms
    _shuffle_pixels_njit_glass_blur,
    disk,
    next_power_of_2,
    plasma_fractal,
)
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scizoom
from skimage.filters import gaussian

from tfaux.names import unknown_name

SEVERITY_CONSTANTS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # σ
    "shot_noise": (500, 250, 100, 75, 50),  # photons per unit intensity
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # fraction of salt-and-pepper pixels
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),  # radius, alias σ
    # blur σ, max shift, iterations
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),  # radius, σ
    "zoom_blur": tuple(np.arange(1, 1 + top, 0.01) for top in (0.06, 0.11, 0.16, 0.21, 0.26)),
    # loc, scale, zoom, threshold, streak radius, streak σ, blend
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),  # image, frost weight
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),  # strength, wibble decay
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to HSV value
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor about the mean
    # (alpha, σ, affine shift) as fractions of the image size (the script's IMSIZE * ...)
    "elastic_transform": (
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # downsampling factor
    "jpeg_compression": (80, 65, 58, 50, 40),  # quality
    "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),  # σ of the multiplicative noise
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # σ
    # loc, scale, blur σ, threshold, strength, mud (1) or water (0)
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),  # HSV saturation × a + b
}
"""Corruption name → its constant at severities 1..5, as in `make_cifar_c.py`."""

COLOR_CORRUPTIONS: tuple[str, ...] = ("frost", "brightness", "spatter", "saturate")
"""The corruptions that need RGB images (frost photos, HSV, coloured drops); the rest take any C."""

_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
_FROST_SCALE = 0.2  # the script's resize of its frost photos for 32 px images


def corrupt(image: np.ndarray, corruption: str, severity: int) -> np.ndarray:
    """One image corrupted as CIFAR-10-C's generator does, at the image's own size.

    Args:
        image: uint8 HxWxC, C = 1 or 3 (3 for `COLOR_CORRUPTIONS`).
        corruption: a key of `SEVERITY_CONSTANTS`.
        severity: 1 (mild) to 5 (strong).

    Returns:
        uint8 array of the same shape.
    """
    if corruption not in SEVERITY_CONSTANTS:
        raise unknown_name("CIFAR-10-C corruption", corruption, SEVERITY_CONSTANTS)
    if not 1 <= severity <= 5:
        raise ValueError(f"Expected a severity in 1..5. Received: severity={severity!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected a uint8 HxWxC image with 1 or 3 channels. "
            f"Received: shape {image.shape}, dtype {image.dtype}"
        )
    if corruption in COLOR_CORRUPTIONS and image.shape[-1] != 3:
        raise ValueError(f"Expected an RGB image for {corruption}. Received: shape {image.shape}")
    constant = SEVERITY_CONSTANTS[corruption][severity - 1]
    out = np.asarray(_FUNCTIONS[corruption](image, constant))
    return np.uint8(out).reshape(image.shape)


# === Noise ===


def _gaussian_noise(x, c):
    x = x / 255.0
    return np.clip(x + np.random.normal(size=x.shape, scale=c), 0, 1) * 255


def _shot_noise(x, c):
    x = x / 255.0
    return np.clip(np.random.poisson(x * c) / c, 0, 1) * 255


def _impulse_noise(x, c):
    # skimage draws from its own generator: seed it from numpy's, which the caller seeded.
    rng = int(np.random.randint(2**31 - 1))
    x = sk.util.random_noise(x / 255.0, mode="s&p", amount=c, rng=rng)
    return np.clip(x, 0, 1) * 255


def _speckle_noise(x, c):
    x = x / 255.0
    return np.clip(x + x * np.random.normal(size=x.shape, scale=c), 0, 1) * 255


# === Blur ===


def _gaussian_blur(x, c):
    return np.clip(gaussian(x / 255.0, sigma=c, channel_axis=-1), 0, 1) * 255


def _glass_blur(x, c):
    sigma, _, _ = c
    x = np.uint8(gaussian(x / 255.0, sigma=sigma, channel_axis=-1) * 255)
    # The script's loop over range(32 - c[1], c[1], -1), compiled by imagecorruptions (its own
    # generator, so seeded from numpy's).
    seed = int(np.random.randint(2**31 - 1))
    x = _shuffle_pixels_njit_glass_blur(x.shape[0], x.shape[1], x, c, seed)
    return np.clip(gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255


def _defocus_blur(x, c):
    x = x / 255.0
    kernel = disk(radius=c[0], alias_blur=c[1])
    channels = [cv2.filter2D(x[:, :, d], -1, kernel) for d in range(x.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


def _motion_blur(x, c):
    # Wand/ImageMagick in the script; imagecorruptions' numpy port here (see the module docstring).
    blurred = _motion_blur_numpy(x, radius=c[0], sigma=c[1], angle=np.random.uniform(-45, 45))
    return np.round(np.clip(blurred, 0, 255))


def _zoom_blur(x, c):
    x = (x / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for zoom_factor in c:
        out += _clipped_zoom(x, zoom_factor)
    x = (x + out) / (len(c) + 1)
    return np.clip(x, 0, 1) * 255


def _clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """The script's centred zoom of an HxWxC array, per axis (the script's assumes a square)."""
    height, width = image.shape[:2]
    crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    image = scizoom(image[top : top + crop_h, left : left + crop_w], (factor, factor, 1), order=1)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


# === Weather ===


def _snow(x, c):
    x = x.astype(np.float32) / 255.0
    layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = _clipped_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = (np.clip(layer.squeeze(-1), 0, 1) * 255).astype(np.uint8)  # the script's PIL image
    angle = np.random.uniform(-135, -45)
    layer = np.round(_motion_blur_numpy(layer, radius=c[4], sigma=c[5], angle=angle)) / 255.0
    layer = layer[..., np.newaxis]
    gray = x if x.shape[-1] == 1 else cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., np.newaxis]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def _frost(x, c):
    height, width = x.shape[:2]
    frost = _frost_photo(int(np.random.randint(5)), _FROST_SCALE * max(height, width) / 32)
    top = np.random.randint(0, frost.shape[0] - height)
    left = np.random.randint(0, frost.shape[1] - width)
    frost = frost[top : top + height, left : left + width][..., [2, 1, 0]]  # BGR → RGB
    return np.clip(c[0] * x + c[1] * frost, 0, 255)


@functools.cache
def _frost_photo(index: int, scale: float) -> np.ndarray:
    """imagecorruptions' frost photo `index` (BGR) resized by `scale`, read once per process."""
    resource = importlib.resources.files("imagecorruptions") / "frost" / _FROST_FILES[index]
    with importlib.resources.as_file(resource) as path:
        photo = cv2.imread(str(path))
    photo = cv2.resize(photo, (0, 0), fx=scale, fy=scale)
    photo.setflags(write=False)
    return photo


def _fog(x, c):
    height, width = x.shape[:2]
    x = x / 255.0
    max_val = x.max()
    fractal = plasma_fractal(mapsize=next_power_of_2(max(height, width)), wibbledecay=c[1])
    x += c[0] * fractal[:height, :width][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def _spatter(x, c):
    x = x.astype(np.float32) / 255.0
    liquid = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid = gaussian(liquid, sigma=c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water drops with a refraction-like rim
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        kernel = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
        dist = cv2.filter2D(dist, cv2.CV_8U, kernel)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = liquid * dist
        peak = m.max()
        if peak == 0:  # no drop passed the threshold (the script: 0/0, a black image)
            return x * 255
        m = m / peak * c[4]
        # Pale turquoise, added to channels 0, 1, 2 as the script does (it calls them BGR).
        color = np.array([175, 238, 238], np.float32) / 255
        return np.clip(x + m[..., np.newaxis] * color, 0, 1) * 255
    m = gaussian(np.where(liquid > c[3], 1, 0).astype(np.float32), sigma=c[4])
    m[m < 0.8] = 0
    mud = np.array([63, 42, 20], np.float32) / 255 * m[..., np.newaxis]  # mud brown
    return np.clip(x * (1 - m[..., np.newaxis]) + mud, 0, 1) * 255


# === Digital ===


def _brightness(x, c):
    x = sk.color.rgb2hsv(x / 255.0)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    return np.clip(sk.color.hsv2rgb(x), 0, 1) * 255


def _contrast(x, c):
    x = x / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def _saturate(x, c):
    x = sk.color.rgb2hsv(x / 255.0)
    x[:, :, 1] = np.clip(x[:, :, 1] * c[0] + c[1], 0, 1)
    return np.clip(sk.color.hsv2rgb(x), 0, 1) * 255


def _elastic_transform(image, c):
    image = image.astype(np.float32) / 255.0
    shape = image.shape
    height, width = shape[:2]
    alpha, sigma, shift = (min(height, width) * k for k in c)
    # A random affine map of three points around the centre...
    center = np.float32((height, width)) // 2
    size = min(height, width) // 3
    pts1 = np.float32([center + size, [center[0] + size, center[1] - size], center - size])
    pts2 = pts1 + np.random.uniform(-shift, shift, size=pts1.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)
    image = image.reshape(shape)  # cv2 drops a single channel
    # ...then a smooth random displacement field.
    dx = gaussian(np.random.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3)
    dy = gaussian(np.random.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3)
    dx = (dx * alpha).astype(np.float32)[..., np.newaxis]
    dy = (dy * alpha).astype(np.float32)[..., np.newaxis]
    x, y, z = np.meshgrid(np.arange(width), np.arange(height), np.arange(shape[2]))
    indices = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1)), np.reshape(z, (-1, 1))
    warped = map_coordinates(image, indices, order=1, mode="reflect").reshape(shape)
    return np.clip(warped, 0, 1) * 255


def _pixelate(x, c):
    height, width, channels = x.shape
    image = Image.fromarray(x if channels == 3 else x[..., 0])
    image = image.resize((int(width * c), int(height * c)), Image.BOX)
    return np.asarray(image.resize((width, height), Image.BOX))


def _jpeg_compression(x, c):
    image = Image.fromarray(x if x.shape[-1] == 3 else x[..., 0])
    output = BytesIO()
    image.save(output, "JPEG", quality=c)
    return np.asarray(Image.open(output))


_FUNCTIONS = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "spatter": _spatter,
    "saturate": _saturate,
}
