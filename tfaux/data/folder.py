"""A labelled image folder (one subfolder per class) as `RawData`: listed, checked, decoded once.

Layout, as `keras.utils.image_dataset_from_directory` and `tfds.folder_dataset.ImageFolder`
expect it: `DIR/<class>/...` (a test split is then drawn from it, stratified and seeded), or
`DIR/train/<class>/...` with an optional `DIR/test/<class>/...`. Class names are the subfolder
names, sorted; images may sit in nested folders below their class folder.

Every image is decoded by TensorFlow (PNG, JPEG, BMP, GIF's first frame), converted to the
dataset's channels and resized to one size, once: the decoded pixels go to a local file cache
(`tfaux.data.image_cache`) keyed by the files' names, sizes and modification times, so a second
run, seed or variant reads them back instead of decoding again. Below the memory budget the
cache is read into memory; above it, the pipelines read it batch by batch (streaming).

Nothing is dropped silently: an image TensorFlow cannot decode fails the load with its path,
unless `skip_bad_images` (then it is counted in `RawData.notes`); files that are not images
are counted there too.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf

from tfaux.console import silenced_stderr
from tfaux.data.image_cache import ImageCache, memory_budget
from tfaux.data.sources import ImageOptions, RawData, register_dataset
from tfaux.names import count

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
"""File types read as images (case-insensitive); TensorFlow's `decode_image` reads them all."""

TEST_SPLIT_SEED = 0
"""Seed of the test split drawn from a folder without `test/`: fixed, so every run seed is
tested on the same images (paired comparisons across seeds need that)."""

DECODER_VERSION = 1
"""Part of every cache key: raise it when a change to `decode_files` changes the pixels."""

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
# Decoded images written to the cache per batch.
_DECODE_BATCH = 256


class BadDataError(ValueError):
    """The folder cannot be used as it is; the message names the file or folder and the fix."""


@dataclasses.dataclass(frozen=True)
class FolderListing:
    """What a folder holds, before any image is decoded.

    Attributes:
        class_names: the class subfolders, sorted.
        train_files, test_files: image paths, sorted within each class.
        train_labels, test_labels: int64 class indices of those files.
        test_from_train: the folder has no `test/`; the test files were drawn from the training
            ones (`TEST_SPLIT_SEED`, stratified).
        ignored: files found that are not images (by extension), not used.
    """

    class_names: tuple[str, ...]
    train_files: tuple[str, ...]
    train_labels: np.ndarray
    test_files: tuple[str, ...]
    test_labels: np.ndarray
    test_from_train: bool
    ignored: tuple[str, ...]


def list_folder(path: str, *, test_fraction: float = 0.2) -> FolderListing:
    """Lists a class-per-subfolder image tree and checks it can be used.

    Raises:
        BadDataError: the folder does not exist, has no class folder or only one, a class
            folder without images, a `test/` whose classes differ from `train/`'s, or a class
            too small to split a test image off.
    """
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise BadDataError(
            f"Expected data.path to be a folder of class subfolders. Received: {path!r} "
            "(not a folder)"
        )
    train_dir, test_dir = os.path.join(root, "train"), os.path.join(root, "test")
    nested = os.path.isdir(train_dir)
    if os.path.isdir(test_dir) and not nested:
        raise BadDataError(f"Expected {train_dir} next to {test_dir}. Received: no train/ folder")
    train, ignored = _list_classes(train_dir if nested else root)
    classes = tuple(sorted(train))
    if len(classes) < 2:
        raise BadDataError(
            f"Expected at least two class subfolders in {train_dir if nested else root}. "
            f"Received: {list(classes) or 'none'}"
        )
    if nested and os.path.isdir(test_dir):
        test, test_ignored = _list_classes(test_dir)
        if set(test) != set(classes):
            missing, extra = sorted(set(classes) - set(test)), sorted(set(test) - set(classes))
            raise BadDataError(
                f"Expected the class folders of {test_dir} to equal those of {train_dir}. "
                f"Received: missing {missing}, extra {extra}"
            )
        test_files = np.array([f for k in classes for f in test[k]])
        order = _test_order(len(test_files))
        return FolderListing(
            class_names=classes,
            train_files=tuple(f for k in classes for f in train[k]),
            train_labels=_labels(train, classes),
            test_files=tuple(test_files[order]),
            test_labels=_labels(test, classes)[order],
            test_from_train=False,
            ignored=ignored + test_ignored,
        )
    small = [k for k in classes if len(train[k]) < 2]
    if small:
        raise BadDataError(
            f"Expected at least two images per class to split off a test set. Received: "
            f"{len(train[small[0]])} in class {small[0]!r}; add images or a test/ folder"
        )
    files = np.array([f for k in classes for f in train[k]])
    labels = _labels(train, classes)
    test_rows = stratified_test_rows(labels, test_fraction)
    test_rows = test_rows[_test_order(len(test_rows))]
    train_rows = np.setdiff1d(np.arange(len(files)), test_rows)
    return FolderListing(
        class_names=classes,
        train_files=tuple(files[train_rows]),
        train_labels=labels[train_rows],
        test_files=tuple(files[test_rows]),
        test_labels=labels[test_rows],
        test_from_train=True,
        ignored=ignored,
    )


def _test_order(count: int) -> np.ndarray:
    """A fixed permutation of the test files: evaluations that take the first N test images
    (PGD on 1,000, AutoAttack, the -C set) then see every class, not the first class folders."""
    return np.random.default_rng(TEST_SPLIT_SEED + 1).permutation(count)


def _list_classes(folder: str) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """{class name: sorted image paths} for the subfolders of `folder` (hidden ones aside), and
    the files that are not images (including loose files next to the class folders)."""
    classes, ignored = {}, []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            ignored.append(entry.path)
            continue
        images = []
        for parent, dirs, names in os.walk(entry.path, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                file = os.path.join(parent, name)
                (images if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append(file)
        if not images:
            raise BadDataError(
                f"Expected image files ({', '.join(IMAGE_EXTENSIONS)}) in every class folder. "
                f"Received: none in {entry.path}"
            )
        classes[entry.name] = images
    return classes, tuple(ignored)


def _labels(files: dict[str, list[str]], classes: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([np.full(len(files[k]), i, np.int64) for i, k in enumerate(classes)])


def stratified_test_rows(labels: np.ndarray, fraction: float) -> np.ndarray:
    """Sorted rows of a seeded (`TEST_SPLIT_SEED`) test split holding `fraction` of each class,
    at least one image each; a class of one image stays in training."""
    if not 0.0 < fraction < 1.0:
        raise BadDataError(f"Expected 0 < data.test_fraction < 1. Received: {fraction}")
    rng = np.random.default_rng(TEST_SPLIT_SEED)
    rows = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) > 1:
            take = min(max(1, round(len(members) * fraction)), len(members) - 1)
            rows.append(np.sort(rng.permutation(members)[:take]))
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)


# === Looking at the files: size and channels ===


def image_format(files) -> tuple[tuple[int, int], int]:
    """The most common (height, width) among `files` and their channels: 1 if every image is
    grayscale (a gray mode, or a palette of grays), else 3. Reads only the files' headers."""
    from PIL import Image, UnidentifiedImageError

    sizes, gray = collections.Counter(), True
    for file in files:
        try:
            with Image.open(file) as image:
                sizes[image.size[::-1]] += 1
                gray = gray and _is_gray(image)
        except (OSError, UnidentifiedImageError):
            continue  # the decoder names it (or skips it) with the same rule as every image
    if not sizes:
        raise BadDataError(f"Expected readable images. Received: none of {len(files)} files")
    return sizes.most_common(1)[0][0], 1 if gray else 3


def _is_gray(image) -> bool:
    if image.mode in _GRAY_MODES:
        return True
    if image.mode == "P":
        palette = np.asarray(image.getpalette() or [], np.int64)
        palette = palette[: len(palette) // 3 * 3].reshape(-1, 3)
        return bool(np.all(palette == palette[:, :1]))
    return False


# === Decoding into the cache ===


def decode_files(files, size: tuple[int, int], channels: int) -> tf.data.Dataset:
    """A parallel pipeline of `(row, uint8 image)` for the decodable files, in order; a row
    missing from it is a file that could not be decoded."""

    def decode(row, file):
        # Decoded as stored (GIF and BMP refuse one channel), then converted.
        image = tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
        return row, resized(to_channels(image, channels), size)

    rows = tf.data.Dataset.from_tensor_slices((tf.range(len(files), dtype=tf.int64), list(files)))
    decoded = rows.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return decoded.ignore_errors().batch(_DECODE_BATCH).prefetch(2)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """A uint8 (H, W, 1|2|3|4) image as (H, W, `channels`): alpha dropped, gray repeated, and
    color made gray by ITU-R 601 luma (a gray image stored as RGB keeps its exact values).
    Computed in int32: oneDNN has no uint8 kernels here and says so on the console."""
    image = tf.cast(image, tf.int32)
    rgb = tf.cond(
        tf.shape(image)[-1] >= 3,
        lambda: image[..., :3],
        lambda: tf.tile(image[..., :1], [1, 1, 3]),
    )
    if channels == 3:
        out = rgb
    else:
        luma = tf.round(tf.image.rgb_to_grayscale(tf.cast(rgb, tf.float32)))
        gray = tf.reduce_all(rgb == rgb[..., :1])
        out = tf.where(gray, rgb[..., :1], tf.cast(luma, tf.int32))
    out = tf.cast(out, tf.uint8)
    out.set_shape([None, None, channels])
    return out


def resized(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """A uint8 (H, W, C) image at `size` (bilinear with antialiasing, rounded); an image already
    at `size` keeps its exact pixels."""

    def resize():
        image_f = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image_f), 0, 255), tf.uint8)

    return tf.cond(tf.reduce_all(tf.shape(image)[:2] == size), lambda: image, resize)


@register_dataset("folder", title="image folder", num_classes=None)
def load_folder(
    *, data_dir: str | None = None, download: bool = False, options: ImageOptions
) -> RawData:
    """Lists, checks and decodes the image folder `options.path` (see the module docstring and
    `ImageOptions` for the settings); `data_dir` and `download` do not apply to a folder.

    Raises:
        BadDataError: no `options.path`; see `list_folder`; an image that cannot be decoded
            (without `options.skip_bad_images`); a bad `image_size` or `channels`.
    """
    del data_dir, download  # a folder is on disk or it is not
    if not options.path:
        raise BadDataError(
            "Expected data.path=DIR (a folder with one subfolder per class) with "
            "data.dataset=folder. Received: no data.path"
        )
    path, image_size, channels = options.path, options.image_size, options.channels
    test_fraction = options.test_fraction
    listing = list_folder(path, test_fraction=test_fraction)
    files = listing.train_files + listing.test_files
    cache = ImageCache(
        os.path.expanduser(options.cache_dir), _cache_key(files, image_size, channels)
    )
    decoded_now = not cache.complete()
    if decoded_now:  # only now look at the files' sizes and modes
        size, found_channels = image_format(listing.train_files)
        if image_size is not None:
            size = (image_size, image_size)
        channels = channels or found_channels
        # libjpeg prints "Improper call to JPEG library" for a truncated file; the load names
        # the file itself (a row missing from the decoder's output).
        with silenced_stderr():
            missing = cache.write(
                decode_files(files, size, channels), len(files), (*size, channels)
            )
        cache.finish(bad=[files[i] for i in missing])
    shape = cache.shape
    bad = set(cache.bad())
    if bad and not options.skip_bad_images:
        shown = ", ".join(sorted(bad)[:3]) + (", …" if len(bad) > 3 else "")
        raise BadDataError(
            f"Expected images TensorFlow can decode. Received: {count(len(bad), 'image')} "
            f"that cannot be: {shown}; fix or remove them, or set data.skip_bad_images=true "
            "to skip them"
        )
    # The cache holds the decodable images only, in file order: train's, then test's.
    keep = np.array([f not in bad for f in files])
    num_train = int(keep[: len(listing.train_files)].sum())
    streamed = cache.nbytes() > memory_budget(options.memory_limit)
    images = cache.images(in_memory=not streamed)
    labels = np.concatenate([listing.train_labels, listing.test_labels])[keep]
    raw = RawData(
        x_train=images[:num_train],
        y_train=labels[:num_train],
        x_test=images[num_train:],
        y_test=labels[num_train:],
        class_names=listing.class_names,
    )
    for split, y in (("training", raw.y_train), ("test", raw.y_test)):
        counts = np.bincount(y, minlength=len(listing.class_names))
        if not counts.all():
            empty = listing.class_names[int(np.argmin(counts))]
            raise BadDataError(
                f"Expected decodable {split} images in every class. Received: none in {empty!r}"
            )
    h, w, c = shape
    notes = [
        f"image folder {os.path.abspath(path)}: {len(raw.x_train)} train / {len(raw.x_test)} "
        f"test images at {h}x{w}, {'RGB' if c == 3 else 'grayscale'}"
        + (f" (test: {test_fraction:.0%} of each class)" if listing.test_from_train else ""),
        cache.note(written=decoded_now, streamed=streamed),
    ]
    if bad:
        notes.append(
            f"skipped {count(len(bad), 'image')} that cannot be decoded, e.g. {sorted(bad)[0]}"
        )
    if listing.ignored:
        notes.append(
            f"ignored {count(len(listing.ignored), 'file')} that are not images, e.g. "
            f"{listing.ignored[0]}"
        )
    return dataclasses.replace(raw, notes=tuple(notes))


def _cache_key(files, image_size: int | None, channels: int | None) -> str:
    """Digest of what the decoded images depend on: each file's path, size and modification
    time, the requested size and channels (None: found in the files, which the key covers) and
    the decoder (TensorFlow's version, `DECODER_VERSION`)."""
    settings = f"{image_size} {channels} tf{tf.__version__} v{DECODER_VERSION}"
    digest = hashlib.sha256(settings.encode())
    for file in files:
        stat = os.stat(file)
        digest.update(f"\0{file}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]
