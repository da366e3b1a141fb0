"""Raw image datasets as uint8 NHWC arrays, one loader per dataset.

Every loader returns a `RawData` with the official train and test splits kept apart; splitting off
a validation set, resizing and batching are `tfaux.data.pipeline`'s job. No loader touches the
network unless it is called with `download=True`.

Fashion-MNIST is read straight from the four IDX `.gz` files, found in this order:
1. the folder in the `TFAUX_DATA_DIR` environment variable (or its `fashion-mnist/` subfolder),
2. the Debian package `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`),
3. the Keras cache (`$KERAS_HOME` or `~/.keras`, then `datasets/fashion-mnist/`),
4. an already prepared TFDS `fashion_mnist` in the TFDS data dir,
5. a TFDS download, only with `download=True`.
The IDX files are parsed with gzip + numpy rather than through TFDS' manual_dir: the Debian files
are re-gzipped, so their checksums differ from the ones TFDS expects and TFDS rejects them.

mnist, cifar10, cifar100 and svhn_cropped come from TFDS; digits from scikit-learn (offline).

Each loader is registered with its dataset's facts (`DatasetSpec`: title, class count, coarse
labels, whether mirroring or cropping suits it) on `DATASETS`, the `Registry` every plug-in kind
uses; other modules read them with `dataset_spec(name)` rather than keeping lists of dataset
names of their own.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import struct
from collections.abc import Callable

import numpy as np

from tfaux.names import require
from tfaux.registry import Registry

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where the Debian package `dataset-fashion-mnist` installs the IDX files."""

DATA_DIR_ENV = "TFAUX_DATA_DIR"
"""Environment variable naming a folder that holds the Fashion-MNIST IDX files."""

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Batch size used only to turn a TFDS split into arrays; large batches decode faster.
_TFDS_READ_BATCH = 4096


class DataNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor allowed to be downloaded; the message says how to fix it.

    Attributes:
        tfds_reason: the TFDS error behind it, as one line ("AssertionError: ..."), or None.
    """

    def __init__(self, message: str, tfds_reason: str | None = None):
        super().__init__(message)
        self.tfds_reason = tfds_reason


@dataclasses.dataclass(frozen=True, eq=False)
class RawData:
    """The official train and test splits of one dataset, as loaded from disk.

    Attributes:
        x_train: uint8 images, shape (N, H, W, C).
        y_train: int64 labels in [0, len(class_names)), shape (N,).
        x_test: uint8 images, shape (M, H, W, C).
        y_test: int64 labels, shape (M,).
        class_names: one name per label.
        coarse_train: int64 coarse labels (e.g. CIFAR-100 superclasses), or None.
        coarse_test: int64 coarse labels of the test split, or None.
        coarse_names: one name per coarse label, or None.
        notes: how the data was read, one line each, for the run's log (a folder's: cached
            or streamed, images skipped, files ignored).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    coarse_train: np.ndarray | None = None
    coarse_test: np.ndarray | None = None
    coarse_names: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        for split, x, y in (
            ("train", self.x_train, self.y_train),
            ("test", self.x_test, self.y_test),
        ):
            if x.dtype != np.uint8 or x.ndim != 4:
                raise ValueError(
                    f"Expected x_{split} as uint8 (N, H, W, C). "
                    f"Received: dtype={x.dtype}, shape={x.shape}"
                )
            if y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(
                    f"Expected y_{split} as int64 of shape ({len(x)},). "
                    f"Received: dtype={y.dtype}, shape={y.shape}"
                )
        given = [v is not None for v in (self.coarse_train, self.coarse_test, self.coarse_names)]
        if any(given) and not all(given):
            raise ValueError(
                "Expected coarse_train, coarse_test and coarse_names all given or all None. "
                f"Received: given={given}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.x_train.shape[1:])


# === Registry ===

Loader = Callable[..., RawData]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset's loader and the facts other modules need, kept in one place so that no module
    keeps its own list of dataset names.

    Attributes:
        name: the name `load_raw` accepts.
        title: the dataset's usual written name, for messages ("CIFAR-100").
        num_classes: number of (fine) labels; `load_raw` checks the loaded data against it.
            None for data that brings its own classes (an image folder, `tfds:<name>`).
        loader: `loader(data_dir=..., download=...)` returns the `RawData`; a loader of data
            that brings its own classes also gets `options` (`ImageOptions`).
        coarse_labels: the data carries a second, coarser label (CIFAR-100's 20 superclasses).
        flip_invariant: a left-right mirror keeps every label (clothes and natural images, not
            digits), so training may flip and evaluation may test flips.
        default_crop: the training split gets a random crop unless augmentation is off.
    """

    name: str
    title: str
    num_classes: int | None
    loader: Loader = dataclasses.field(repr=False)
    coarse_labels: bool = False
    flip_invariant: bool = False
    default_crop: bool = True


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    title: str,
    num_classes: int | None,
    coarse_labels: bool = False,
    flip_invariant: bool = False,
    default_crop: bool = True,
) -> Callable[[Loader], Loader]:
    """Decorator that registers a loader under `name` with its dataset's facts (`DatasetSpec`).

    Example:
        @register_dataset("cifar10", title="CIFAR-10", num_classes=10, flip_invariant=True)
        def _load_cifar10(*, data_dir, download): ...
    """
    DATASETS.check_free(name)  # fails at the decorator's line, before the loader is defined
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2. Received: num_classes={num_classes}")

    def wrap(fn: Loader) -> Loader:
        DATASETS.register(
            DatasetSpec(
                name=name,
                title=title,
                num_classes=num_classes,
                loader=fn,
                coarse_labels=coarse_labels,
                flip_invariant=flip_invariant,
                default_crop=default_crop,
            )
        )
        return fn

    return wrap


TFDS_PREFIX = "tfds:"
"""`tfds:<name>` names any TFDS image-classification dataset prepared in the TFDS data dir."""


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """How data that brings its own classes and image sizes is read (an image folder,
    `tfds:<name>`); see `tfaux.data.folder.load_folder`.

    Attributes:
        path: the image folder (`folder` only).
        image_size: resize to `image_size` x `image_size`; None: the most common size.
        channels: 1 or 3; None: 1 if every image is grayscale, else 3.
        test_fraction: share of each class held out for testing when the data has no test split.
        skip_bad_images: skip and count images that cannot be decoded instead of failing.
        memory_limit: decoded images above this size ("4GiB") are streamed from the cache;
            None: a quarter of the machine's memory.
        cache_dir: where decoded images are cached.
    """

    path: str | None = None
    image_size: int | None = None
    channels: int | None = None
    test_fraction: float = 0.2
    skip_bad_images: bool = False
    memory_limit: str | None = None
    cache_dir: str = "~/.cache/tfaux/images"

    def __post_init__(self):
        # One check for both loaders (a recipe's `DataConfig` checks the same before any load).
        require(self.channels in (None, 1, 3), "channels 1, 3 or None", channels=self.channels)
        require(
            self.image_size is None or self.image_size > 0,
            "image_size > 0 or None",
            image_size=self.image_size,
        )
        require(
            0 < self.test_fraction < 1, "0 < test_fraction < 1", test_fraction=self.test_fraction
        )

    @classmethod
    def from_settings(cls, settings: dict) -> ImageOptions:
        """The options among a recipe's `data` settings (a dict of `DataConfig`'s fields)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of dataset `name` (a `tfds:<name>` gets one made for it); an unknown
    name raises, suggesting the closest."""
    if name == TFDS_PREFIX:
        raise ValueError("Expected a TFDS dataset's name after 'tfds:', e.g. tfds:beans")
    if name.startswith(TFDS_PREFIX):
        from tfaux.data.tfds_images import load_tfds_images

        tfds_name = name[len(TFDS_PREFIX) :]
        return DatasetSpec(
            name=name,
            title=f"TFDS {tfds_name!r}",
            num_classes=None,
            loader=functools.partial(load_tfds_images, tfds_name),
        )
    return DATASETS.get(name)


def list_datasets() -> list[str]:
    """Returns the names `load_raw` (and `tfaux.data.load`) accept, sorted (`tfds:<name>` for
    any prepared TFDS dataset aside)."""
    return DATASETS.names()


def check_name(name: str) -> None:
    """Raises ValueError for an unknown dataset name, suggesting the closest known ones."""
    dataset_spec(name)


def has_coarse_labels(name: str) -> bool:
    """Whether dataset `name` carries coarse labels (CIFAR-100's 20 superclasses)."""
    return dataset_spec(name).coarse_labels


def load_raw(
    name: str,
    *,
    data_dir: str | None = None,
    download: bool = False,
    options: ImageOptions | None = None,
) -> RawData:
    """Loads the train and test splits of dataset `name` as uint8 NHWC arrays.

    Args:
        name: a name from `list_datasets()`.
        data_dir: the TFDS data dir (default: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
            Ignored by `digits`.
        download: let TFDS download and prepare the dataset if it is not on disk. Off by
            default: offline, a TFDS download retries for minutes before it fails.
        options: how data that brings its own classes is read (`ImageOptions`); ignored by
            the datasets of fixed shape.

    Returns:
        A `RawData`.

    Raises:
        ValueError: `name` is unknown, or the data disagrees with its `DatasetSpec`.
        DataNotFoundError: the data is not on disk and `download` is False (or the download
            failed); the message names the ways to provide it.
    """
    spec = dataset_spec(name)
    if spec.num_classes is None:
        return spec.loader(data_dir=data_dir, download=download, options=options or ImageOptions())
    raw = spec.loader(data_dir=data_dir, download=download)
    # Other modules act on the spec without loading any data, so hold the spec to the data here.
    loaded = (len(raw.class_names), raw.coarse_names is not None)
    if loaded != (spec.num_classes, spec.coarse_labels):
        raise ValueError(
            f"Expected {name!r} data as its DatasetSpec describes it (classes, coarse labels): "
            f"{(spec.num_classes, spec.coarse_labels)}. Received: {loaded}"
        )
    return raw


# === Fashion-MNIST (IDX files) ===


@register_dataset("fashion_mnist", title="Fashion-MNIST", num_classes=10, flip_invariant=True)
def _load_fashion_mnist(*, data_dir: str | None, download: bool) -> RawData:
    for folder in _fashion_mnist_dirs():
        if all(os.path.isfile(os.path.join(folder, f)) for f in FASHION_MNIST_FILES):
            return _read_fashion_mnist(folder)

    # An already prepared TFDS copy is read without asking TFDS to download anything.
    if download or tfds_is_prepared("fashion_mnist", data_dir):
        try:
            raw = _load_tfds("fashion_mnist", data_dir=data_dir, download=download)
        except DataNotFoundError as e:
            reason = e.tfds_reason
            raise DataNotFoundError(_fashion_mnist_missing(data_dir, reason), reason) from None
        return dataclasses.replace(raw, class_names=FASHION_MNIST_CLASSES)
    raise DataNotFoundError(_fashion_mnist_missing(data_dir))


def _fashion_mnist_missing(data_dir: str | None, tfds_reason: str | None = None) -> str:
    message = (
        "Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist`, "
        f"or set {DATA_DIR_ENV} to a folder with the four Fashion-MNIST .gz files "
        f"({', '.join(FASHION_MNIST_FILES)}), or pass download=True "
        "(recipe: --set data.download=true) to let TFDS download it. "
        f"Searched: {', '.join(_fashion_mnist_dirs())} and the TFDS data dir "
        f"{_tfds_data_dir(data_dir)}."
    )
    return f"{message} TFDS said: {tfds_reason}" if tfds_reason else message


def _fashion_mnist_dirs() -> list[str]:
    """Folders that may hold the four IDX files, in search order (read at call time)."""
    dirs = []
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        dirs += [env_dir, os.path.join(env_dir, "fashion-mnist")]
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    dirs += [DEBIAN_FASHION_MNIST_DIR, os.path.join(keras_home, "datasets", "fashion-mnist")]
    return dirs


def _read_fashion_mnist(folder: str) -> RawData:
    x_train, y_train, x_test, y_test = (
        read_idx(os.path.join(folder, f)) for f in FASHION_MNIST_FILES
    )
    return RawData(
        x_train=x_train[..., None],
        y_train=y_train.astype(np.int64),
        x_test=x_test[..., None],
        y_test=y_test.astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
    )


def read_idx(path: str) -> np.ndarray:
    """Reads a gzipped IDX file of unsigned bytes (the MNIST file format) into an array.

    The header is two zero bytes, a type code (0x08 = uint8), the number of dimensions n, then
    n big-endian uint32 sizes; the data follows in C order.

    Args:
        path: a `*-ubyte.gz` file.

    Returns:
        A uint8 array of the shape the header declares (read-only: it views the file's bytes).
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(
            f"Expected an IDX file of unsigned bytes (magic 0x0000 08 nn). Received: {path} "
            f"starting with {data[:4].hex()}"
        )
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != math.prod(shape):
        raise ValueError(
            f"Expected {math.prod(shape)} values after the IDX header of {path} (shape {shape}). "
            f"Received: {array.size}"
        )
    return array.reshape(shape)


# === TFDS datasets ===


@register_dataset("mnist", title="MNIST", num_classes=10)
def _load_mnist(*, data_dir: str | None, download: bool) -> RawData:
    return _load_tfds("mnist", data_dir=data_dir, download=download)


@register_dataset("cifar10", title="CIFAR-10", num_classes=10, flip_invariant=True)
def _load_cifar10(*, data_dir: str | None, download: bool) -> RawData:
    return _load_tfds("cifar10", data_dir=data_dir, download=download)


@register_dataset(
    "cifar100", title="CIFAR-100", num_classes=100, coarse_labels=True, flip_invariant=True
)
def _load_cifar100(*, data_dir: str | None, download: bool) -> RawData:
    return _load_tfds("cifar100", data_dir=data_dir, download=download, coarse_key="coarse_label")


@register_dataset("svhn_cropped", title="SVHN", num_classes=10)
def _load_svhn_cropped(*, data_dir: str | None, download: bool) -> RawData:
    return _load_tfds("svhn_cropped", data_dir=data_dir, download=download)


def _tfds_data_dir(data_dir: str | None) -> str:
    return (
        data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    )


def tfds_is_prepared(name: str, data_dir: str | None) -> bool:
    """Whether TFDS has `name` prepared in `data_dir`; looks at files only, never downloads."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # A broken data dir counts as "not prepared"; the caller says what to do.
        return False


def _load_tfds(
    name: str, *, data_dir: str | None, download: bool, coarse_key: str | None = None
) -> RawData:
    """Reads the train and test splits of TFDS dataset `name` into arrays.

    TFDS reports a dataset that is not prepared (with download=False) as a bare AssertionError,
    and an offline download as whatever the HTTP stack raised after minutes of retries; both
    become one `DataNotFoundError` whose message says how to provide the data.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        train = _tfds_split_to_numpy(builder, "train", coarse_key)
        test = _tfds_split_to_numpy(builder, "test", coarse_key)
        label = builder.info.features["label"]
        class_names = tuple(label.names)
        coarse_names = tuple(builder.info.features[coarse_key].names) if coarse_key else None
    except Exception as e:  # Any TFDS failure here means "data not available".
        # `from None`: the message carries TFDS' reason; its traceback would only bury it.
        text = str(e).strip()
        reason = f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"
        raise DataNotFoundError(tfds_missing(name, data_dir, reason), reason) from None
    return RawData(
        x_train=train[0],
        y_train=train[1],
        x_test=test[0],
        y_test=test[1],
        class_names=class_names,
        coarse_train=train[2],
        coarse_test=test[2],
        coarse_names=coarse_names,
    )


def _tfds_split_to_numpy(builder, split: str, coarse_key: str | None):
    """Decodes one split to (images, labels, coarse labels or None) numpy arrays."""
    import tensorflow_datasets as tfds

    keys = ("image", "label") + ((coarse_key,) if coarse_key else ())
    ds = builder.as_dataset(split=split, shuffle_files=False)
    # Not `batch_size=-1`: it batches by the split size in the dataset info, which is 0 under
    # `tfds.testing.mock_data`, and a batch of sys.maxsize aborts the process.
    ds = ds.map(lambda ex: tuple(ex[k] for k in keys)).batch(_TFDS_READ_BATCH)
    parts = list(tfds.as_numpy(ds))
    if not parts:
        raise ValueError(f"Expected examples in split {split!r}. Received: an empty split")
    images = np.concatenate([p[0] for p in parts]).astype(np.uint8, copy=False)
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False)
    coarse = np.concatenate([p[2] for p in parts]).astype(np.int64) if coarse_key else None
    return images, labels, coarse


def tfds_missing(name: str, data_dir: str | None, reason: str) -> str:
    """The one line that says how to provide TFDS dataset `name` (after TFDS' `reason`)."""
    known = name in DATASETS.names()
    title = f"{DATASETS.get(name).title} (TFDS {name!r})" if known else f"TFDS {name!r}"
    folder = _tfds_data_dir(data_dir)
    return (
        f"{title} not found in the TFDS data dir {folder}. Prepare it there with "
        f"`tfds build {name} --data_dir={folder}` (or place the downloaded files in "
        f"{os.path.join(folder, 'downloads', 'manual')} first), or point data_dir / "
        "TFDS_DATA_DIR to a folder where it is prepared, or pass download=True "
        f"(recipe: --set data.download=true) to let TFDS download it. TFDS said: {reason}"
    )


# === scikit-learn digits ===


# 8x8 digits lose a whole stroke to a 4-pixel shift, so they are not cropped by default.
@register_dataset("digits", title="scikit-learn digits", num_classes=10, default_crop=False)
def _load_digits(*, data_dir: str | None, download: bool) -> RawData:
    """The 1797 8x8 digits bundled with scikit-learn; a stratified 80/20 split (seed 0)."""
    del data_dir, download  # Shipped with scikit-learn: nothing to find or download.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=0
    )
    return RawData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(i) for i in range(10)),
    )
