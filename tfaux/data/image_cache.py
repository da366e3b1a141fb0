"""Decoded images in a local file, written once and read back as an array or a memory map.

Decoding and resizing a folder of JPEGs is the slow part of reading it; the decoded uint8 pixels
are small and fast to read. So the first load writes them, in one pass, into `images.u8` (raw
NHWC bytes) under a directory named by a digest of their sources, and every later load (another
seed, variant or run) reads that file: whole into memory below the memory budget, else as an
`np.memmap`, which the input pipeline reads batch by batch (`tfaux.data.pipeline.make_dataset`).

The file is complete when its `meta.json` exists (written last, atomically), so an interrupted
first pass is simply done again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

DEFAULT_MEMORY_SHARE = 0.25
"""Share of the machine's memory that decoded images may take before they are streamed."""


def parse_size(text: str | int) -> int:
    """Bytes from an int or a string such as "4GiB", "500 MB", "0"."""
    if isinstance(text, int):
        value, unit = text, ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(
                f"Expected a size such as 4GiB, 500MB or a number of bytes. Received: {text!r}"
            )
        value, unit = float(match.group(1)), match.group(2).lower()
    if value < 0:
        raise ValueError(f"Expected a size >= 0. Received: {text!r}")
    return int(value * _UNITS[unit])


def memory_budget(limit: str | int | None = None) -> int:
    """Bytes of decoded images to keep in memory: `limit`, or `DEFAULT_MEMORY_SHARE` of RAM."""
    if limit is not None:
        return parse_size(limit)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * DEFAULT_MEMORY_SHARE)


class ImageCache:
    """The cache entry of one set of images.

    Args:
        root: the cache folder (created when written).
        key: a digest of what the pixels depend on (sources, requested size and channels,
            decoder); the shape the images were decoded to is recorded in the entry.
    """

    def __init__(self, root: str | Path, key: str):
        self.directory = Path(root) / key
        self._meta = self.directory / "meta.json"
        self._images = self.directory / "images.u8"

    def complete(self) -> bool:
        """Whether a finished entry exists."""
        return self._meta.is_file()

    def write(self, batches, count: int, shape: tuple[int, int, int]) -> list[int]:
        """Writes the images of `batches` (`(rows, uint8 images of `shape`)` in increasing row
        order, rows in [0, count)) one after the other, and returns the rows that never came
        (the sources that could not be decoded). Call `finish` afterwards."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._shape = tuple(int(d) for d in shape)
        partial = self._images.with_suffix(f".{os.getpid()}.partial")
        images = np.memmap(partial, np.uint8, "w+", shape=(max(count, 1), *self._shape))
        seen, cursor = np.zeros(count, bool), 0
        for rows, batch in batches:
            rows, batch = np.asarray(rows), np.asarray(batch)
            images[cursor : cursor + len(rows)] = batch
            seen[rows] = True
            cursor += len(rows)
        images.flush()
        del images
        os.truncate(partial, cursor * int(np.prod(self._shape)))  # the undecodable rows' room
        os.replace(partial, self._images)
        return [int(r) for r in np.flatnonzero(~seen)]

    def finish(self, *, bad: list[str]) -> None:
        """Marks the entry complete, recording the shape and the sources that could not be
        decoded."""
        count = self._images.stat().st_size // int(np.prod(self._shape))
        meta = {"shape": list(self._shape), "count": int(count), "bad": list(bad)}
        partial = self._meta.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(meta, indent=1))
        os.replace(partial, self._meta)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self._read_meta()["shape"])

    def bad(self) -> list[str]:
        """The sources that could not be decoded."""
        return self._read_meta()["bad"]

    def count(self) -> int:
        """Images in the entry."""
        return int(self._read_meta()["count"])

    def nbytes(self) -> int:
        """Bytes of the decoded images."""
        return self.count() * int(np.prod(self.shape))

    def note(self, *, written: bool, streamed: bool) -> str:
        """One line for a run's log: whether this load wrote the entry or found it, its size,
        and how the images are read."""
        return (
            f"{'decoded into' if written else 'found in'} the cache {self.directory} "
            f"({self.nbytes() / 2**20:.1f} MiB); "
            f"{'streamed from the cache' if streamed else 'read into memory'}"
        )

    def images(self, *, in_memory: bool) -> np.ndarray:
        """The images, (count, H, W, C) uint8: read into memory, or a read-only memory map."""
        shape = (self.count(), *self.shape)
        if not shape[0]:
            return np.zeros(shape, np.uint8)
        if in_memory:
            return np.fromfile(self._images, np.uint8).reshape(shape)
        return np.memmap(self._images, np.uint8, "r", shape=shape)

    def _read_meta(self) -> dict:
        if not hasattr(self, "_meta_cache"):
            self._meta_cache = json.loads(self._meta.read_text())
        return self._meta_cache


class ImageRows:
    """Some rows of a memory-mapped image array, read only when indexed.

    What a streamed split is: the validation split's rows, or a training subset, of the cache
    file, without copying them into memory. Indexing with an int, a slice or an index array
    returns a numpy array (rows are read in file order, then put in the order asked for).
    """

    def __init__(self, images: np.ndarray, rows: np.ndarray):
        self.base = images
        self.rows = np.asarray(rows, np.int64)
        self.shape = (len(self.rows), *images.shape[1:])
        self.dtype = images.dtype
        self.ndim = images.ndim

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        rows = self.rows[key]
        if np.ndim(rows) == 0:
            return np.asarray(self.base[int(rows)])
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        out[order] = self.base[rows[order]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        images = self[:]
        return images if dtype is None else images.astype(dtype)


def take_rows(images, rows: np.ndarray):
    """`images[rows]`: copied for an array in memory; an `ImageRows` view for a memory map (or
    an `ImageRows`), so streamed images stay on disk."""
    if isinstance(images, ImageRows):
        return ImageRows(images.base, images.rows[rows])
    if isinstance(images, np.memmap):
        return ImageRows(images, rows)
    return images[rows]


def is_streamed(images) -> bool:
    """Whether `images` are read from disk on demand (a memory map or `ImageRows`)."""
    return isinstance(images, np.memmap | ImageRows)
