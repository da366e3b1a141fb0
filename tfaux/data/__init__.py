"""Datasets as train/val/test `tf.data` pipelines of [0, 1] float32 NHWC images.

Example:
    splits = tfaux.data.load("fashion_mnist", batch_size=128, seed=0)
    model.fit(splits.train, validation_data=splits.val)
    mean, std = splits.info.mean, splits.info.std  # for the model's normalization layer
"""

from __future__ import annotations

import dataclasses

from tfaux.data.folder import BadDataError
from tfaux.data.pipeline import (
    Arrays,
    DatasetInfo,
    Splits,
    default_augmentation,
    make_splits,
    prepare_arrays,
)
from tfaux.data.sources import (
    DATASETS,
    DataNotFoundError,
    DatasetSpec,
    ImageOptions,
    RawData,
    check_name,
    dataset_spec,
    has_coarse_labels,
    list_datasets,
    load_raw,
    register_dataset,
)

__all__ = [
    "DATASETS",
    "Arrays",
    "BadDataError",
    "DataNotFoundError",
    "DatasetInfo",
    "DatasetSpec",
    "ImageOptions",
    "RawData",
    "Splits",
    "dataset_spec",
    "list_datasets",
    "load",
    "load_arrays",
    "load_raw",
    "register_dataset",
]


def load(
    name: str,
    *,
    batch_size: int = 128,
    val_fraction: float = 0.05,
    seed: int = 0,
    augment: bool | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    image_size: int | None = None,
    coarse: bool = False,
    data_dir: str | None = None,
    download: bool = False,
    autotune: bool = False,
    options: ImageOptions | None = None,
    flip: bool | None = None,
) -> Splits:
    """Loads a dataset as batched train/val/test pipelines.

    The official training split is cut into train and validation (seed 000 §2.1: validation
    drives the LR schedule and early stopping; the test split stays untouched for the final
    numbers). Images are float32 in [0, 1], NHWC; they are not standardized, `info.mean` and
    `info.std` are for the model's normalization layer.

    Args:
        name: a name from `list_datasets()`, e.g. "fashion_mnist", "cifar10", "digits".
        batch_size: examples per batch (the last batch of a split may be smaller).
        val_fraction: share of the official training split held out for validation.
        seed: run seed for the split, the per-epoch shuffle and the augmentation; the same seed
            gives the same batches.
        augment: augment the training split: None for the dataset's default, True/False to
            force it on/off (see `tfaux.data.pipeline.default_augmentation`; horizontal flips are
            only applied to datasets whose `DatasetSpec` is `flip_invariant`, never to digits).
        train_size: keep only a random N of the training part (quick runs).
        test_size: keep only the first N test examples.
        image_size: resize every image to `image_size` x `image_size` (e.g. digits 8 → 32).
        coarse: yield `{"label": y, "coarse_label": y_coarse}` labels (only for datasets with
            coarse labels: `dataset_spec(name).coarse_labels`, e.g. cifar100).
        data_dir: the TFDS data dir (default `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        download: let TFDS download a dataset that is not on disk.
        autotune: tf.data autotuning (off: see `tfaux.data.pipeline.make_dataset`).
        options: how an image folder (`name="folder"`, `ImageOptions.path`) or a
            `tfds:<name>` dataset is read: size, channels, test split, bad images, memory
            budget (above it the images are streamed from a local cache), cache folder.
        flip: whether left-right mirrors keep the labels (random flips in training); None for
            the dataset's rule (`tfaux.data.pipeline.mirrors_keep_labels`).

    Returns:
        `Splits(train, val, test, info)`; each split yields `(x, y)` with y int64.

    Raises:
        ValueError: an unknown name or an invalid argument.
        DataNotFoundError: the data is not on disk and `download` is False.
    """
    if batch_size <= 0:
        raise ValueError(f"Expected batch_size > 0. Received: batch_size={batch_size}")
    arrays = _prepare(
        name,
        val_fraction=val_fraction,
        seed=seed,
        train_size=train_size,
        test_size=test_size,
        image_size=image_size,
        coarse=coarse,
        data_dir=data_dir,
        download=download,
        options=options,
    )
    crop, flip = default_augmentation(name, augment, flip)
    return make_splits(
        arrays, batch_size=batch_size, seed=seed, crop=crop, flip=flip, autotune=autotune
    )


def load_arrays(
    name: str,
    *,
    val_fraction: float = 0.05,
    seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    image_size: int | None = None,
    coarse: bool = False,
    data_dir: str | None = None,
    download: bool = False,
    options: ImageOptions | None = None,
) -> Arrays:
    """Loads the same splits as `load`, as float32 [0, 1] NHWC numpy arrays (no augmentation).

    For code that needs whole arrays, e.g. generating a corruption benchmark. The arguments
    mean what they mean for `load`, and the same seed selects the same examples.

    Returns:
        `Arrays` with `x_train`, `y_train`, `x_val`, `y_val`, `x_test`, `y_test`, the row
        indices `train_index`/`val_index` into the official training split, `info`, and
        `coarse_*` labels when `coarse=True`.
    """
    return _prepare(
        name,
        val_fraction=val_fraction,
        seed=seed,
        train_size=train_size,
        test_size=test_size,
        image_size=image_size,
        coarse=coarse,
        data_dir=data_dir,
        download=download,
        options=options,
    ).as_float()


def _prepare(
    name: str,
    *,
    coarse: bool,
    data_dir: str | None,
    download: bool,
    options: ImageOptions | None,
    **kwargs,
) -> Arrays:
    # Validate everything before reading a single file.
    check_name(name)
    if not 0.0 < kwargs["val_fraction"] < 1.0:
        raise ValueError(
            f"Expected 0 < val_fraction < 1. Received: val_fraction={kwargs['val_fraction']}"
        )
    if kwargs["seed"] < 0:
        raise ValueError(f"Expected seed >= 0. Received: seed={kwargs['seed']}")
    for arg in ("train_size", "test_size", "image_size"):
        if kwargs[arg] is not None and kwargs[arg] <= 0:
            raise ValueError(f"Expected {arg} > 0. Received: {arg}={kwargs[arg]}")
    if coarse and not has_coarse_labels(name):
        with_coarse = [n for n in list_datasets() if has_coarse_labels(n)]
        raise ValueError(
            f"Expected coarse=True only for datasets with coarse labels ({', '.join(with_coarse)})."
            f" Received: name={name!r}, coarse=True"
        )
    if dataset_spec(name).num_classes is None:
        # Its loader decodes at the final size (`options.image_size`), so that streamed images
        # never need resizing.
        options = dataclasses.replace(options or ImageOptions(), image_size=kwargs["image_size"])
    raw = load_raw(name, data_dir=data_dir, download=download, options=options)
    return prepare_arrays(raw, name=name, coarse=coarse, **kwargs)
