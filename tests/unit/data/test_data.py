"""Tests for tfaux.data: real Fashion-MNIST and digits, TFDS datasets through mock_data."""

import gzip
import os
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

import tfaux.data as data
from tfaux.data import pipeline, sources

SMALL = dict(train_size=256, test_size=128, batch_size=64)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.fixture(scope="module")
def fashion_raw():
    return data.load_raw("fashion_mnist")


@pytest.fixture(scope="module")
def fashion_arrays():
    return data.load_arrays("fashion_mnist")


@pytest.fixture
def no_fashion_sources(tmp_path, monkeypatch):
    """Hides every Fashion-MNIST source: Debian path, TFAUX_DATA_DIR, Keras cache, TFDS dir."""
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    return tmp_path


# === Real Fashion-MNIST (Debian package files) ===


def test_fashion_mnist_raw_files(fashion_raw):
    raw = fashion_raw
    assert raw.x_train.shape == (60000, 28, 28, 1) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 28, 28, 1)
    assert raw.y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(raw.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(raw.y_test), [1000] * 10)
    assert raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"


def test_fashion_mnist_splits_and_stats(fashion_raw, fashion_arrays):
    splits = data.load("fashion_mnist", batch_size=500)
    info = splits.info
    assert (info.num_train, info.num_val, info.num_test) == (57000, 3000, 10000)
    assert info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert splits.train.cardinality() == 114 and splits.test.cardinality() == 20

    x, y = next(iter(splits.val))
    assert x.shape == (500, 28, 28, 1) and x.dtype == tf.float32 and y.dtype == tf.int64
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) == pytest.approx(1.0)

    # The statistics describe the training part only, checked against plain numpy.
    train_pixels = fashion_raw.x_train[fashion_arrays.train_index] / 255.0
    assert info.mean[0] == pytest.approx(train_pixels.mean(), abs=1e-6)
    assert info.std[0] == pytest.approx(train_pixels.std(), abs=1e-6)
    assert info.mean[0] == pytest.approx(0.286, abs=0.005)
    assert info.std[0] == pytest.approx(0.353, abs=0.005)


def test_load_arrays_matches_raw(fashion_raw, fashion_arrays):
    arrays = fashion_arrays
    assert arrays.x_train.dtype == np.float32 and arrays.x_train.shape == (57000, 28, 28, 1)
    assert arrays.x_train.max() == pytest.approx(1.0) and arrays.x_val.min() >= 0.0
    np.testing.assert_array_equal(arrays.y_val, fashion_raw.y_train[arrays.val_index])
    np.testing.assert_allclose(arrays.x_test[:5] * 255.0, fashion_raw.x_test[:5], atol=1e-4)


def test_train_and_val_are_disjoint(fashion_arrays):
    train, val = fashion_arrays.train_index, fashion_arrays.val_index
    assert len(np.intersect1d(train, val)) == 0
    assert len(np.union1d(train, val)) == 60000


def test_fashion_mnist_from_tfaux_data_dir(no_fashion_sources, monkeypatch):
    folder = no_fashion_sources / "idx"
    folder.mkdir()
    for name in sources.FASHION_MNIST_FILES:
        os.symlink(os.path.join("/usr/share/datasets/fashion-mnist", name), folder / name)
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(folder))
    splits = data.load("fashion_mnist", **SMALL)
    x, _ = next(iter(splits.train))
    assert x.shape == (64, 28, 28, 1) and splits.info.num_test == 128


def test_fashion_mnist_from_a_prepared_tfds_dir(no_fashion_sources, monkeypatch):
    import tensorflow_datasets as tfds

    # A prepared TFDS copy is simulated: mock_data serves the examples, the check says "prepared".
    monkeypatch.setattr(sources, "tfds_is_prepared", lambda name, data_dir: True)
    with tfds.testing.mock_data(num_examples=20):
        raw = data.load_raw("fashion_mnist")
    assert raw.x_train.shape == (20, 28, 28, 1) and raw.class_names == sources.FASHION_MNIST_CLASSES


def test_missing_fashion_mnist_says_how_to_get_it(no_fashion_sources, monkeypatch):
    attempts = []

    def no_network(self, address):
        attempts.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    start = time.perf_counter()
    with pytest.raises(data.DataNotFoundError) as excinfo:
        data.load("fashion_mnist", data_dir=str(no_fashion_sources / "tfds"))
    elapsed = time.perf_counter() - start
    message = str(excinfo.value)
    assert "dataset-fashion-mnist" in message
    assert "TFAUX_DATA_DIR" in message and "download=True" in message
    assert isinstance(excinfo.value, FileNotFoundError)
    assert not attempts and elapsed < 30


def test_missing_tfds_dataset_fails_fast_with_one_message(tmp_path):
    start = time.perf_counter()
    with pytest.raises(data.DataNotFoundError) as excinfo:
        data.load("cifar10", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 30
    message = str(excinfo.value)
    assert str(tmp_path) in message and "download=True" in message
    assert "tfds build cifar10" in message
    assert excinfo.value.__suppress_context__  # No TFDS traceback chained behind it.


# === TFDS datasets through mock_data (offline) ===


@pytest.mark.parametrize(
    "name, shape",
    [
        ("cifar10", (32, 32, 3)),
        ("cifar100", (32, 32, 3)),
        ("svhn_cropped", (32, 32, 3)),
        ("mnist", (28, 28, 1)),
    ],
)
def test_tfds_datasets_with_mock_data(name, shape):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        splits = data.load(name, batch_size=16, test_size=24)
    info = splits.info
    assert info.image_shape == shape and info.num_classes == (100 if name == "cifar100" else 10)
    assert (info.num_train, info.num_val, info.num_test) == (38, 2, 24)
    for ds, sizes in ((splits.train, [16, 16, 6]), (splits.val, [2]), (splits.test, [16, 8])):
        batches = _batches(ds)
        assert [len(x) for x, _ in batches] == sizes
        x = np.concatenate([x for x, _ in batches])
        y = np.concatenate([y for _, y in batches])
        assert x.shape[1:] == shape and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int64 and 0 <= y.min() and y.max() < info.num_classes


def test_cifar100_coarse_labels():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        splits = data.load("cifar100", batch_size=16, coarse=True)
    assert len(splits.info.coarse_names) == 20
    x, y = next(iter(splits.train))
    assert set(y) == {"label", "coarse_label"} and x.shape == (16, 32, 32, 3)
    coarse = np.concatenate([y["coarse_label"].numpy() for _, y in splits.test])
    assert coarse.dtype == np.int64 and coarse.min() >= 0 and coarse.max() < 20


def test_coarse_requires_a_dataset_with_coarse_labels():
    with pytest.raises(ValueError, match="cifar100"):
        data.load("cifar10", coarse=True)


# === Argument validation ===


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'fashion_mnist'") as excinfo:
        data.load("fashion-mnist")
    assert "Available: cifar10" in str(excinfo.value)
    assert data.list_datasets() == [
        "cifar10",
        "cifar100",
        "digits",
        "fashion_mnist",
        "folder",
        "mnist",
        "svhn_cropped",
    ]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(batch_size=0), r"Expected batch_size > 0. Received: batch_size=0"),
        (dict(val_fraction=0.0), r"Expected 0 < val_fraction < 1. Received: val_fraction=0.0"),
        (dict(val_fraction=1.0), r"Received: val_fraction=1.0"),
        (dict(train_size=0), r"Expected train_size > 0. Received: train_size=0"),
        (dict(test_size=-1), r"Expected test_size > 0. Received: test_size=-1"),
        (dict(image_size=0), r"Expected image_size > 0. Received: image_size=0"),
        (dict(train_size=5000), r"Expected 0 < train_size <= 1365. Received: train_size=5000"),
        (dict(seed=-1), r"Expected seed >= 0. Received: seed=-1"),
    ],
)
def test_invalid_arguments(kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        data.load("digits", **kwargs)


# === Determinism, shuffling, augmentation ===


def test_same_seed_same_batches_and_different_seed_different():
    first = next(iter(data.load("fashion_mnist", seed=3, **SMALL).train))
    again = next(iter(data.load("fashion_mnist", seed=3, **SMALL).train))
    other = next(iter(data.load("fashion_mnist", seed=4, **SMALL).train))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_train_reshuffles_each_epoch_while_val_and_test_keep_order():
    splits = data.load("fashion_mnist", **SMALL)
    epoch1, epoch2 = _batches(splits.train), _batches(splits.train)
    labels1 = np.concatenate([y for _, y in epoch1])
    labels2 = np.concatenate([y for _, y in epoch2])
    assert not np.array_equal(labels1, labels2)
    np.testing.assert_array_equal(np.sort(labels1), np.sort(labels2))  # Same examples.
    for ds in (splits.val, splits.test):
        for (x1, y1), (x2, y2) in zip(_batches(ds), _batches(ds), strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)


def test_augmentation_changes_images_but_not_shape_range_or_order():
    plain = next(iter(data.load("fashion_mnist", augment=False, **SMALL).train))
    augmented = next(iter(data.load("fashion_mnist", augment=True, **SMALL).train))
    # Same shuffle seed, so the same examples, differently transformed.
    np.testing.assert_array_equal(plain[1], augmented[1])
    assert augmented[0].shape == plain[0].shape
    assert 0.0 <= float(tf.reduce_min(augmented[0])) and float(tf.reduce_max(augmented[0])) <= 1.0
    changed = np.any(plain[0].numpy() != augmented[0].numpy(), axis=(1, 2, 3))
    assert changed.mean() > 0.5


def test_random_crop_flip_is_a_shift_or_a_mirror():
    images = tf.random.stateless_uniform([8, 12, 12, 2], seed=[1, 2])
    seed = tf.constant([7, 9], tf.int64)
    flipped = pipeline.random_crop_flip(images, seed, crop=False).numpy()
    for original, out in zip(images.numpy(), flipped, strict=True):
        assert np.array_equal(out, original) or np.array_equal(out, original[:, ::-1])

    cropped = pipeline.random_crop_flip(images, seed, flip=False).numpy()
    padded = np.pad(images.numpy(), [(0, 0), (4, 4), (4, 4), (0, 0)])
    for pad_image, out in zip(padded, cropped, strict=True):
        windows = [pad_image[i : i + 12, j : j + 12] for i in range(9) for j in range(9)]
        assert any(np.array_equal(out, w) for w in windows)
    np.testing.assert_array_equal(cropped, pipeline.random_crop_flip(images, seed, flip=False))


@pytest.mark.parametrize(
    "name, augment, expected",
    [
        ("fashion_mnist", None, (True, True)),
        ("cifar100", None, (True, True)),
        ("mnist", None, (True, False)),
        ("svhn_cropped", True, (True, False)),
        ("digits", None, (False, False)),
        ("digits", True, (True, False)),
        ("cifar10", False, (False, False)),
    ],
)
def test_default_augmentation_never_flips_digits(name, augment, expected):
    assert pipeline.default_augmentation(name, augment) == expected


# === scikit-learn digits ===


def test_digits_split_and_resize():
    raw = data.load_raw("digits")
    assert len(raw.x_train) + len(raw.x_test) == 1797 and len(raw.x_test) == 360
    assert raw.x_train.shape[1:] == (8, 8, 1) and raw.x_train.max() == 255
    assert np.bincount(raw.y_test).min() >= 35  # Stratified: ~36 per class.

    splits = data.load("digits", image_size=16, batch_size=32)
    assert splits.info.image_shape == (16, 16, 1)
    assert splits.info.num_train + splits.info.num_val == 1437 and splits.info.num_test == 360
    x, _ = next(iter(splits.test))
    assert x.shape == (32, 16, 16, 1) and float(tf.reduce_max(x)) <= 1.0


# === Helpers ===


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, size=(5000, 4, 4, 3), dtype=np.uint8)
    mean, std = pipeline.channel_stats(images)
    np.testing.assert_allclose(mean, (images / 255.0).mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(std, (images / 255.0).std(axis=(0, 1, 2)), rtol=1e-9)


def test_read_idx_rejects_a_non_idx_file(tmp_path):
    path = tmp_path / "bad-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd")  # 0x0d: float32, not uint8
    with pytest.raises(ValueError, match="Expected an IDX file of unsigned bytes"):
        sources.read_idx(str(path))


def test_one_repeated_iterator_is_an_epoch_of_every_example_reshuffled_each_time():
    # `fit` on `repeated(train)` with steps_per_epoch keeps one iterator for the whole fit: each
    # epoch must still be every training example once, in a new order, the same for a seed.
    def epochs(n):
        ds, steps = pipeline.repeated(data.load("digits", batch_size=64, seed=3).train)
        batches = iter(ds)
        return [np.concatenate([next(batches)[0].numpy() for _ in range(steps)]) for _ in range(n)]

    first, again = epochs(3), epochs(3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # reproducible

    def examples(epoch):
        return sorted(image.tobytes() for image in epoch)

    for epoch in first[1:]:
        assert len(epoch) == 1365  # the training digits (1,797 minus validation and test)
        assert examples(epoch) == examples(first[0])  # each example once
        assert not np.array_equal(epoch, first[0])  # reshuffled


def test_pipelines_run_without_tf_data_autotuning_unless_asked():
    # Autotuning's model thread is joined by each iterator's destructor: seconds at epoch starts.
    splits = data.load("digits", batch_size=64, seed=0)
    assert all(
        ds.options().autotune.enabled is False for ds in (splits.train, splits.val, splits.test)
    )
    assert data.load("digits", batch_size=64, autotune=True).train.options().autotune.enabled
