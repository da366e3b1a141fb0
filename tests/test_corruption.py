"""Tests for tfaux.evaluate.corruption: the -C corruptions, their cache, CE/mCE and the plot."""

import json
import logging
import math

import cv2
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.colors import rgb_to_hsv

from tfaux.evaluate import corruption as cm
from tfaux.evaluate.corruption import (
    COMMON,
    SEVERITIES,
    VALIDATION,
    corrupt_images,
    corrupted_set,
    corruption_error,
    corruption_errors,
    corruption_plot,
    mean_errors,
)

ALL = COMMON + VALIDATION
NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


def garments(n: int = 6, shape=(28, 28, 1), seed: int = 0) -> np.ndarray:
    """Fashion-MNIST-like images: a smooth textured object on a black background."""
    height, width, channels = shape
    low = np.random.default_rng(seed).random((n, 7, 7, channels), dtype=np.float32)
    smooth = [cv2.resize(im, (width, height), interpolation=cv2.INTER_CUBIC) for im in low]
    yy, xx = np.mgrid[:height, :width]
    ellipse = ((yy - height / 2) / (0.4 * height)) ** 2 + ((xx - width / 2) / (0.3 * width)) ** 2
    mask = (ellipse < 1).astype(np.float32)[..., None]
    return np.clip(np.stack(smooth).reshape(n, *shape) * mask, 0, 1)


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


@pytest.mark.parametrize("name", ALL)
def test_every_corruption_keeps_shape_dtype_range_and_changes_images(name, gray, color):
    for images in (gray, color):
        # saturate scales the HSV saturation, which is 0 for gray images: only 4 and 5 (which add
        # a constant saturation) change them.
        severity = 5 if name == "saturate" and images.shape[-1] == 1 else 3
        out = corrupt_images(images, name, severity, seed=0)
        assert out.shape == images.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert change(out, images) > 0


def test_saturate_leaves_gray_images_exactly_unchanged_at_low_severity(gray):
    # Only the change is resized back from 32 px, so a corruption that changes nothing is exact.
    for severity in (1, 2, 3):
        np.testing.assert_array_equal(corrupt_images(gray, "saturate", severity, seed=0), gray)


@pytest.mark.parametrize("name", ALL)
def test_severity_5_changes_images_more_than_severity_1(name, gray, color):
    # Mean |corrupted - clean| orders severity 1 and 5 for every corruption, even the ones not
    # monotone in between at this size (glass_blur, fog, frost, snow, spatter), with one
    # exception by design: see the saturate test below.
    cases = (gray,) if name == "saturate" else (gray, color)
    for images in cases:
        weak = change(corrupt_images(images, name, 1, seed=0), images)
        strong = change(corrupt_images(images, name, 5, seed=0), images)
        assert strong > weak, (images.shape, weak, strong)


def test_saturate_severity_orders_saturation_on_color_images(color):
    # Severities 1-2 desaturate (x0.3, x0.1), 3-5 oversaturate (x2, x5 + 0.1, x20 + 0.2): the
    # pixel change of 1 can exceed that of 5, so we check the saturation itself.
    def saturation(images):
        return float(rgb_to_hsv(images)[..., 1].mean())

    s = [saturation(corrupt_images(color, "saturate", k, seed=0)) for k in SEVERITIES]
    clean = saturation(color)
    assert s[1] < s[0] < clean < s[2] < s[3] < s[4]


def test_spatter_without_drops_does_not_black_out_images():
    # At 32 px spatter 1 sometimes gets no drop over its threshold; the package then casts NaN to
    # a black image (one of these 40 images). No image may come back black.
    images = garments(40, (32, 32, 3), seed=3)
    out = corrupt_images(images, "spatter", 1, seed=0)
    brightest = out.reshape(40, -1).max(axis=1)
    assert np.all(brightest > 0.5 * images.reshape(40, -1).max(axis=1))


def test_same_seed_same_images_and_caller_rng_untouched(gray):
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    for name in ALL:
        a = corrupt_images(gray, name, 4, seed=7)
        b = corrupt_images(gray, name, 4, seed=7)
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert np.random.random() == expected_next  # the global RNG was restored


@pytest.mark.parametrize("name", (*NOISE, "glass_blur"))
def test_different_seed_different_noise(name, gray):
    a = corrupt_images(gray, name, 3, seed=0)
    b = corrupt_images(gray, name, 3, seed=1)
    assert change(a, b) > 0.005
    # Each image gets its own noise, not one pattern repeated.
    images = np.repeat(gray[:1], 2, axis=0)
    out = corrupt_images(images, name, 3, seed=0)
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
    [("seed", "seed differs"), ("images", "images differ"), ("severities", "severities differs")],
)
def test_cache_detects_changed_inputs(tmp_path, gray, caplog, kind, expected):
    labels = np.zeros(6, np.int64)
    corrupted_set(gray, labels, tmp_path, **SMALL)
    changed = {
        "seed": {"seed": 1},
        "images": {"images": gray[::-1]},
        "severities": {"severities": (1, 2)},
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
    real = cm.corrupt_images

    def fails_on_saturate(images, corruption, severity, *, seed):
        if corruption == "saturate":
            raise KeyboardInterrupt
        return real(images, corruption, severity, seed=seed)

    monkeypatch.setattr(cm, "corrupt_images", fails_on_saturate)
    with pytest.raises(KeyboardInterrupt):
        corrupted_set(gray, labels, tmp_path, **SMALL)
    assert not (tmp_path / "manifest.json").exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    monkeypatch.setattr(cm, "corrupt_images", real)
    assert corrupted_set(gray, labels, tmp_path, **SMALL).generated is True


# === Errors and CE ===


def test_corruption_errors_with_exact_match_classifier(tmp_path, gray):
    labels = np.array([0, 1, 2, 0, 1, 2])
    cset = corrupted_set(gray, labels, tmp_path, **SMALL)
    clean = cset.clean_images()

    def predict(x):
        # Right for an image identical to a clean one, class 3 (never a label) for anything else.
        match = np.all(np.asarray(x)[:, None] == clean[None], axis=(2, 3, 4))
        predicted = np.where(match.any(axis=1), labels[match.argmax(axis=1)], 3)
        return {"logits": tf.constant(np.eye(4, dtype=np.float32)[predicted])}

    result = corruption_errors(predict, cset, batch_size=4, progress=False)
    assert set(result) == {"clean_error", "errors", "num_examples"}
    assert result["clean_error"] == 0 and result["num_examples"] == 6
    assert set(result["errors"]) == {"gaussian_noise", "saturate"}
    assert set(result["errors"]["saturate"]) == {1, 3}
    assert result["errors"]["saturate"] == {1: 0.0, 3: 0.0}  # identity on gray images
    assert result["errors"]["gaussian_noise"] == {1: 1.0, 3: 1.0}  # changes every image
    assert mean_errors(result) == {"gaussian_noise": 1.0, "saturate": 0.0}

    one_hot = corrupted_set(gray, np.eye(3)[labels], tmp_path / "onehot", **SMALL)
    assert corruption_errors(predict, one_hot, progress=False)["clean_error"] == 0
    with pytest.raises(ValueError, match="num_classes"):
        corruption_errors(lambda x: np.zeros(len(x)), cset, progress=False)


def _table(clean, **errors):
    return {
        "clean_error": clean,
        "errors": {c: dict(zip(SEVERITIES, e, strict=True)) for c, e in errors.items()},
    }


MODEL = _table(0.1, fog=[0.2, 0.3, 0.4, 0.5, 0.6], contrast=[0.1, 0.1, 0.2, 0.2, 0.4])
REFERENCE = _table(0.2, fog=[0.4, 0.4, 0.5, 0.6, 0.6], contrast=[0.3, 0.3, 0.4, 0.4, 0.6])


def test_corruption_error_by_hand():
    # CE_fog = 2.0 / 2.5 = 80 %, CE_contrast = 1.0 / 2.0 = 50 %, mCE = 65 %.
    # relative: fog (2.0 - 5 * 0.1) / (2.5 - 5 * 0.2) = 100 %, contrast 0.5 / 1.0 = 50 %.
    result = corruption_error(MODEL, REFERENCE)
    assert result["ce"] == pytest.approx({"fog": 80.0, "contrast": 50.0})
    assert result["relative_ce"] == pytest.approx({"fog": 100.0, "contrast": 50.0})
    assert result["mCE"] == pytest.approx(65.0)
    assert result["relative_mCE"] == pytest.approx(75.0)
    assert result["mean_error"] == pytest.approx(30.0)  # 3.0 over 10 entries
    assert result["clean_error"] == pytest.approx(10.0)
    assert result["corruptions"] == ["fog", "contrast"]  # COMMON's order
    # The reference against itself is 100 everywhere; JSON round trips (str keys) work.
    same = corruption_error(json.loads(json.dumps(REFERENCE)), REFERENCE)
    assert same["mCE"] == pytest.approx(100.0) and same["relative_mCE"] == pytest.approx(100.0)
    only_fog = corruption_error(MODEL, REFERENCE, corruptions=["fog"])
    assert only_fog["mCE"] == pytest.approx(80.0)


def test_corruption_error_rejects_bad_tables(caplog):
    with pytest.raises(ValueError, match="only in errors"):
        corruption_error(_table(0.1, fog=[0.1] * 5, snow=[0.1] * 5), _table(0.1, fog=[0.2] * 5))
    with pytest.raises(ValueError, match="errors summing to 0|reference errors"):
        corruption_error(MODEL, _table(0.0, fog=[0.0] * 5, contrast=[0.1] * 5))
    with pytest.raises(ValueError, match="fractions"):
        corruption_error(_table(10.0, fog=[20.0] * 5), _table(0.2, fog=[0.4] * 5))
    with pytest.raises(ValueError, match="at least one"):
        corruption_error(MODEL, REFERENCE, corruptions=["snow"])
    with pytest.raises(ValueError, match="same severities"):
        corruption_error(MODEL, {"clean_error": 0.1, "errors": {"fog": {1: 0.5}, "contrast": {}}})
    with pytest.raises(ValueError, match="clean_error"):
        corruption_error(MODEL["errors"], REFERENCE)
    # A reference no worse than on clean images leaves relative CE undefined, not CE.
    flat = _table(0.3, fog=[0.3] * 5, contrast=[0.4] * 5)
    with caplog.at_level(logging.WARNING, logger="tfaux"):
        result = corruption_error(MODEL, flat)
    assert result["ce"]["fog"] == pytest.approx(2.0 / 1.5 * 100)
    assert math.isnan(result["relative_ce"]["fog"]) and math.isnan(result["relative_mCE"])
    assert "Relative CE of fog is undefined" in caplog.text


# === Plot ===


def test_plot_writes_png(tmp_path):
    ce = {
        "aux": corruption_error(MODEL, REFERENCE),
        "baseline": corruption_error(REFERENCE, REFERENCE),
    }
    path = corruption_plot(ce, tmp_path / "plots" / "ce.png", reference_name="baseline")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    errors = corruption_plot({"aux": MODEL, "baseline": REFERENCE}, tmp_path / "err.png")
    assert errors.stat().st_size > 5000
    with pytest.raises(ValueError, match="every"):
        corruption_plot({"aux": ce["aux"], "baseline": REFERENCE}, tmp_path / "mixed.png")
