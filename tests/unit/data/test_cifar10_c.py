"""Tests for the CIFAR-10-C constants of the -C set (tfaux.data.cifar10_c via corrupted_set)."""

import numpy as np
import pytest
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

from tests.helpers import garments
from tfaux.config import CorruptionConfig, Recipe
from tfaux.data import cifar10_c
from tfaux.data.corrupted_set import COMMON, SEVERITIES, VALIDATION, corrupt_images, corrupted_set
from tfaux.overrides import apply_overrides

ALL = COMMON + VALIDATION
NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
BLUR = ("defocus_blur", "motion_blur", "zoom_blur", "gaussian_blur")  # glass_blur: its own test
# make_cifar_c.py's constants, copied here independently of the module's table.
GAUSSIAN_NOISE_SIGMA = (0.04, 0.06, 0.08, 0.09, 0.10)
BRIGHTNESS_SHIFT = (0.05, 0.1, 0.15, 0.2, 0.3)
CONTRAST_FACTOR = (0.75, 0.5, 0.4, 0.3, 0.15)
# np.uint8 truncates, as the script's `np.uint8(corruption(img))`: outputs may be up to 1/255
# below the float formula.
TRUNCATION = 1 / 255 + 1e-6


def change(corrupted: np.ndarray, clean: np.ndarray) -> float:
    return float(np.abs(corrupted - clean).mean())


def on_uint8_grid(images: np.ndarray) -> np.ndarray:
    """Images that are exactly representable in uint8, as the script's PIL inputs."""
    return np.round(255 * images).astype(np.float32) / 255


@pytest.fixture(scope="module")
def gray():
    return on_uint8_grid(garments(8, (28, 28, 1)))


@pytest.fixture(scope="module")
def color():
    return on_uint8_grid(garments(8, (32, 32, 3), seed=1))


@pytest.mark.parametrize("name", ALL)
def test_every_severity_keeps_shape_dtype_and_range(name, gray, color):
    # Fashion-MNIST, CIFAR and a non-square size: the script's 32s are the image's own sizes.
    odd = garments(2, (20, 36, 3), seed=2)
    for images in (gray, color, odd):
        for severity in SEVERITIES:
            out = corrupt_images(images, name, severity, seed=0)
            assert out.shape == images.shape and out.dtype == np.float32, (images.shape, severity)
            assert out.min() >= 0 and out.max() <= 1, (images.shape, severity)


@pytest.mark.parametrize("name", NOISE + BLUR)
def test_noise_and_blur_grow_with_severity(name, gray, color):
    # The constants grow with severity. motion_blur 3 (radius 6, σ 2) and 4 (radius 8, σ 2) have
    # almost the same kernel (taps past 3σ are ~0), so only the random angles separate them.
    for images in (gray, color):
        changes = [change(corrupt_images(images, name, s, seed=0), images) for s in SEVERITIES]
        assert changes[0] > 0
        assert all(b >= a for a, b in zip(changes, changes[1:], strict=False)), changes


def test_glass_blur_grows_with_iterations(gray, color):
    # (σ, max shift, iterations): (0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2),
    # (0.4, 1, 2). Severity 5 changes pixels slightly less than 4 (on Fashion-MNIST too:
    # 0.099 → 0.096): its wider σ smooths some of the shuffle back, as in CIFAR-10-C itself.
    for images in (gray, color):
        c = [change(corrupt_images(images, "glass_blur", s, seed=0), images) for s in SEVERITIES]
        assert 0 < c[0] <= c[1] <= c[2] < min(c[3], c[4]), c


def test_gaussian_noise_is_the_formula_with_cifar_sigma(gray, color):
    # Independent of the -C set's seeding: the same numpy seed before the module and numpy.
    for images in (gray, color):
        for severity, sigma in zip(SEVERITIES, GAUSSIAN_NOISE_SIGMA, strict=True):
            uint8 = np.round(255 * images[0]).astype(np.uint8)
            np.random.seed(severity)
            out = cifar10_c.corrupt(uint8, "gaussian_noise", severity) / 255
            np.random.seed(severity)
            expected = np.clip(images[0] + np.random.normal(0, sigma, images[0].shape), 0, 1)
            assert out.dtype == np.float64 and out.shape == images[0].shape
            assert np.all(expected - out >= -1e-9) and np.all(expected - out < TRUNCATION)


def test_gaussian_noise_on_gray_has_the_full_sigma():
    # Noise is drawn on the gray channel itself, not on 3 channels averaged by luminance (which
    # would give 0.67 σ). Mid-gray, so no clipping; the mean is -0.5/255 from truncation.
    images = np.full((8, 28, 28, 1), 128 / 255, np.float32)
    for severity, sigma in zip(SEVERITIES, GAUSSIAN_NOISE_SIGMA, strict=True):
        noise = corrupt_images(images, "gaussian_noise", severity, seed=0) - images
        assert abs(noise.std() - sigma) < 0.05 * sigma, (severity, noise.std())
        assert abs(noise.mean() + 0.5 / 255) < 4 * sigma / np.sqrt(noise.size), noise.mean()


def test_brightness_and_contrast_are_the_formulas_with_cifar_constants(gray, color):
    for severity in SEVERITIES:
        shift, factor = BRIGHTNESS_SHIFT[severity - 1], CONTRAST_FACTOR[severity - 1]
        # Brightness adds to the HSV value (on gray images: to the gray level).
        out = corrupt_images(gray, "brightness", severity, seed=0)
        np.testing.assert_allclose(out, np.clip(gray + shift, 0, 1), atol=TRUNCATION)
        hsv = rgb_to_hsv(color)
        hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
        out = corrupt_images(color, "brightness", severity, seed=0)
        np.testing.assert_allclose(out, hsv_to_rgb(hsv), atol=TRUNCATION)
        # Contrast scales about each image's mean, per channel.
        for images in (gray, color):
            mean = images.mean(axis=(1, 2), keepdims=True)
            expected = np.clip((images - mean) * factor + mean, 0, 1)
            out = corrupt_images(images, "contrast", severity, seed=0)
            np.testing.assert_allclose(out, expected, atol=TRUNCATION)


def test_cifar_constants_are_milder_than_imagenet_ones(gray):
    # CIFAR-10-C's tables are for 32 px; ImageNet-C's for 224 px are far stronger there.
    for name in ("gaussian_noise", "impulse_noise", "defocus_blur", "gaussian_blur", "contrast"):
        for severity in (1, 5):
            cifar = change(corrupt_images(gray, name, severity, seed=0), gray)
            imagenet = change(
                corrupt_images(gray, name, severity, seed=0, constants="imagenet_c"), gray
            )
            assert cifar < imagenet, (name, severity, cifar, imagenet)


def test_module_rejects_bad_arguments():
    image = np.zeros((8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match="Did you mean 'frost'"):
        cifar10_c.corrupt(image, "frots", 1)
    with pytest.raises(ValueError, match="Expected an RGB image for frost"):
        cifar10_c.corrupt(image, "frost", 1)
    with pytest.raises(ValueError, match="uint8"):
        cifar10_c.corrupt(image.astype(np.float32), "fog", 1)
    with pytest.raises(ValueError, match="severity=0"):
        cifar10_c.corrupt(image, "fog", 0)


def test_the_cache_never_serves_the_other_constants(tmp_path, gray):
    labels = np.arange(8) % 3
    small = {"corruptions": ("gaussian_noise", "contrast"), "severities": (1, 5), "progress": False}
    cifar = corrupted_set(gray, labels, tmp_path, **small)
    assert cifar.generated and cifar.manifest["constants"] == "cifar10_c"
    imagenet = corrupted_set(gray, labels, tmp_path, constants="imagenet_c", **small)
    assert imagenet.generated and imagenet.manifest["constants"] == "imagenet_c"
    expected = corrupt_images(gray, "contrast", 5, seed=0, constants="imagenet_c")
    np.testing.assert_allclose(imagenet.images("contrast", 5), expected, atol=0.5 / 255 + 1e-6)
    assert change(imagenet.images("contrast", 5), corrupt_images(gray, "contrast", 5, seed=0)) > 0
    assert corrupted_set(gray, labels, tmp_path, constants="imagenet_c", **small).generated is False
    with pytest.raises(ValueError, match="Available: cifar10_c, imagenet_c"):
        corrupted_set(gray, labels, tmp_path, constants="imagenet", **small)


def test_config_chooses_the_constants():
    assert CorruptionConfig().constants == "cifar10_c"
    recipe = apply_overrides(Recipe(name="t"), ["corruption.constants=imagenet_c"])
    assert recipe.corruption.constants == "imagenet_c"
    with pytest.raises(ValueError, match=r"Did you mean 'cifar10_c'\?.*cifar10_c, imagenet_c"):
        CorruptionConfig(constants="cifar10")
