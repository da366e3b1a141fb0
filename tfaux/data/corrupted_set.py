"""Common-corruption test sets ("-C" sets): corrupted copies of a test set, generated once, cached.

15 common corruptions for the benchmark and 4 held-out validation ones, each at 5 severities
(Hendrycks & Dietterich), with one of two sets of constants (`CONSTANTS`):
- "cifar10_c" (default): CIFAR-10-C's generator, `make_cifar_c.py`, whose constants are tuned for
  32x32 images, applied at the images' own size (`tfaux.data.cifar10_c`). Seed 001 reports
  CIFAR-10-C, so this is the -C set its numbers compare with.
- "imagenet_c": the maintained `imagecorruptions` package, i.e. ImageNet-C's constants for
  224 px, on images upsampled to 32 px (what tfaux did before; see below).
Scoring a model on a set lives in `tfaux.evaluate.corruption`.

Grayscale images. Both generators work on RGB for the corruptions that need colour (frost
photos, HSV brightness and saturation, coloured spatter; imagecorruptions for all of them): the
image is repeated to 3 channels and the change the corruption made is turned back into
grayscale with ITU-R 601 luminance and added to the original image. The other CIFAR-10-C
corruptions run on the gray channel itself, so Gaussian noise has exactly its σ.

Small images under "imagenet_c". The package wants uint8 HxWx3 images of at least 32x32 (it
refuses smaller ones, and frost/fog/glass_blur assume room for their crops and pixel shuffles),
while Fashion-MNIST is 28x28x1. So, only when a side is under 32 px, the image is upsampled
bilinearly (aspect kept) before corrupting and the *change* is resized back to the original size
(area interpolation): resizing the change rather than the corrupted image keeps the resize round
trip from blurring every image, so a corruption that changes nothing (see below) returns the
input exactly.

What to expect under "imagenet_c" at 28-32 px (measured on Fashion-MNIST, mean |corrupted -
clean| per severity):
- `saturate` does nothing to a gray image at severities 1-3 (it scales the HSV saturation, which
  is 0) and at 4-5 only adds a red tint, i.e. a slight darkening once converted back to gray.
  The same holds under "cifar10_c".
- `spatter` at severities 1-3 turns an image black (0/0 cast to uint8) when none of its random
  drops passes the threshold, which happens for a few % of 32 px images; we return the image
  unchanged instead, which is what "no drops" means (under "cifar10_c" too).
- `glass_blur`, `fog`, `frost`, `snow` and `spatter` are not monotone in pixel change between
  neighbouring severities (e.g. glass_blur 3 > 4): the parameter tables are ImageNet-C's, where
  severity orders the drop in accuracy. Severity 5 changes images more than severity 1, except
  `saturate` on color images, whose 1-2 desaturate and 3-5 oversaturate.
- the parameters are tuned for 224 px, so at 32 px the blurs are much stronger relative to the
  image (defocus radius 10 px covers a third of it), and elastic_transform, which smooths its
  displacements over 1% of the image size, becomes a per-pixel jitter of a few pixels (much like
  glass_blur) rather than a smooth warp.
- `glass_blur` is compiled by numba on first use (~5 s); `frost` reads and resizes a large frost
  photo for every image (~10 ms each), the slowest corruption.
Under "cifar10_c" the noise and blur families grow with severity; `elastic_transform` shrinks
(its severity 1 is a pure random affine map of 2.6 px, later ones trade it for a smooth warp) and
`spatter` 4-5 (mud) changes fewer pixels than 3 (water), as in CIFAR-10-C itself.

Determinism: both generators draw from numpy's global RNG, so before each (corruption, severity)
we seed it from (seed, corruption index, severity) and restore the caller's state afterwards;
imagecorruptions' `glass_blur` and `impulse_noise` use their own generators and get a per-image
seed drawn from it. A corruption's images therefore do not depend on which other corruptions
are generated.

Reference:
    Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR 2019.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from imagecorruptions import corrupt, get_corruption_names

from tfaux.config import C_CONSTANTS
from tfaux.data import cifar10_c
from tfaux.names import unknown_name
from tfaux.progress import progress_bar

log = logging.getLogger("tfaux")

COMMON: tuple[str, ...] = tuple(get_corruption_names("common"))
VALIDATION: tuple[str, ...] = tuple(get_corruption_names("validation"))
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
CONSTANTS: tuple[str, ...] = C_CONSTANTS  # ("cifar10_c", "imagenet_c"); see the module docstring
FORMAT_VERSION = 1

_ALL = tuple(get_corruption_names("all"))  # the package's order: a corruption's seed index
_MIN_SIDE = 32  # imagecorruptions refuses smaller images
_OWN_SEED = ("glass_blur", "impulse_noise")  # imagecorruptions': ignore np.random, take a seed
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601
_MANIFEST = "manifest.json"
_CLEAN = "clean.npz"


# === Corrupting images ===


def corrupt_images(
    images: np.ndarray,
    corruption: str,
    severity: int,
    *,
    seed: int,
    constants: str = "cifar10_c",
) -> np.ndarray:
    """Corrupted copies of `images`, reproducible from `seed`.

    Args:
        images: float NHWC in [0, 1], 1 or 3 channels, any size (under "imagenet_c", smaller
            than 32 px is upsampled for the corruption only; see the module docstring).
        corruption: a name from `COMMON` or `VALIDATION`.
        severity: 1 (mild) to 5 (strong).
        seed: integer in [0, 2**32); the same seed gives the same images.
        constants: "cifar10_c" (CIFAR-10-C's generator at the images' own size) or
            "imagenet_c" (imagecorruptions); see `CONSTANTS`.

    Returns:
        float32 array of the same shape as `images`, in [0, 1].
    """
    images = _check_images(images)
    corruption = _check_corruption(corruption)
    severity = _check_severity(severity)
    seed = _check_seed(seed)
    constants = _check_constants(constants)
    own_seeds = constants == "imagenet_c" and corruption in _OWN_SEED
    out = np.empty_like(images)
    with _seeded_numpy(seed, _ALL.index(corruption), severity):
        for i, image in enumerate(images):
            own_seed = int(np.random.randint(2**31 - 1)) if own_seeds else None
            out[i] = _corrupt_one(image, corruption, severity, own_seed, constants)
    return out


def _corrupt_one(
    image: np.ndarray, corruption: str, severity: int, seed: int | None, constants: str
) -> np.ndarray:
    height, width, channels = image.shape
    rgb = np.round(255 * image).astype(np.uint8)
    if constants == "cifar10_c":
        if channels == 1 and corruption in cifar10_c.COLOR_CORRUPTIONS:
            rgb = np.repeat(rgb, 3, axis=-1)
        corrupted = cifar10_c.corrupt(rgb, corruption, severity)
        change = (corrupted.astype(np.float32) - rgb.astype(np.float32)) / 255
        if change.shape[-1] != channels:
            change = change @ _LUMA
        return np.clip(image + change.reshape(image.shape), 0, 1)
    if channels == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    scale = _MIN_SIDE / min(height, width)
    if scale > 1:
        size = (math.ceil(width * scale), math.ceil(height * scale))  # cv2 wants (w, h)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    kwargs = {"seed": seed} if seed is not None else {}
    guard = np.errstate(invalid="raise") if corruption == "spatter" else contextlib.nullcontext()
    try:
        with guard:
            corrupted = corrupt(rgb, severity=severity, corruption_name=corruption, **kwargs)
    except FloatingPointError:
        # spatter 1-3 divides by the largest drop; when no drop passes its threshold (a few % of
        # 32 px images) that is 0/0 and the package returns a black image. No drops: no change.
        corrupted = rgb
    change = (corrupted.astype(np.float32) - rgb.astype(np.float32)) / 255
    if scale > 1:
        change = cv2.resize(change, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        change = change @ _LUMA
    return np.clip(image + change.reshape(image.shape), 0, 1)


@contextlib.contextmanager
def _seeded_numpy(*entropy: int):
    """Seeds numpy's global RNG (the package's source of randomness), then restores the caller's."""
    state = np.random.get_state()
    np.random.seed(np.array(entropy, dtype=np.uint32))
    try:
        yield
    finally:
        np.random.set_state(state)


# === The cached set ===


class CorruptedSet:
    """A -C set on disk: the clean images, their labels and every (corruption, severity).

    Made by `corrupted_set`; images are stored as uint8 and returned as float32 in [0, 1].
    """

    def __init__(self, path: Path, manifest: dict, generated: bool):
        self.path = Path(path)
        self.manifest = manifest
        self.generated = generated
        self.corruptions: tuple[str, ...] = tuple(manifest["corruptions"])
        self.severities: tuple[int, ...] = tuple(manifest["severities"])
        self._labels: np.ndarray | None = None

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            with np.load(self.path / _CLEAN) as data:
                self._labels = data["labels"]
        return self._labels

    def __len__(self) -> int:
        return int(self.manifest["image_shape"][0])

    def __repr__(self) -> str:
        return (
            f"CorruptedSet({str(self.path)!r}, {len(self)} images, "
            f"{len(self.corruptions)} corruptions x {len(self.severities)} severities)"
        )

    def clean_images(self) -> np.ndarray:
        """The source images as stored (uint8): clean and corrupted errors see the same rounding."""
        return self._load(_CLEAN, "images")

    def images(self, corruption: str, severity: int) -> np.ndarray:
        """The images under one corruption at one severity, float32 in [0, 1]."""
        if corruption not in self.corruptions:
            raise unknown_name("corruption in this set", corruption, self.corruptions)
        if severity not in self.severities:
            raise ValueError(
                f"Expected a severity in {self.severities}. Received: severity={severity!r}"
            )
        return self._load(f"{corruption}.npz", f"severity_{int(severity)}")

    def _load(self, name: str, key: str) -> np.ndarray:
        with np.load(self.path / name) as data:
            return data[key].astype(np.float32) / 255


def corrupted_set(
    images: np.ndarray,
    labels: np.ndarray,
    cache_dir: str | os.PathLike,
    *,
    corruptions: Sequence[str] = COMMON + VALIDATION,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    constants: str = "cifar10_c",
    progress: bool = True,
) -> CorruptedSet:
    """Corrupted copies of a test set, generated once and reused from `cache_dir`.

    The manifest records what the cache was made from (hashes of images and labels, package
    version, constants, corruptions, severities, seed) and the sha256 of every file, so a cache
    made from other inputs, or whose files changed on disk, is regenerated with a warning instead
    of silently giving wrong numbers. Files are written to a temporary name and renamed, and the
    manifest is written last, so an interrupted generation never looks valid.

    Args:
        images: float NHWC in [0, 1], 1 or 3 channels.
        labels: one label per image (integers or one-hot).
        cache_dir: a directory owned by this set (created if needed).
        corruptions: names from `COMMON` and `VALIDATION` (default: all 19).
        severities: subset of 1..5.
        seed: integer in [0, 2**32).
        constants: "cifar10_c" (default) or "imagenet_c", see `CONSTANTS`; a cache made with
            the other constants is regenerated, never read.
        progress: show progress (a bar on a terminal) while generating.

    Returns:
        A `CorruptedSet`; its `generated` is True if this call wrote the cache.

    Example:
        cset = corrupted_set(x_test, y_test, "cache/fashion_mnist_c")
        fog = cset.images("fog", 3)
    """
    images = _check_images(images)
    labels = np.asarray(labels)
    if labels.ndim not in (1, 2) or len(labels) != len(images):
        raise ValueError(
            f"Expected one label (or one-hot row) per image, {len(images)} in all. "
            f"Received: labels of shape {labels.shape}"
        )
    corruptions = _unique("corruptions", [_check_corruption(c) for c in corruptions])
    severities = _unique("severities", [_check_severity(s) for s in severities])
    params = {
        "format_version": FORMAT_VERSION,
        "images_sha256": _array_sha256(images),
        "labels_sha256": _array_sha256(labels),
        "image_shape": list(images.shape),
        "imagecorruptions_version": _package_version(),
        "constants": _check_constants(constants),
        "corruptions": list(corruptions),
        "severities": list(severities),
        "seed": _check_seed(seed),
    }
    cache_dir = Path(cache_dir)
    old = _read_manifest(cache_dir)
    reason = _stale_reason(cache_dir, old, params)
    if reason is None:
        return CorruptedSet(cache_dir, old, generated=False)
    if old is not None:
        log.warning("Regenerating the corruption cache in %s: %s.", cache_dir, reason)
    manifest = _generate(cache_dir, images, labels, params, old, progress)
    return CorruptedSet(cache_dir, manifest, generated=True)


def _read_manifest(cache_dir: Path) -> dict | None:
    """The manifest, {} if it exists but is unreadable, None if there is none."""
    try:
        manifest = json.loads((cache_dir / _MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _stale_reason(cache_dir: Path, manifest: dict | None, params: dict) -> str | None:
    """Why the cache cannot be reused, or None if it can."""
    if manifest is None:
        return "no manifest"
    if not manifest:
        return f"{_MANIFEST} is unreadable"
    for key, wanted in params.items():
        cached = manifest.get(key)
        if cached != wanted:
            if key.endswith("sha256"):
                return f"the source {key.split('_')[0]} differ from the cached ones"
            return f"{key} differs (cached: {cached}, requested: {wanted})"
    files = manifest.get("files", {})
    expected = [_CLEAN, *(f"{c}.npz" for c in params["corruptions"])]
    for name in expected:
        if name not in files:
            return f"{name} is not in the manifest"
        path = cache_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if _file_sha256(path) != files[name]:
            return f"{name} does not match its sha256 (modified or corrupted)"
    return None


def _generate(
    cache_dir: Path,
    images: np.ndarray,
    labels: np.ndarray,
    params: dict,
    old: dict | None,
    progress: bool,
) -> dict:
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Invalidate first: from here until the new manifest lands, the cache must not look valid.
    (cache_dir / _MANIFEST).unlink(missing_ok=True)
    for name in (old or {}).get("files", {}):
        if name.endswith(".npz") and "/" not in name and os.sep not in name:
            (cache_dir / name).unlink(missing_ok=True)
    files = {_CLEAN: _save_npz(cache_dir / _CLEAN, images=_to_uint8(images), labels=labels)}
    corruptions, severities = params["corruptions"], params["severities"]
    bar = progress_bar(
        total=len(corruptions) * len(severities), desc="corrupt", unit="set", enabled=progress
    )
    with bar:
        for corruption in corruptions:
            arrays = {}
            for severity in severities:
                bar.set_postfix_str(f"{corruption} s{severity}")
                corrupted = corrupt_images(
                    images,
                    corruption,
                    severity,
                    seed=params["seed"],
                    constants=params["constants"],
                )
                arrays[f"severity_{severity}"] = _to_uint8(corrupted)
                bar.update()
            files[f"{corruption}.npz"] = _save_npz(cache_dir / f"{corruption}.npz", **arrays)
    manifest = {**params, "files": files}
    _write_atomic(cache_dir / _MANIFEST, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
    return manifest


def _save_npz(path: Path, **arrays: np.ndarray) -> str:
    return _write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def _write_atomic(path: Path, write: Callable) -> str:
    """Writes through a temporary file in the same directory, renames it, returns its sha256."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        digest = _file_sha256(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return digest


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _array_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@functools.cache
def _package_version() -> str:
    """e.g. "imagecorruptions-imaug==1.1.5": forks share the module name, so record which one."""
    for dist in importlib.metadata.packages_distributions().get("imagecorruptions", []):
        return f"{dist}=={importlib.metadata.version(dist)}"
    return "unknown"


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(255 * images).astype(np.uint8)


# === Argument checks ===


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or 0 in images.shape:
        raise ValueError(
            "Expected a non-empty NHWC batch of images with 1 or 3 channels. "
            f"Received: shape {images.shape}"
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"Expected float images in [0, 1]. Received: dtype {images.dtype}")
    images = images.astype(np.float32, copy=False)
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise ValueError(f"Expected images in [0, 1]. Received: values from {low} to {high}")
    return images


def _check_corruption(corruption: str) -> str:
    if corruption not in _ALL:
        raise unknown_name("corruption", corruption, _ALL)
    return corruption


def _check_constants(constants: str) -> str:
    if constants not in CONSTANTS:
        raise unknown_name("corruption constants", constants, CONSTANTS)
    return constants


def _check_severity(severity: int) -> int:
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"Expected a severity in {SEVERITIES}. Received: severity={severity!r}")
    return int(severity)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"Expected an integer seed in [0, 2**32). Received: seed={seed!r}")
    return int(seed)


def _unique(kind: str, names: list) -> tuple:
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Expected a non-empty list of distinct {kind}. Received: {names}")
    return tuple(names)
