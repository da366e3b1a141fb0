"""Tests for tfaux.data.corrupted_set: the -C corruptions and their on-disk cache."""

import importlib
import json
import logging

import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv

from tests.helpers import garments
from tfaux.data.corrupted_set import (
    COMMON,
    CONSTANTS,
    SEVERITIES,
    VALIDATION,
    corrupt_images,
    corrupted_set,
)

# The module itself, for monkeypatching (a package may re-export a function of the same name).
corrupted_set_module = importlib.import_module("tfaux.data.corrupted_set")

ALL = COMMON + VALIDATION
NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


def change(corrupted: np.ndarray, clean: np.ndarray) -> float:
    return float(np.abs(corrupted - clean).mean())


@pytest.fixture(scope="module")
def gray():
    return garments(6, (28, 28, 1))


@pytest.fixture(scope="module")
def color():
    return garments(6, (32, 32, 3), seed=1)


def test_corruption_names():
    assert len(COMMON) == 15 and len(VALIDATION) == 4 and not set(COMMON) & set(VALIDATION)
    assert SEVERITIES == (1, 2, 3, 4, 5)
    assert CONSTANTS == ("cifar10_c", "imagenet_c")


@pytest.mark.parametrize("constants", CONSTANTS)
@pytest.mark.parametrize("name", ALL)
def test_every_corruption_keeps_shape_dtype_range_and_changes_images(name, constants, gray, color):
    for images in (gray, color):
        # saturate scales the HSV saturation, which is 0 for gray images: only 4 and 5 (which add
        # a constant saturation) change them.
        severity = 5 if name == "saturate" and images.shape[-1] == 1 else 3
        out = corrupt_images(images, name, severity, seed=0, constants=constants)
        assert out.shape == images.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert change(out, images) > 0


@pytest.mark.parametrize("constants", CONSTANTS)
def test_saturate_leaves_gray_images_exactly_unchanged_at_low_severity(constants, gray):
    # Only the change is resized back from 32 px, so a corruption that changes nothing is exact.
    for severity in (1, 2, 3):
        out = corrupt_images(gray, "saturate", severity, seed=0, constants=constants)
        np.testing.assert_array_equal(out, gray)


@pytest.mark.parametrize("constants", CONSTANTS)
@pytest.mark.parametrize("name", ALL)
def test_severity_5_changes_images_more_than_severity_1(name, constants, gray, color):
    # Mean |corrupted - clean| orders severity 1 and 5 for every corruption, even the ones not
    # monotone in between at this size (imagenet_c: glass_blur, fog, frost, snow, spatter), with
    # two exceptions by design: see the saturate test below, and CIFAR-10-C's elastic_transform,
    # whose severity 1 is its largest random affine map (2.6 px at 32 px, against 1 px at 5).
    cases = (gray,) if name == "saturate" else (gray, color)
    for images in cases:
        weak = change(corrupt_images(images, name, 1, seed=0, constants=constants), images)
        strong = change(corrupt_images(images, name, 5, seed=0, constants=constants), images)
        if constants == "cifar10_c" and name == "elastic_transform":
            weak, strong = strong, weak
        assert strong > weak, (images.shape, weak, strong)


@pytest.mark.parametrize("constants", CONSTANTS)
def test_saturate_severity_orders_saturation_on_color_images(constants, color):
    # Severities 1-2 desaturate (x0.3, x0.1), 3-5 oversaturate (imagenet_c: x2, x5 + 0.1,
    # x20 + 0.2; cifar10_c: x1.5, x2 + 0.1, x2.5 + 0.2): the pixel change of 1 can exceed that
    # of 5, so we check the saturation itself.
    def saturation(images):
        return float(rgb_to_hsv(images)[..., 1].mean())

    s = [
        saturation(corrupt_images(color, "saturate", k, seed=0, constants=constants))
        for k in SEVERITIES
    ]
    clean = saturation(color)
    assert s[1] < s[0] < clean < s[2] < s[3] < s[4]


@pytest.mark.parametrize("constants", CONSTANTS)
def test_spatter_without_drops_does_not_black_out_images(constants):
    # At 32 px spatter 1 sometimes gets no drop over its threshold; the package (and
    # make_cifar_c.py) then casts NaN to a black image (one of these 40 images under
    # imagenet_c). No image may come back black.
    images = garments(40, (32, 32, 3), seed=3)
    out = corrupt_images(images, "spatter", 1, seed=0, constants=constants)
    brightest = out.reshape(40, -1).max(axis=1)
    assert np.all(brightest > 0.5 * images.reshape(40, -1).max(axis=1))


@pytest.mark.parametrize("constants", CONSTANTS)
def test_same_seed_same_images_and_caller_rng_untouched(constants, gray):
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    for name in ALL:
        a = corrupt_images(gray, name, 4, seed=7, constants=constants)
        b = corrupt_images(gray, name, 4, seed=7, constants=constants)
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert np.random.random() == expected_next  # the global RNG was restored


@pytest.mark.parametrize("constants", CONSTANTS)
@pytest.mark.parametrize("name", (*NOISE, "glass_blur"))
def test_different_seed_different_noise(name, constants, gray):
    a = corrupt_images(gray, name, 3, seed=0, constants=constants)
    b = corrupt_images(gray, name, 3, seed=1, constants=constants)
    assert change(a, b) > 0.005
    # Each image gets its own noise, not one pattern repeated.
    images = np.repeat(gray[:1], 2, axis=0)
    out = corrupt_images(images, name, 3, seed=0, constants=constants)
    assert change(out[0], out[1]) > 0


def test_corrupt_images_rejects_bad_arguments(gray):
    with pytest.raises(ValueError, match="Did you mean 'fog'"):
        corrupt_images(gray, "fgo", 1, seed=0)
    with pytest.raises(ValueError, match="Received: severity=6"):
        corrupt_images(gray, "fog", 6, seed=0)
    with pytest.raises(ValueError, match="Expected float images"):
        corrupt_images((255 * gray).astype(np.uint8), "fog", 1, seed=0)
    with pytest.raises(ValueError, match="NHWC"):
        corrupt_images(gray[0], "fog", 1, seed=0)
    with pytest.raises(ValueError, match="seed"):
        corrupt_images(gray, "fog", 1, seed=-1)
    with pytest.raises(
        ValueError, match="Did you mean 'cifar10_c'.*Available: cifar10_c, imagenet_c"
    ):
        corrupt_images(gray, "fog", 1, seed=0, constants="cifar_10c")


# === Cache ===

SMALL = {"corruptions": ("gaussian_noise", "saturate"), "severities": (1, 3), "progress": False}


def _mtimes(path):
    return {p.name: p.stat().st_mtime_ns for p in sorted(path.iterdir())}


def test_cache_generates_once_then_reuses(tmp_path, gray):
    labels = np.arange(6) % 3
    first = corrupted_set(gray, labels, tmp_path / "c", **SMALL)
    assert first.generated is True
    files = sorted(p.name for p in first.path.iterdir())
    assert files == ["clean.npz", "gaussian_noise.npz", "manifest.json", "saturate.npz"]
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["severities"] == [1, 3]
    assert manifest["constants"] == "cifar10_c"
    assert manifest["image_shape"] == [6, 28, 28, 1]
    assert manifest["imagecorruptions_version"].startswith("imagecorruptions")
    assert set(manifest["files"]) == {"clean.npz", "gaussian_noise.npz", "saturate.npz"}
    before = _mtimes(first.path)

    second = corrupted_set(gray, labels, tmp_path / "c", **SMALL)
    assert second.generated is False
    assert _mtimes(second.path) == before
    assert second.corruptions == SMALL["corruptions"] and second.severities == (1, 3)
    np.testing.assert_array_equal(second.labels, labels)
    np.testing.assert_array_equal(second.clean_images(), np.round(255 * gray) / 255)
    noisy = second.images("gaussian_noise", 3)
    assert noisy.dtype == np.float32 and noisy.shape == gray.shape
    np.testing.assert_allclose(
        noisy, corrupt_images(gray, "gaussian_noise", 3, seed=0), atol=0.5 / 255 + 1e-6
    )
    with pytest.raises(ValueError, match="Did you mean"):
        second.images("gausian_noise", 1)
    with pytest.raises(ValueError, match="severity=2"):
        second.images("gaussian_noise", 2)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("seed", "seed differs"),
        ("images", "images differ"),
        ("severities", "severities differs"),
        ("constants", "constants differs (cached: cifar10_c, requested: imagenet_c)"),
    ],
)
def test_cache_detects_changed_inputs(tmp_path, gray, caplog, kind, expected):
    labels = np.zeros(6, np.int64)
    corrupted_set(gray, labels, tmp_path, **SMALL)
    changed = {
        "seed": {"seed": 1},
        "images": {"images": gray[::-1]},
        "severities": {"severities": (1, 2)},
        "constants": {"constants": "imagenet_c"},
    }
    args = {"images": gray, "labels": labels, "cache_dir": tmp_path, **SMALL, **changed[kind]}
    with caplog.at_level(logging.WARNING, logger="tfaux"):
        assert corrupted_set(**args).generated is True
    assert expected in caplog.text
    assert corrupted_set(**args).generated is False


def test_cache_detects_corrupted_file(tmp_path, gray, caplog):
    labels = np.zeros(6, np.int64)
    corrupted_set(gray, labels, tmp_path, **SMALL)
    path = tmp_path / "saturate.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="tfaux"):
        again = corrupted_set(gray, labels, tmp_path, **SMALL)
    assert again.generated is True
    assert "saturate.npz does not match its sha256" in caplog.text
    again.images("saturate", 3)  # readable again


def test_interrupted_generation_leaves_no_valid_cache(tmp_path, gray, monkeypatch):
    labels = np.zeros(6, np.int64)
    real = corrupted_set_module.corrupt_images

    def fails_on_saturate(images, corruption, severity, **kwargs):
        if corruption == "saturate":
            raise KeyboardInterrupt
        return real(images, corruption, severity, **kwargs)

    monkeypatch.setattr(corrupted_set_module, "corrupt_images", fails_on_saturate)
    with pytest.raises(KeyboardInterrupt):
        corrupted_set(gray, labels, tmp_path, **SMALL)
    assert not (tmp_path / "manifest.json").exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    monkeypatch.setattr(corrupted_set_module, "corrupt_images", real)
    assert corrupted_set(gray, labels, tmp_path, **SMALL).generated is True
