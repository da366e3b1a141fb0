"""Seed 003's five test-time disturbances: the helpers, the accuracies and the table."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_images, tiny_model
from tfaux.evaluate.disturbances import (
    DISTURBANCES,
    applicable_disturbances,
    disturbance_accuracy,
    five_crop,
    grayscale,
)
from tfaux.reporting import mean_std_table

GRAY_KEYS = ["clean", "random_crop", "random_flip", "color_jitter", "five_crop"]


def brightness_predict(images):
    """Class 1 iff the image's mean is above 0.5 (a fixed, honest 'model')."""
    mean = np.asarray(images).mean(axis=(1, 2, 3))
    return np.stack([0.5 - mean, mean - 0.5], axis=1)


def constant_images(values, shape=(16, 16, 1)) -> np.ndarray:
    return np.asarray(values, np.float32).reshape(-1, 1, 1, 1) * np.ones(shape, np.float32)


# === Helpers ===


def test_five_crop_of_a_constant_image_is_the_image():
    x = constant_images([0.2, 0.7], (28, 28, 3))
    crops = five_crop(x).numpy()
    assert crops.shape == (5, 2, 28, 28, 3)
    np.testing.assert_allclose(crops, np.broadcast_to(x, crops.shape), atol=1e-6)


@pytest.mark.parametrize("side, crop, centre", [(28, 24, 2), (32, 28, 2), (16, 14, 1)])
def test_five_crop_takes_the_corners_and_centre(side, crop, centre):
    # Bilinear resizing with half-pixel centres maps the corner pixels of each crop exactly.
    x = random_images(3, (side, side, 1))
    crops = five_crop(x).numpy()
    far = side - crop
    for crops_k, (top, left) in zip(
        crops, [(0, 0), (0, far), (far, 0), (far, far), (centre, centre)], strict=True
    ):
        np.testing.assert_allclose(crops_k[:, 0, 0], x[:, top, left], atol=1e-6)
        np.testing.assert_allclose(
            crops_k[:, -1, -1], x[:, top + crop - 1, left + crop - 1], atol=1e-6
        )
    with pytest.raises(ValueError, match="fraction"):
        five_crop(x, fraction=0.0)


def test_grayscale_is_luminance_on_rgb_and_identity_on_gray():
    x = random_images(2, (8, 8, 3))
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(grayscale(x), np.repeat(luma[..., None], 3, axis=-1), atol=1e-6)
    gray = random_images(2, (8, 8, 1))
    np.testing.assert_array_equal(grayscale(gray), gray)


def test_applicable_disturbances():
    assert applicable_disturbances(3) == DISTURBANCES
    assert applicable_disturbances(3, flip=False) == (
        "random_crop",
        "random_grayscale",
        "color_jitter",
        "five_crop",
    )
    assert applicable_disturbances(1) == tuple(GRAY_KEYS[1:])
    assert applicable_disturbances(1, flip=False) == ("random_crop", "color_jitter", "five_crop")


# === disturbance_accuracy ===


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("flip", [True, False])
def test_keys_and_a_disturbance_proof_predictor(channels, flip):
    # Constant images far from the 0.5 threshold keep their class under every disturbance:
    # padding-crops of 0.9 keep a mean >= 0.9 * 144/256 > 0.5, jitter scales 0.1 by at most 1.4.
    values = np.tile([0.1, 0.9], 20)
    x = constant_images(values, (16, 16, channels))
    y = (values > 0.5).astype(np.int64)
    results = disturbance_accuracy(brightness_predict, x, y, flip=flip, batch_size=16)
    expected = ["clean", *applicable_disturbances(channels, flip)]
    assert list(results) == expected
    assert ("random_flip" in results) == flip
    assert ("random_grayscale" in results) == (channels == 3)
    assert results == dict.fromkeys(expected, 1.0)
    # The same predictor against the opposite labels is always wrong.
    assert disturbance_accuracy(brightness_predict, x, 1 - y, flip=flip) == dict.fromkeys(
        expected, 0.0
    )


def test_flip_mirrors_every_image():
    # Class 1 iff the left half is brighter: every mirrored image flips its class.
    def left_brighter(images):
        images = np.asarray(images)
        diff = images[:, :, :8].mean(axis=(1, 2, 3)) - images[:, :, 8:].mean(axis=(1, 2, 3))
        return np.stack([-diff, diff], axis=1)

    x = np.zeros((30, 16, 16, 1), np.float32)
    x[:, :, :6] = 0.8
    y = np.ones(30, np.int64)
    results = disturbance_accuracy(left_brighter, x, y, batch_size=7)
    assert results["clean"] == 1.0 and results["random_flip"] == 0.0
    assert results["five_crop"] == 1.0


def test_flip_of_symmetric_images_keeps_a_real_models_predictions():
    model = tiny_model()
    predict = tf.function(lambda images: model(images, training=False)["logits"])
    x = random_images(40, (16, 16, 1), seed=1)
    x = (x + x[:, :, ::-1]) / 2  # left-right symmetric
    y = np.argmax(predict(x).numpy(), axis=-1)
    results = disturbance_accuracy(predict, x, y, batch_size=16)
    assert results["clean"] == 1.0
    assert results["random_flip"] == 1.0


def test_grayscale_converts_every_image():
    # Class 1 iff red > green: gray images have red == green, so argmax ties go to class 0.
    def redder(images):
        images = np.asarray(images)
        diff = images[..., 0].mean(axis=(1, 2)) - images[..., 1].mean(axis=(1, 2))
        return np.stack([-diff, diff], axis=1)

    x = np.zeros((20, 16, 16, 3), np.float32)
    x[..., 0] = 0.9
    x[..., 1] = 0.2
    results = disturbance_accuracy(redder, x, np.ones(20, np.int64))
    assert results["clean"] == 1.0 and results["random_grayscale"] == 0.0


def test_random_crop_and_jitter_change_images_per_seed():
    # Class 1 iff the image has no zero pixel (no padding came in) / an unchanged brightness.
    def no_padding(images):
        ok = np.asarray(images).min(axis=(1, 2, 3)) > 0
        return np.stack([~ok, ok], axis=1).astype(np.float32)

    x = constant_images(np.full(810, 0.5))
    y = np.ones(810, np.int64)
    results = disturbance_accuracy(no_padding, x, y, flip=False, seed=3)
    # A crop brings in no padding only if both offsets are 4 of 0..8: probability 1/81.
    assert results["clean"] == 1.0 and results["five_crop"] == 1.0
    assert 0.0 < results["random_crop"] < 0.04
    assert results["color_jitter"] == 1.0  # brightness scaling keeps pixels positive

    def unchanged(images):
        ok = np.abs(np.asarray(images).mean(axis=(1, 2, 3)) - 0.5) < 0.01
        return np.stack([~ok, ok], axis=1).astype(np.float32)

    # Brightness factor uniform in [0.6, 1.4] lands within 0.02 of 1 with probability 5 %.
    jitter = disturbance_accuracy(unchanged, x, y, flip=False, seed=3)["color_jitter"]
    assert 0.01 < jitter < 0.12


def test_same_seed_same_results_and_other_seeds_other_images():
    seen = []

    def recording(images):
        seen.append(np.asarray(images).copy())
        return brightness_predict(images)

    x = random_images(20, (16, 16, 3), seed=2)
    y = np.arange(20) % 2
    first = disturbance_accuracy(recording, x, y, seed=5, batch_size=8)
    calls = len(seen)
    assert disturbance_accuracy(recording, x, y, seed=5, batch_size=8) == first
    again = seen[calls:]
    np.testing.assert_array_equal(np.concatenate(seen[:calls]), np.concatenate(again))
    disturbance_accuracy(recording, x, y, seed=6, batch_size=8)
    other = seen[2 * calls :]
    # Per batch: clean, crop, flip, grayscale, jitter, 5 crops; crop and jitter depend on seed.
    for index, (a, b) in enumerate(zip(again, other, strict=True)):
        random = index % 10 in (1, 4)
        assert np.array_equal(a, b) != random, index


def test_real_model_clean_accuracy_and_batching():
    model = tiny_model()
    predict = tf.function(lambda images: model(images, training=False)["logits"])
    x = random_images(50, (16, 16, 1), seed=3)
    y = np.random.default_rng(0).integers(0, 4, 50)
    results = disturbance_accuracy(predict, x, y, batch_size=16)
    assert list(results) == GRAY_KEYS
    expected = np.mean(np.argmax(predict(x).numpy(), axis=-1) == y)
    assert results["clean"] == pytest.approx(expected)
    assert all(type(v) is float and 0.0 <= v <= 1.0 for v in results.values())
    # Deterministic disturbances do not depend on batching.
    other = disturbance_accuracy(predict, x, y, batch_size=50)
    for key in ("clean", "random_flip", "five_crop"):
        assert other[key] == pytest.approx(results[key]), key
    # uint8 images are pixels / 255.
    pixels = (x * 255).round().astype(np.uint8)
    assert disturbance_accuracy(predict, pixels, y) == disturbance_accuracy(
        predict, pixels / np.float32(255), y
    )


def test_per_example_correctness_gives_exactly_the_accuracies():
    # Paired tests between models need each image's result; the accuracies stay the same.
    def predict(images):  # a fixed "model" whose answers change with every disturbance
        classes = (np.asarray(images).mean(axis=(1, 2, 3)) * 997).astype(int) % 4
        return np.eye(4, dtype=np.float32)[classes]

    x = random_images(40, (16, 16, 1), seed=6)
    y = np.random.default_rng(1).integers(0, 4, 40)
    plain = disturbance_accuracy(predict, x, y, seed=2, batch_size=16)
    results, correct = disturbance_accuracy(
        predict, x, y, seed=2, batch_size=16, return_correct=True
    )
    assert results == plain and list(correct) == list(results) == GRAY_KEYS
    np.testing.assert_array_equal(correct["clean"], np.argmax(predict(x), axis=-1) == y)
    for name, accuracy in results.items():
        if name == "five_crop":  # the fraction of each image's five crops classified right
            assert correct[name].dtype == np.float64 and correct[name].shape == (40,)
            assert set(np.round(5 * correct[name], 9)) <= {0, 1, 2, 3, 4, 5}
            # Summed per batch, then divided: equal up to the last bit of rounding.
            assert np.mean(correct[name]) == pytest.approx(accuracy, rel=1e-12, abs=0)
        else:
            assert correct[name].dtype == bool and correct[name].shape == (40,), name
            assert np.mean(correct[name]) == accuracy, name
    assert all(0 < accuracy < 1 for accuracy in results.values())  # not trivial arrays
    assert 0 < np.mean((correct["five_crop"] > 0) & (correct["five_crop"] < 1))


@pytest.mark.parametrize(
    "x, y, kwargs, match",
    [
        (np.zeros((4, 8, 8, 1)), np.zeros(3, int), {}, "as many labels"),
        (np.zeros((4, 8, 8)), np.zeros(4, int), {}, "1 or 3 channels"),
        (np.zeros((4, 8, 8, 2)), np.zeros(4, int), {}, "1 or 3 channels"),
        (np.zeros((4, 8, 8, 1)), np.zeros((4, 2), int), {}, "labels of shape"),
        (np.zeros((4, 8, 8, 1)), np.zeros(4), {}, "integer labels"),
        (np.zeros((0, 8, 8, 1)), np.zeros(0, int), {}, "at least one"),
        (np.zeros((4, 8, 8, 1)), np.zeros(4, int), {"batch_size": 0}, "batch_size"),
        (np.zeros((4, 8, 8, 1)), np.zeros(4, int), {"seed": -1}, "seed"),
    ],
)
def test_bad_inputs_raise(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        disturbance_accuracy(brightness_predict, x, y, **kwargs)


def test_predict_must_return_logits_per_image():
    with pytest.raises(ValueError, match="logits"):
        disturbance_accuracy(lambda images: np.zeros(3), np.zeros((4, 8, 8, 1)), np.zeros(4, int))


# === mean ± std table (tfaux.reporting) ===


def test_mean_std_table_formats_mean_and_std_in_percent():
    results = {
        "base": {"clean": [0.90, 0.92], "random_crop": [0.8]},
        "R-base": {"clean": [0.91, 0.93, 0.95], "five_crop": [0.5, 0.6], "extra": [0.1, 0.1]},
    }
    assert mean_std_table(results).splitlines() == [
        "| model | clean | random_crop | five_crop | extra |",
        "|---|---|---|---|---|",
        "| base | 91.00 ± 1.41 | 80.00 | – | – |",
        "| R-base | 93.00 ± 2.00 | – | 55.00 ± 7.07 | 10.00 ± 0.00 |",
    ]
