"""Train-time corruptions: invariants, severity order, seeds, graph mode, independent references."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters
import tensorflow as tf
from sklearn.datasets import load_digits

from tfaux.data.corruptions import (
    SEVERITY_PARAMETERS,
    TRAIN_CORRUPTIONS,
    corrupt,
    random_corruption,
    rotate,
)

SEVERITIES = range(1, 6)
# Corruptions with a random draw at a fixed severity (blur is deterministic).
RANDOM_AT_FIXED_SEVERITY = ("gaussian_noise", "rotation", "contrast_brightness")


@pytest.fixture(scope="module")
def digits():
    """32 real 8x8 digits upsampled to 28x28x1 in [0, 1]."""
    images = load_digits().images[:32, :, :, None].astype(np.float32) / 16.0
    return np.clip(tf.image.resize(images, (28, 28)).numpy(), 0.0, 1.0)


@pytest.fixture(scope="module")
def smooth_rgb():
    """8 smooth 32x32x3 colour patterns (sinusoids of random phase and frequency)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    freq, phase = rng.uniform(1, 3, (8, 1, 1, 3)), rng.uniform(0, 2 * np.pi, (8, 1, 1, 3))
    return (0.5 + 0.4 * np.sin(2 * np.pi * freq * (xx + yy)[..., None] + phase)).astype(np.float32)


@pytest.mark.parametrize("name", TRAIN_CORRUPTIONS)
@pytest.mark.parametrize("images", ["digits", "smooth_rgb"])
def test_keeps_shape_dtype_range_and_changes_the_image(name, images, request):
    x = request.getfixturevalue(images)
    for severity in SEVERITIES:
        out = corrupt(x, name, severity=severity, seed=(1, 2))
        assert out.shape == x.shape and out.dtype == tf.float32
        out = out.numpy()
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.abs(out - x).mean() > 0.0


@pytest.mark.parametrize("name", TRAIN_CORRUPTIONS)
@pytest.mark.parametrize("images", ["digits", "smooth_rgb"])
def test_stronger_with_severity(name, images, request):
    # Strictly increasing, not just 5 > 1: the random draws (noise image, rotation u, brightness
    # sign) depend on the seed only, so with one seed only the parameter changes between levels.
    x = request.getfixturevalue(images)
    change = [
        np.abs(corrupt(x, name, severity=s, seed=(3, 4)).numpy() - x).mean() for s in SEVERITIES
    ]
    assert np.all(np.diff(change) > 0), change


@pytest.mark.parametrize("name", TRAIN_CORRUPTIONS)
def test_per_example_severity_equals_whole_batch_calls(name, digits):
    x = digits[:5]
    severity = np.array([1, 5, 3, 2, 4])
    mixed = corrupt(x, name, severity=severity, seed=(7, 8)).numpy()
    for row, level in enumerate(severity):
        whole = corrupt(x, name, severity=int(level), seed=(7, 8)).numpy()
        np.testing.assert_array_equal(mixed[row], whole[row])


@pytest.mark.parametrize("name", TRAIN_CORRUPTIONS)
def test_same_seed_same_output_other_seed_other_output(name, smooth_rgb):
    x = smooth_rgb
    a = random_corruption(x, name, seed=(5, 0)).numpy()
    np.testing.assert_array_equal(a, random_corruption(x, name, seed=(5, 0)).numpy())
    assert not np.array_equal(a, random_corruption(x, name, seed=(5, 1)).numpy())
    a = corrupt(x, name, severity=3, seed=(5, 0)).numpy()
    np.testing.assert_array_equal(a, corrupt(x, name, severity=3, seed=tf.constant([5, 0])))
    other = corrupt(x, name, severity=3, seed=(6, 0)).numpy()
    assert np.array_equal(a, other) == (name not in RANDOM_AT_FIXED_SEVERITY)


def test_random_severity_is_uniform_over_levels_and_brightness_sign_is_random():
    # On mid-grey images contrast does nothing and nothing clips, so |change| is exactly the
    # brightness shift of the drawn severity: the severities can be read off the output.
    x = np.full((500, 2, 2, 1), 0.5, np.float32)
    change = random_corruption(x, "contrast_brightness", seed=(11, 0)).numpy()[:, 0, 0, 0] - 0.5
    shifts = np.array([shift for _, shift in SEVERITY_PARAMETERS["contrast_brightness"]])
    level = np.abs(np.abs(change)[:, None] - shifts).argmin(axis=1)
    np.testing.assert_allclose(np.abs(change), shifts[level], atol=1e-6)
    share = np.bincount(level, minlength=5) / len(x)
    assert np.all((share >= 0.1) & (share <= 0.3)), share
    assert 0.4 <= np.mean(change > 0) <= 0.6


@pytest.mark.parametrize("name", TRAIN_CORRUPTIONS)
def test_graph_mode_with_unknown_shape_and_tiny_batches(name):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 1], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ]
    )
    def step(x, seed):
        severity = tf.fill(tf.shape(x)[:1], 2)
        return random_corruption(x, name, seed=seed), corrupt(x, name, severity=severity, seed=seed)

    rng = np.random.default_rng(0)
    for shape in [(0, 28, 28, 1), (1, 28, 28, 1), (3, 7, 5, 1), (2, 1, 1, 1)]:
        x = rng.random(shape, np.float32)
        for out in step(x, tf.constant([1, 2])):
            assert out.shape == shape
            out = out.numpy()
            assert np.all((out >= 0.0) & (out <= 1.0))
        # Same draws as eager mode; graph kernels (sin, cos, fused adds) round a bit differently.
        np.testing.assert_allclose(
            step(x, tf.constant([1, 2]))[1], corrupt(x, name, severity=2, seed=(1, 2)), atol=1e-5
        )


def test_runs_per_replica_under_mirrored_strategy(mirrored, smooth_rgb):
    @tf.function
    def step(x):
        def replica_fn(x):
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.stack([tf.constant(0), tf.cast(replica, tf.int32)])
            return tf.stack([random_corruption(x, name, seed=seed) for name in TRAIN_CORRUPTIONS])

        return mirrored.run(replica_fn, args=(x,))

    first, second = (r.numpy() for r in mirrored.experimental_local_results(step(smooth_rgb)))
    assert first.shape == (len(TRAIN_CORRUPTIONS), *smooth_rgb.shape)
    assert not np.array_equal(first, second)  # each replica draws its own corruptions


@pytest.mark.parametrize("images", ["digits", "smooth_rgb"])
def test_blur_matches_cifar10c_skimage_gaussian_everywhere(images, request):
    # skimage.filters.gaussian(x, sigma) is the call of Hendrycks' make_cifar_c.py.
    x = request.getfixturevalue(images)[:5]
    out = corrupt(x, "gaussian_blur", severity=np.arange(1, 6), seed=(0, 0)).numpy()
    for row, sigma in enumerate(SEVERITY_PARAMETERS["gaussian_blur"]):
        expected = skimage.filters.gaussian(x[row], sigma=sigma, channel_axis=-1)
        np.testing.assert_allclose(out[row], expected, atol=1e-5)


def test_rotation_matches_scipy_rotate_everywhere(digits, smooth_rgb):
    # scipy's "reflect" (d c b a | a b c d) is TensorFlow's REFLECT fill.
    for x in (digits[:4], smooth_rgb[:4]):
        degrees = np.array([3.0, -12.5, 30.0, -30.0], np.float32)
        out = rotate(tf.constant(x), tf.constant(degrees)).numpy()
        for row, angle in enumerate(degrees):
            expected = ndi.rotate(x[row], angle, reshape=False, order=1, mode="reflect")
            np.testing.assert_allclose(out[row], expected, atol=1e-5)
    quarter = rotate(tf.constant(digits[:2]), tf.constant([90.0, 90.0])).numpy()
    np.testing.assert_allclose(quarter, np.rot90(digits[:2], 1, axes=(1, 2)), atol=1e-5)


def test_noise_std_matches_sigma():
    x = np.full((64, 32, 32, 1), 0.5, np.float32)  # 5σ from either bound: clipping is negligible
    for severity, sigma in zip(SEVERITIES, SEVERITY_PARAMETERS["gaussian_noise"], strict=True):
        noise = corrupt(x, "gaussian_noise", severity=severity, seed=(2, 3)).numpy() - x
        assert abs(noise.std() / sigma - 1.0) < 0.05
        assert abs(noise.mean()) < 0.05 * sigma


def test_contrast_brightness_follows_the_formula():
    x = np.random.default_rng(1).uniform(0.4, 0.6, (6, 8, 8, 3)).astype(np.float32)  # no clipping
    mean = x.mean(axis=(1, 2), keepdims=True)
    for severity, (contrast, shift) in zip(
        SEVERITIES, SEVERITY_PARAMETERS["contrast_brightness"], strict=True
    ):
        out = corrupt(x, "contrast_brightness", severity=severity, seed=(4, 4)).numpy()
        offset = out - ((x - mean) * contrast + mean)
        np.testing.assert_allclose(np.abs(offset), shift, atol=1e-5)  # ± shift, one sign per image
        np.testing.assert_allclose(offset, offset[:, :1, :1, :1] * np.ones_like(offset), atol=1e-5)


def test_unknown_name_suggests_the_closest():
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="Did you mean 'gaussian_blur'"):
        corrupt(x, "gaussian_blurr", severity=1, seed=(0, 0))
    with pytest.raises(ValueError, match="Did you mean 'rotation'"):
        random_corruption(x, "rotate", seed=(0, 0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(severity=0), "severity in 1..5"),
        (dict(severity=np.array([1, 6])), "severity in 1..5"),
        (dict(severity=np.ones((2, 1), np.int32)), "shape \\(batch,\\)"),
        (dict(seed=(1, 2, 3)), "seed of shape \\[2\\]"),
        (dict(seed=(1.0, 2.0)), "integer stateless seed"),
        (dict(x=np.zeros((4, 4, 1), np.float32)), "rank 4"),
    ],
)
def test_invalid_arguments(kwargs, message):
    args = dict(x=np.zeros((2, 4, 4, 1), np.float32), severity=1, seed=(0, 0)) | kwargs
    with pytest.raises(ValueError, match=message):
        corrupt(args.pop("x"), "gaussian_noise", **args)
