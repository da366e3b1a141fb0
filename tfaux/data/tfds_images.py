"""`tfds:<name>`: any TFDS image-classification dataset prepared in the TFDS data dir, as `RawData`.

Its images may differ in size (`tf_flowers`, `beans`), so they go the way an image folder's go
(`tfaux.data.folder`): decoded once, converted to one channel count, resized to one size (the
most common one, or `image_size`) and written to the local image cache, read back into memory or
streamed from it. The label names come from the dataset's `label` feature. A dataset without a
`test` split gets a stratified one drawn from `train` with `TEST_SPLIT_SEED`.
"""

from __future__ import annotations

import collections
import hashlib
import os

import numpy as np
import tensorflow as tf

from tfaux.data.folder import (
    DECODER_VERSION,
    BadDataError,
    resized,
    stratified_test_rows,
    to_channels,
)
from tfaux.data.image_cache import ImageCache, memory_budget, take_rows
from tfaux.data.sources import (
    DataNotFoundError,
    ImageOptions,
    RawData,
    tfds_is_prepared,
    tfds_missing,
)

_BATCH = 256


def load_tfds_images(
    name: str, *, data_dir: str | None, download: bool, options: ImageOptions
) -> RawData:
    """Reads TFDS dataset `name` (see the module docstring).

    Raises:
        DataNotFoundError: the dataset is not prepared in `data_dir` and `download` is False.
        BadDataError: it has no `image` and class `label` features, or no `train` split.
    """
    import tensorflow_datasets as tfds

    try:
        tfds.builder_cls(name.split("/")[0].split(":")[0])
    except Exception:  # DatasetNotFoundError: no such dataset in this TFDS
        raise BadDataError(
            f"Unknown TFDS dataset {name!r}: `tfds.list_builders()` lists the names "
            f"(tensorflow-datasets {tfds.__version__})"
        ) from None
    try:
        if not (download or tfds_is_prepared(name, data_dir)):
            raise AssertionError(f"Dataset {name} is not prepared")
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
    except Exception as e:  # any TFDS failure here means "data not available"
        text = str(e).strip()
        reason = f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"
        raise DataNotFoundError(tfds_missing(name, data_dir, reason), reason) from None
    features = builder.info.features
    label = features["label"] if "label" in features else None
    if "image" not in features or not isinstance(label, tfds.features.ClassLabel):
        raise BadDataError(
            f"Expected a TFDS image-classification dataset (an 'image' feature and a class "
            f"'label'). Received: {name!r} with features {sorted(features.keys())}"
        )
    splits = [s for s in ("train", "test") if _has_split(builder, s)]
    if "train" not in splits:
        raise BadDataError(
            f"Expected a 'train' split in TFDS {name!r}. Received: {list(builder.info.splits)}"
        )
    labels = {s: _labels(builder, s) for s in splits}
    image = features["image"]
    size, channels = _format(builder, image, options)
    shape = (*size, channels)
    settings = f"{builder.info.version} {builder.data_dir} {shape} tf{tf.__version__}"
    key = hashlib.sha256(f"tfds {name} {settings} v{DECODER_VERSION}".encode()).hexdigest()[:20]
    cache = ImageCache(os.path.expanduser(options.cache_dir), key)
    written = not cache.complete()
    if written:
        batches, offset = None, 0
        for split, y in labels.items():  # train's images, then test's
            part = _decoded(builder, split, size, channels, offset)
            batches, offset = (
                part if batches is None else batches.concatenate(part),
                offset + len(y),
            )
        missing = cache.write(batches, offset, shape)
        cache.finish(bad=[str(row) for row in missing])
    if cache.bad():  # TFDS served fewer images than labels
        raise BadDataError(
            f"Expected one image per label in TFDS {name!r}. Received: {len(cache.bad())} missing"
        )
    streamed = cache.nbytes() > memory_budget(options.memory_limit)
    images = cache.images(in_memory=not streamed)
    y_train = labels["train"]
    x_train = images[: len(y_train)]
    if "test" in labels:
        x_test, y_test = images[len(y_train) :], labels["test"]
        note = "its test split"
    else:
        test = stratified_test_rows(y_train, options.test_fraction)
        train = np.setdiff1d(np.arange(len(y_train)), test)
        x_train, x_test = take_rows(x_train, train), take_rows(x_train, test)
        y_train, y_test = y_train[train], y_train[test]
        note = f"test: {options.test_fraction:.0%} of each class of its train split"
    h, w, c = shape
    return RawData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(label.names),
        notes=(
            f"TFDS {name} {builder.info.version}: {len(y_train)} train / {len(y_test)} test "
            f"images at {h}x{w}, {'RGB' if c == 3 else 'grayscale'} ({note})",
            cache.note(written=written, streamed=streamed),
        ),
    )


def _has_split(builder, split: str) -> bool:
    """Whether the dataset has `split` (asked of the data when its info lists no splits, as
    under `tfds.testing.mock_data`)."""
    if builder.info.splits:
        return split in builder.info.splits
    try:
        builder.as_dataset(split=split)
    except Exception:  # TFDS raises several types for an unknown split
        return False
    return True


def _labels(builder, split: str) -> np.ndarray:
    """The labels of one split, read without decoding a single image."""
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    )
    parts = [y for y in tfds.as_numpy(ds.map(lambda ex: ex["label"]).batch(4096))]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _format(builder, image, options: ImageOptions) -> tuple[tuple[int, int], int]:
    """(height, width) and channels: `image_size`, else the feature's fixed size, else the most
    common size of the first 1,000 training images; `channels`, else the feature's."""
    channels = options.channels or (image.shape[-1] if image.shape[-1] in (1, 3) else 3)
    if options.image_size is not None:
        return (options.image_size, options.image_size), channels
    if image.shape[0] is not None and image.shape[1] is not None:
        return (int(image.shape[0]), int(image.shape[1])), channels
    ds = builder.as_dataset(split="train", shuffle_files=False).take(1000)
    shapes = ds.map(lambda ex: tf.shape(ex["image"])[:2]).as_numpy_iterator()
    sizes = collections.Counter((int(h), int(w)) for h, w in shapes)
    return sizes.most_common(1)[0][0], channels


def _decoded(builder, split: str, size, channels: int, offset: int) -> tf.data.Dataset:
    """Batches of `(row, uint8 image)` of one split, converted and resized; rows count from
    `offset`."""

    def convert(row, example):  # as an image folder's images are (`tfaux.data.folder`)
        return row, resized(to_channels(example["image"], channels), size)

    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = tf.data.Dataset.zip((tf.data.Dataset.range(offset, 2**62), ds))
    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE).batch(_BATCH).prefetch(2)
