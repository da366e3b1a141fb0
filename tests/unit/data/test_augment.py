"""In-graph augmentations: invariants, seeds, graph mode, identities and hand computations."""

import numpy as np
import pytest
import tensorflow as tf

from tfaux.data.augment import (
    AUGMENTATIONS,
    color_jitter,
    geometric_augment,
    get_augmentation,
    random_flip,
    random_grayscale,
    random_resized_crop,
    random_rotation,
    simclr_augment,
    two_views,
)

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
SEED = tf.constant([3, 7], tf.int32)
OTHER_SEED = tf.constant([3, 8], tf.int32)
OPS = {
    "random_resized_crop": random_resized_crop,
    "random_flip": random_flip,
    "color_jitter": color_jitter,
    "random_grayscale": lambda x, seed: random_grayscale(x, seed, probability=0.5),
    "random_rotation": random_rotation,
    "simclr_augment": simclr_augment,
    "geometric_augment": geometric_augment,
}
# Ops whose output changes 1-channel images (grayscale is their identity).
CHANGES_GRAY = [name for name in OPS if name != "random_grayscale"]


def images(n=6, channels=3, size=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, channels), dtype=np.float32)


def ramps(n, height=16, width=16) -> tuple[np.ndarray, np.ndarray]:
    """Images whose value is the column (resp. row) coordinate in [0, 1]."""
    horizontal = np.broadcast_to(np.linspace(0, 1, width, dtype=np.float32), (height, width))
    vertical = np.broadcast_to(
        np.linspace(0, 1, height, dtype=np.float32)[:, None], (height, width)
    )
    return (
        np.repeat(horizontal[None, :, :, None], n, 0),
        np.repeat(vertical[None, :, :, None], n, 0),
    )


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["random", "zeros", "ones"])
def test_shape_dtype_range(name, channels, kind):
    x = images(4, channels)
    x = {"random": x, "zeros": np.zeros_like(x), "ones": np.ones_like(x)}[kind]
    out = OPS[name](x, SEED).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    if kind != "random" and name != "color_jitter" and name != "simclr_augment":
        # Geometry and grayscale move pixels around but cannot change a constant image (a crop
        # touching the border once gave a black last row: crop_and_resize's extrapolation).
        np.testing.assert_allclose(out, x, atol=1e-6)


@pytest.mark.parametrize("name", OPS)
def test_same_seed_same_output_other_seed_other_output(name):
    x = images(8, 3)
    first, again, other = (OPS[name](x, s).numpy() for s in (SEED, SEED, OTHER_SEED))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", OPS)
def test_each_image_gets_its_own_draw(name):
    # One image repeated: a per-batch draw would give identical rows.
    x = np.repeat(images(1, 3), 8, axis=0)
    out = OPS[name](x, SEED).numpy()
    assert len({row.tobytes() for row in out}) > 1


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_graph_mode_dynamic_batch(name, channels):
    fn = tf.function(
        lambda x, seed: OPS[name](x, seed),
        input_signature=[
            tf.TensorSpec([None, 16, 16, channels], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ],
    )
    for n in (3, 0):
        x = images(n, channels)
        out = fn(x, SEED)
        assert out.shape == x.shape
        np.testing.assert_allclose(out, OPS[name](x, SEED), atol=1e-5)  # graph vs eager rounding


def test_mirrored_strategy_per_replica(mirrored):
    x = tf.constant(images(4, 3))

    @tf.function
    def step():
        def replica_fn():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            return simclr_augment(x, tf.stack([tf.constant(5, tf.int32), replica]))

        return mirrored.run(replica_fn)

    a, b = (t.numpy() for t in mirrored.experimental_local_results(step()))
    assert a.shape == b.shape == x.shape and not np.array_equal(a, b)
    np.testing.assert_allclose(a, simclr_augment(x, tf.constant([5, 0])), atol=1e-6)


def test_other_float_dtypes_are_kept():
    x = tf.constant(images(2, 3), tf.float16)
    for op in OPS.values():
        assert op(x, SEED).dtype == tf.float16


def test_int64_seed_is_accepted():
    x = images(2, 3)
    np.testing.assert_array_equal(
        random_rotation(x, tf.constant([3, 7], tf.int64)), random_rotation(x, SEED)
    )


# === Identities at strength 0 ===


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_all_zero_is_exact_identity(channels):
    x = images(4, channels)
    out = color_jitter(x, SEED, brightness=0, contrast=0, saturation=0, hue=0)
    np.testing.assert_array_equal(out, x)


def test_color_jitter_zero_strength_leaves_its_property_unchanged():
    x = 0.2 + 0.6 * images(6, 3)  # mid-range: no clipping
    # Hue only: the max and min channel (value and saturation) are untouched.
    out = color_jitter(x, SEED, brightness=0, contrast=0, saturation=0, hue=0.2).numpy()
    np.testing.assert_allclose(out.max(-1), x.max(-1), atol=1e-5)
    np.testing.assert_allclose(out.min(-1), x.min(-1), atol=1e-5)
    assert np.abs(out - x).max() > 0.05
    # Saturation only: the luminance is untouched and the colour scales about it.
    out = color_jitter(x, SEED, brightness=0, contrast=0, saturation=0.4, hue=0).numpy()
    gray_in, gray_out = x @ LUMA, out @ LUMA
    np.testing.assert_allclose(gray_out, gray_in, atol=1e-5)
    chroma_in, chroma_out = x - gray_in[..., None], out - gray_out[..., None]
    factor = (chroma_out * chroma_in).sum((1, 2, 3)) / (chroma_in**2).sum((1, 2, 3))
    np.testing.assert_allclose(chroma_out, factor[:, None, None, None] * chroma_in, atol=1e-5)
    assert np.all((factor >= 0.6 - 1e-5) & (factor <= 1.4 + 1e-5)) and np.ptp(factor) > 0.05


def test_random_rotation_zero_degrees_is_identity():
    x = images(4, 3)
    np.testing.assert_allclose(random_rotation(x, SEED, max_degrees=0.0), x, atol=1e-5)


def test_random_resized_crop_whole_square_is_identity():
    x = images(4, 3)
    out = random_resized_crop(x, SEED, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(out, x, atol=1e-5)


# === Hand computations ===


def test_brightness_factor_matches_hand_computation():
    n, seed = 32, tf.constant([11, 4])
    kwargs = dict(brightness=0.4, contrast=0, saturation=0, hue=0)
    # On a constant 0.5 image each output image is the constant 0.5 * factor.
    constant = color_jitter(np.full((n, 8, 8, 3), 0.5, np.float32), seed, **kwargs).numpy()
    factor = constant[:, 0, 0, 0] / 0.5
    np.testing.assert_allclose(constant, np.broadcast_to(constant[:, :1, :1, :1], constant.shape))
    assert factor.min() >= 0.6 - 1e-6 and factor.max() <= 1.4 + 1e-6
    assert factor.min() < 0.8 and factor.max() > 1.2  # spread over the range
    # The draws depend on the seed and batch size only: the same factors scale any images.
    x = images(n, 3, size=8)
    expected = np.clip(factor[:, None, None, None] * x, 0, 1)
    np.testing.assert_allclose(color_jitter(x, seed, **kwargs), expected, atol=1e-6)


def test_contrast_scales_about_the_mean_gray_level():
    x = 0.3 + 0.4 * images(8, 1)  # within [0.3, 0.7]: no clipping at factors up to 1.4
    out = color_jitter(x, SEED, brightness=0, contrast=0.4, saturation=0, hue=0).numpy()
    mean = x.mean((1, 2, 3), keepdims=True)
    centred_in, centred_out = x - mean, out - mean
    factor = (centred_out * centred_in).sum((1, 2, 3)) / (centred_in**2).sum((1, 2, 3))
    np.testing.assert_allclose(centred_out, factor[:, None, None, None] * centred_in, atol=1e-5)
    assert np.all((factor >= 0.6 - 1e-5) & (factor <= 1.4 + 1e-5)) and np.ptp(factor) > 0.05


def test_color_jitter_on_gray_constant_image_is_brightness_only():
    # Contrast, saturation and hue leave a gray constant image as it is, in any order.
    x = np.full((16, 8, 8, 3), 0.5, np.float32)
    out = color_jitter(x, SEED).numpy()
    np.testing.assert_allclose(out, np.broadcast_to(out[:, :1, :1, :1], out.shape), atol=1e-6)
    assert np.all((out >= 0.5 * 0.6 - 1e-6) & (out <= 0.5 * 1.4 + 1e-6))


def test_saturation_and_hue_do_nothing_on_one_channel():
    x = images(6, 1)
    out = color_jitter(x, SEED, brightness=0, contrast=0, saturation=0.9, hue=0.5)
    np.testing.assert_array_equal(out, x)
    # Seed 004's augmentation is then the rotation (and flip) alone.
    rotate_seed, _, flip_seed = tf.unstack(tf.random.experimental.stateless_split(SEED, 3))
    expected = random_flip(random_rotation(x, rotate_seed, max_degrees=20.0), flip_seed)
    np.testing.assert_allclose(geometric_augment(x, SEED), expected, atol=1e-6)


def test_grayscale_probability_one_is_luminance_and_one_channel_identity():
    x = images(4, 3)
    out = random_grayscale(x, SEED, probability=1.0).numpy()
    np.testing.assert_allclose(out, np.repeat((x @ LUMA)[..., None], 3, axis=-1), atol=1e-6)
    np.testing.assert_array_equal(random_grayscale(x, SEED, probability=0.0), x)
    gray = images(4, 1)
    np.testing.assert_array_equal(random_grayscale(gray, SEED, probability=1.0), gray)


def test_random_flip_flips_about_half_and_only_mirrors():
    x = images(200, 1, size=8)
    out = random_flip(x, SEED).numpy()
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)  # random images are never their own mirror
    # Binomial(200, 1/2): mean 100, sd 7.1; 70..130 is beyond 4 sd.
    assert 70 <= mirrored.sum() <= 130


def test_random_grayscale_rate():
    x = images(200, 3, size=4)
    out = random_grayscale(x, SEED, probability=0.2).numpy()
    gray = np.all(np.abs(out - out[..., :1]) < 1e-6, axis=(1, 2, 3))
    np.testing.assert_array_equal(out[~gray], x[~gray])
    # Binomial(200, 0.2): mean 40, sd 5.7.
    assert 17 <= gray.sum() <= 63


def test_random_rotation_rotates_within_the_angle():
    # A centred bar: its orientation (second moments) is the rotation angle.
    size = 33
    x = np.zeros((16, size, size, 1), np.float32)
    x[:, 14:19, 4:29] = 1.0
    out = random_rotation(x, SEED, max_degrees=20.0).numpy()[..., 0]
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    mass = out.sum((1, 2))
    cyy = (out * yy**2).sum((1, 2)) / mass
    cxx = (out * xx**2).sum((1, 2)) / mass
    cxy = (out * xx * yy).sum((1, 2)) / mass
    angles = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy))
    assert np.abs(angles).max() <= 20.0 + 1.5
    assert np.ptp(angles) > 10.0  # angles spread over the range, one per image


def test_random_resized_crop_zooms_by_the_area():
    # On a linear ramp bilinear resizing is exact, so each output row spans the box's width.
    n = 32
    horizontal, vertical = ramps(n)
    kwargs = dict(scale=(0.25, 0.25), ratio=(1.0, 1.0))
    width = np.ptp(random_resized_crop(horizontal, SEED, **kwargs).numpy(), axis=2)
    height = np.ptp(random_resized_crop(vertical, SEED, **kwargs).numpy(), axis=1)
    np.testing.assert_allclose(width, 0.5, atol=1e-5)  # side sqrt(0.25): a 2x zoom
    np.testing.assert_allclose(height, 0.5, atol=1e-5)
    # The box is placed anywhere: the crops start at different places.
    starts = random_resized_crop(horizontal, SEED, **kwargs).numpy()[:, 0, 0, 0]
    assert starts.min() >= 0.0 and starts.max() <= 0.5 + 1e-6 and np.ptp(starts) > 0.2


def test_random_resized_crop_area_and_ratio_on_a_wide_image():
    n, height, width = 32, 12, 24
    horizontal, vertical = ramps(n, height, width)
    kwargs = dict(scale=(0.2, 0.5), ratio=(1.0, 2.0))  # never clipped: sides <= 1
    box_width = np.ptp(random_resized_crop(horizontal, SEED, **kwargs).numpy()[:, 0, :, 0], 1)
    box_height = np.ptp(random_resized_crop(vertical, SEED, **kwargs).numpy()[:, :, 0, 0], 1)
    area = box_width * box_height
    aspect = (box_width * width) / (box_height * height)
    assert area.min() >= 0.2 - 1e-4 and area.max() <= 0.5 + 1e-4 and np.ptp(area) > 0.1
    assert aspect.min() >= 1.0 - 1e-3 and aspect.max() <= 2.0 + 1e-3 and np.ptp(aspect) > 0.3


# === Composites ===


def test_simclr_augment_without_flip_never_mirrors():
    # Crops of a left-to-right ramp keep increasing left to right unless mirrored; color jitter
    # and grayscale keep the order on a gray ramp.
    horizontal, _ = ramps(64)
    rgb = np.repeat(horizontal, 3, axis=-1)
    increasing = lambda out: out[:, :, -1].mean((1, 2)) > out[:, :, 0].mean((1, 2))  # noqa: E731
    assert np.all(increasing(simclr_augment(rgb, SEED, flip=False).numpy()))
    assert not np.all(increasing(simclr_augment(rgb, SEED, flip=True).numpy()))


def test_two_views_are_two_independent_augmentations():
    x = images(4, 3)
    views = two_views(x, SEED, simclr_augment, flip=False).numpy()
    assert views.shape == (8, 16, 16, 3)
    first, second = tf.unstack(tf.random.experimental.stateless_split(SEED, 2))
    np.testing.assert_array_equal(views[:4], simclr_augment(x, first, flip=False))
    np.testing.assert_array_equal(views[4:], simclr_augment(x, second, flip=False))
    assert not np.allclose(views[:4], views[4:])


def test_get_augmentation():
    assert get_augmentation("simclr") is simclr_augment
    assert get_augmentation("geometric") is geometric_augment
    assert set(AUGMENTATIONS) == {"simclr", "geometric"}
    with pytest.raises(ValueError, match="'simclr'"):
        get_augmentation("simclrr")


# === Validation ===


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((16, 16, 3), np.float32),  # no batch axis
        np.zeros((2, 16, 16, 2), np.float32),  # 2 channels
        np.zeros((2, 16, 16, 4), np.float32),  # RGBA
        np.zeros((2, 16, 16, 3), np.uint8),  # not float
    ],
)
@pytest.mark.parametrize("name", OPS)
def test_rejects_bad_images(name, x):
    with pytest.raises(ValueError, match="Expected float NHWC images of rank 4 with 1 or 3"):
        OPS[name](x, SEED)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: random_resized_crop(x, SEED, scale=(0.0, 1.0)), "scale"),
        (lambda x: random_resized_crop(x, SEED, scale=(0.5, 1.5)), "scale"),
        (lambda x: random_resized_crop(x, SEED, scale=(0.8, 0.5)), "scale"),
        (lambda x: random_resized_crop(x, SEED, ratio=(0.0, 1.0)), "ratio"),
        (lambda x: color_jitter(x, SEED, brightness=-0.1), "brightness"),
        (lambda x: color_jitter(x, SEED, contrast=-1), "contrast"),
        (lambda x: color_jitter(x, SEED, saturation=-0.5), "saturation"),
        (lambda x: color_jitter(x, SEED, hue=0.6), "hue"),
        (lambda x: color_jitter(x, SEED, hue=-0.1), "hue"),
        (lambda x: random_grayscale(x, SEED, probability=1.5), "probability"),
        (lambda x: random_grayscale(x, SEED, probability=-0.1), "probability"),
        (lambda x: random_rotation(x, SEED, max_degrees=-5), "max_degrees"),
        (lambda x: geometric_augment(x, SEED, hue=0.7), "hue"),
        (lambda x: random_flip(x, tf.constant([1, 2, 3])), "seed"),
        (lambda x: random_flip(x, tf.constant([0.5, 1.0])), "seed"),
    ],
)
def test_rejects_bad_parameters(call, message):
    with pytest.raises(ValueError, match=rf"Expected .*{message}.*Received: .*{message}"):
        call(images(2, 3))


def test_random_resized_crop_has_no_black_border():
    # crop_and_resize fills samples past the image with 0: no box may reach past the border.
    x = np.ones((256, 32, 32, 1), np.float32)
    out = random_resized_crop(x, SEED, scale=(0.1, 1.0)).numpy()
    assert out.min() > 1.0 - 1e-6
