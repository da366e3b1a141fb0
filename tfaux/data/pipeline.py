"""From raw arrays to train/val/test `tf.data` pipelines: split, subset, resize, augment, batch.

Images stay uint8 in memory and become float32 in [0, 1] (NHWC) inside the pipeline; nothing
here standardizes them: the per-channel mean/std of the training split go into `DatasetInfo` for
the model's normalization layer, so attacks and exports work on raw [0, 1] pixels.

Randomness comes from one run seed. `np.random.SeedSequence(seed)` derives three independent
seeds: one for the train/validation permutation, one for the per-epoch shuffle and one for the
augmentation stream. Augmentation uses stateless ops seeded from
`tf.data.Dataset.random(..., rerandomize_each_iteration=True)`, so two pipelines built with the
same seed yield identical batches, and each epoch draws new shuffles and crops.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import tensorflow as tf

from tfaux.data.image_cache import is_streamed, take_rows
from tfaux.data.sources import RawData, dataset_spec

CROP_PADDING = 4
"""Zero padding (pixels per side) of the random-crop augmentation, as in the CIFAR ResNets."""

IMBALANCE_RATIO = 10.0
"""Largest over smallest class count from which a training split is called strongly imbalanced."""

# Images per chunk when resizing or computing statistics, to bound temporary float memory.
_CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a report need to know about a loaded dataset.

    Attributes:
        name: the dataset's name in `tfaux.data.list_datasets()`.
        num_classes: number of (fine) labels.
        class_names: one name per label.
        image_shape: (H, W, C) of the images the pipelines yield.
        mean: per-channel mean of the final training split, pixels in [0, 1].
        std: per-channel standard deviation (population) of the final training split.
        num_train: examples in the training split (after `train_size`).
        num_val: examples in the validation split.
        num_test: examples in the test split (after `test_size`).
        coarse_names: one name per coarse label (CIFAR-100 superclasses), or None.
        class_counts: training examples per class.
        notes: how the data was read (`RawData.notes`), for the run's log.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_train: int
    num_val: int
    num_test: int
    coarse_names: tuple[str, ...] | None = None
    class_counts: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """Batched `tf.data` pipelines yielding `(x, y)`; x float32 in [0, 1], NHWC; y int64.

    With coarse labels requested, y is `{"label": y, "coarse_label": y_coarse}`.
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    info: DatasetInfo


@dataclasses.dataclass(frozen=True, eq=False)
class Arrays:
    """The three splits as numpy arrays.

    Images are uint8 from `prepare_arrays` and float32 in [0, 1] from `tfaux.data.load_arrays`.
    `train_index` and `val_index` say which rows of the official training split went where.
    The `coarse_*` arrays are None unless coarse labels were requested.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    info: DatasetInfo
    coarse_train: np.ndarray | None = None
    coarse_val: np.ndarray | None = None
    coarse_test: np.ndarray | None = None

    def as_float(self) -> Arrays:
        """The same arrays with images as float32 in [0, 1]."""
        return dataclasses.replace(
            self,
            x_train=to_float(self.x_train),
            x_val=to_float(self.x_val),
            x_test=to_float(self.x_test),
        )


# === Arrays: split, subset, resize, statistics ===


def derive_seeds(seed: int) -> tuple[int, int, int]:
    """Three independent seeds (split, shuffle, augmentation) from one run seed."""
    if seed < 0:
        raise ValueError(f"Expected seed >= 0. Received: seed={seed}")
    split, shuffle, augment = np.random.SeedSequence(seed).generate_state(3)
    return int(split), int(shuffle), int(augment)


def split_indices(
    num_examples: int, *, val_fraction: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/validation split of `range(num_examples)`.

    Args:
        num_examples: size of the official training split.
        val_fraction: share held out for validation (LR schedule, early stopping), 0 < f < 1.
        seed: split seed; the same seed gives the same split.

    Returns:
        (train_index, val_index): the training rows in shuffled order (so taking the first N is
        a random subset) and the validation rows in ascending order. They are disjoint and
        together cover every row.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"Expected 0 < val_fraction < 1. Received: val_fraction={val_fraction}")
    num_val = int(round(num_examples * val_fraction))
    if not 0 < num_val < num_examples:
        raise ValueError(
            "Expected val_fraction to leave at least one example in each of train and val. "
            f"Received: val_fraction={val_fraction} of {num_examples} examples"
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    return order[num_val:], np.sort(order[:num_val])


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resizes uint8 NHWC images to `size` x `size` (bilinear, antialiased), keeping uint8."""
    if size <= 0:
        raise ValueError(f"Expected image_size > 0. Received: image_size={size}")
    if images.shape[1:3] == (size, size):
        return images
    if is_streamed(images):  # their loader resizes while decoding
        raise ValueError(
            f"Expected streamed images at their final size. Received: {images.shape[1:3]}, "
            f"image_size={size}"
        )
    chunks = []
    for start in range(0, len(images), _CHUNK):
        resized = tf.image.resize(
            images[start : start + _CHUNK], (size, size), method="bilinear", antialias=True
        )
        chunks.append(np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8))
    return np.concatenate(chunks)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of uint8 NHWC images, on the [0, 1] pixel scale.

    Accumulated in float64 chunks, so a 50 000-image split never needs a float copy at once.
    """
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for start in range(0, len(images), _CHUNK):
        chunk = images[start : start + _CHUNK].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 1, 2))
        total_sq += np.square(chunk).sum(axis=(0, 1, 2))
    count = images.size // channels
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images to float32 in [0, 1] (streamed ones are read into memory)."""
    return np.asarray(images).astype(np.float32) / np.float32(255.0)


def prepare_arrays(
    raw: RawData,
    *,
    name: str,
    val_fraction: float = 0.05,
    seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    image_size: int | None = None,
    coarse: bool = False,
) -> Arrays:
    """Splits, subsets and resizes raw data, and measures the training split (uint8 out).

    Args:
        raw: the official train/test splits.
        name: the dataset's name, recorded in the info.
        val_fraction: share of the official training split held out for validation.
        seed: run seed; the split uses the first seed `derive_seeds(seed)` gives.
        train_size: keep only the first N of the (shuffled) training part.
        test_size: keep only the first N test examples, in order.
        image_size: resize every image to this many pixels per side.
        coarse: keep the coarse labels (the dataset must have them).

    Returns:
        `Arrays` with uint8 images and a `DatasetInfo` whose mean/std describe the final
        training split.
    """
    if coarse and raw.coarse_train is None:
        raise ValueError(
            f"Expected coarse=True only for a dataset with coarse labels. Received: name={name!r}"
        )
    split_seed, _, _ = derive_seeds(seed)
    train_index, val_index = split_indices(
        len(raw.x_train), val_fraction=val_fraction, seed=split_seed
    )
    if train_size is not None:
        _check_size("train_size", train_size, len(train_index))
        train_index = train_index[:train_size]
    test_rows = np.arange(len(raw.x_test))
    if test_size is not None:
        _check_size("test_size", test_size, len(test_rows))
        test_rows = test_rows[:test_size]

    x_train = take_rows(raw.x_train, train_index)
    x_val = take_rows(raw.x_train, val_index)
    x_test = take_rows(raw.x_test, test_rows)
    if image_size is not None:
        x_train, x_val, x_test = (resize_images(x, image_size) for x in (x_train, x_val, x_test))
    mean, std = channel_stats(x_train)
    class_counts = np.bincount(raw.y_train[train_index], minlength=len(raw.class_names))
    _warn_imbalance(class_counts, raw.class_names)
    info = DatasetInfo(
        name=name,
        num_classes=len(raw.class_names),
        class_names=tuple(raw.class_names),
        image_shape=tuple(int(d) for d in x_train.shape[1:]),
        mean=mean,
        std=std,
        num_train=len(x_train),
        num_val=len(x_val),
        num_test=len(x_test),
        coarse_names=tuple(raw.coarse_names) if coarse else None,
        class_counts=tuple(int(n) for n in class_counts),
        notes=raw.notes,
    )
    return Arrays(
        x_train=x_train,
        y_train=raw.y_train[train_index],
        x_val=x_val,
        y_val=raw.y_train[val_index],
        x_test=x_test,
        y_test=raw.y_test[test_rows],
        train_index=train_index,
        val_index=val_index,
        info=info,
        coarse_train=raw.coarse_train[train_index] if coarse else None,
        coarse_val=raw.coarse_train[val_index] if coarse else None,
        coarse_test=raw.coarse_test[test_rows] if coarse else None,
    )


def _warn_imbalance(counts: np.ndarray, names) -> None:
    """A one-line warning when the largest class has `IMBALANCE_RATIO` times the training
    examples of the smallest: accuracy then mostly measures the large classes."""
    most, least = int(counts.max()), int(counts.min())
    if most >= IMBALANCE_RATIO * max(least, 1):
        big, small = names[int(counts.argmax())], names[int(counts.argmin())]
        warnings.warn(
            f"strongly imbalanced classes: {most} training examples of {big!r}, {least} of "
            f"{small!r}; accuracy will mostly reflect the large classes",
            stacklevel=3,
        )


def _check_size(arg: str, value: int, available: int) -> None:
    if not 0 < value <= available:
        raise ValueError(f"Expected 0 < {arg} <= {available}. Received: {arg}={value}")


# === Augmentation ===


def default_augmentation(
    name: str, augment: bool | None = None, flip: bool | None = None
) -> tuple[bool, bool]:
    """Which augmentations the training split gets: (random crop, random horizontal flip).

    The dataset's `DatasetSpec` decides: `default_crop` (off for `digits`, where a 4-pixel shift
    erases a stroke of an 8x8 digit) and `flip_invariant` (off for every digit dataset: a
    mirrored 2, 3 or 7 is not a digit, let alone the same one), unless `flip` says otherwise
    (see `mirrors_keep_labels`).

    - `augment=False`: none.
    - `augment=None` (the dataset default): crop if `default_crop`, flip if mirrors keep labels.
    - `augment=True`: crop for every dataset, flip if mirrors keep labels.

    Raises:
        ValueError: `name` is not a registered dataset.
    """
    spec = dataset_spec(name)
    if augment is False:
        return False, False
    return augment is True or spec.default_crop, mirrors_keep_labels(name, flip)


def mirrors_keep_labels(name: str, flip: bool | None = None) -> bool:
    """Whether a left-right mirror keeps every label of dataset `name`, so training may flip and
    evaluation may test flips: `flip` when given (`data.flip`), else the dataset's
    `flip_invariant` (clothes and natural images yes, digits no; your own images no, since
    only you know whether a mirrored image keeps its class)."""
    return dataset_spec(name).flip_invariant if flip is None else bool(flip)


def random_crop_flip(
    images: tf.Tensor,
    seed: tf.Tensor,
    *,
    crop: bool = True,
    flip: bool = True,
    padding: int = CROP_PADDING,
) -> tf.Tensor:
    """Random crop after zero padding and random horizontal flip, per image, stateless.

    Vectorized over the batch (one gather per axis rather than a crop op per image), which is
    what makes it cheap on 2 CPU cores.

    Args:
        images: float (B, H, W, C) with static H and W.
        seed: int32/int64 shape-(2,) stateless seed; the same seed gives the same output.
        crop: shift each image by up to `padding` pixels per axis, filling with zeros.
        flip: mirror each image left-right with probability 1/2.
        padding: pixels of zero padding per side before cropping back to (H, W).

    Returns:
        Augmented images of the input's shape and dtype.
    """
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    if crop and padding > 0:
        padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
        offsets = tf.random.stateless_uniform(
            [batch, 2], crop_seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
        )
        rows = offsets[:, :1] + tf.range(height)[None]
        cols = offsets[:, 1:] + tf.range(width)[None]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
    if flip:
        mirror = tf.random.stateless_uniform([batch], flip_seed) < 0.5
        images = tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


# === tf.data ===


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray | dict[str, np.ndarray],
    *,
    batch_size: int,
    training: bool = False,
    seed: int = 0,
    crop: bool = False,
    flip: bool = False,
    autotune: bool = False,
) -> tf.data.Dataset:
    """A batched pipeline of `(float32 [0, 1] images, labels)` over uint8 arrays.

    The arrays are held once as tensors and indexed by batch, so shuffling moves indices, not
    images.

    Args:
        images: uint8 (N, H, W, C).
        labels: int64 (N,), or a dict of such arrays (yielded as a dict).
        batch_size: examples per batch; the last batch may be smaller.
        training: shuffle every epoch and augment; otherwise yield in order.
        seed: run seed for the shuffle and augmentation streams (`derive_seeds`).
        crop: random crop with zero padding `CROP_PADDING` (training only).
        flip: random horizontal flip (training only).
        autotune: let tf.data's autotuning model tune the pipeline. Off by default: each
            iterator then runs a model thread that the iterator's destructor joins, and on a
            busy 2-core machine that join stalled the next epoch or pass by 1.5-3.6 s (Keras makes
            a new iterator every epoch). The pipeline reads arrays from memory; nothing to tune.

    Returns:
        A prefetched `tf.data.Dataset` of known cardinality.
    """
    labels_t = tf.nest.map_structure(tf.convert_to_tensor, labels)
    indices = tf.data.Dataset.range(len(images))
    gather_images = _streamed_gather(images) if is_streamed(images) else _gather(images)

    def gather(index):
        x = tf.cast(gather_images(index), tf.float32) / 255.0
        return x, tf.nest.map_structure(lambda y: tf.gather(y, index), labels_t)

    if not training:
        ds = indices.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        return _with_autotune(ds.prefetch(tf.data.AUTOTUNE), autotune)

    _, shuffle_seed, augment_seed = derive_seeds(seed)
    ds = indices.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if crop or flip:
        # One random int64 per batch, fresh each epoch, pairs with the run's augmentation seed
        # to seed the stateless ops: reproducible, yet different crops every epoch.
        stream = tf.data.Dataset.random(seed=augment_seed, rerandomize_each_iteration=True)

        def gather_augment(index, draw):
            x, y = gather(index)
            op_seed = tf.stack([tf.constant(augment_seed, tf.int64), draw])
            return random_crop_flip(x, op_seed, crop=crop, flip=flip), y

        ds = tf.data.Dataset.zip((ds, stream)).map(
            gather_augment, num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return _with_autotune(ds.prefetch(tf.data.AUTOTUNE), autotune)


def _gather(images: np.ndarray):
    """Batches by index from images held once as a tensor."""
    images_t = tf.convert_to_tensor(images)
    return lambda index: tf.gather(images_t, index)


def _streamed_gather(images):
    """Batches by index read from the cache file (a memory map): the same batches as
    `_gather` over the same images, without holding them in memory."""
    shape = [None, *images.shape[1:]]

    def gather(index):
        batch = tf.numpy_function(lambda i: images[i], [index], tf.uint8, stateful=False)
        batch.set_shape(shape)
        return batch

    return gather


def repeated(dataset: tf.data.Dataset) -> tuple[tf.data.Dataset, int]:
    """`dataset` repeated without end, and its batches per pass, for
    `fit(ds, steps_per_epoch=n, validation_data=val, validation_steps=m)`.

    Keras then keeps one iterator for the whole fit instead of making one per epoch, so no
    epoch pays an iterator's start-up and teardown. Each epoch is still every example once,
    reshuffled and re-augmented, the same for a seed; after the first epoch the order differs
    from a new iterator per epoch (`repeat` restarts the shuffle with other seeds).
    """
    steps = int(dataset.cardinality())
    if steps < 1:
        raise ValueError(
            f"Expected a non-empty dataset of known size. Received: cardinality {steps}"
        )
    return dataset.repeat(), steps


def _with_autotune(ds: tf.data.Dataset, enabled: bool) -> tf.data.Dataset:
    """`ds` with tf.data's autotuning model on or off (AUTOTUNE parallelism and prefetch sizes
    then fall back to the number of cores and a growing buffer, without a model thread)."""
    options = tf.data.Options()
    options.autotune.enabled = enabled
    return ds.with_options(options)


def make_splits(
    arrays: Arrays,
    *,
    batch_size: int = 128,
    seed: int = 0,
    crop: bool = False,
    flip: bool = False,
    autotune: bool = False,
) -> Splits:
    """Wraps uint8 `Arrays` in train (shuffled, augmented), val and test (in order) pipelines."""

    def labels(y, coarse):
        return y if coarse is None else {"label": y, "coarse_label": coarse}

    return Splits(
        train=make_dataset(
            arrays.x_train,
            labels(arrays.y_train, arrays.coarse_train),
            batch_size=batch_size,
            training=True,
            seed=seed,
            crop=crop,
            flip=flip,
            autotune=autotune,
        ),
        val=make_dataset(
            arrays.x_val,
            labels(arrays.y_val, arrays.coarse_val),
            batch_size=batch_size,
            autotune=autotune,
        ),
        test=make_dataset(
            arrays.x_test,
            labels(arrays.y_test, arrays.coarse_test),
            batch_size=batch_size,
            autotune=autotune,
        ),
        info=arrays.info,
    )


def labels_of(y):
    """The primary (fine) labels of a batch: `y` itself or `y["label"]` when labels are a dict
    (a dataset with coarse labels gives {"label", "coarse"})."""
    return y["label"] if isinstance(y, dict) else y
