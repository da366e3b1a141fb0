"""Fourier heat maps: accuracy under a Fourier-basis perturbation at every frequency.

A model that leans on high-frequency features loses accuracy when a small high-frequency basis
image is added; one trained with Gaussian noise or adversarially trades that for a weakness at
low frequencies. The heat map shows which, one pixel per frequency (Yin et al. 2019, Fig. 1;
Zhang et al. 2020, Fig. 3).

Conventions: maps and frequency indices (i, j) are fftshifted, so the centre (H // 2, W // 2) is
the DC component and distance from it is the frequency; the partner of (i, j) is its point
reflection through the centre, taken modulo the size. For even sizes row 0 and column 0 are the
Nyquist frequencies, whose partners lie in the same row/column (row 0 is its own reflection), so
a map is symmetric under `(i, j) -> ((2·(H//2) - i) % H, (2·(W//2) - j) % W)`, which is a plain
`np.flip(map, (0, 1))` only for odd sizes.

Reference:
    Yin et al., "A Fourier perspective on model robustness in computer vision", NeurIPS 2019.
    Zhang et al., "Auxiliary Training: Towards Accurate and Robust Models", CVPR 2020, §5.2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from tfaux.attacks import logits_fn
from tfaux.progress import progress_bar

# Yin et al.'s CIFAR-10 setting: ‖v‖₂ = 4 per channel on 32x32 images in [0, 1].
_REFERENCE_EPS = 4.0
_REFERENCE_PIXELS = 32 * 32


def default_eps(height: int, width: int) -> float:
    """Yin et al.'s CIFAR-10 budget scaled to the same per-pixel RMS at another image size.

    A unit-norm basis image scaled by v has RMS v / sqrt(H·W) in each channel, so keeping Yin et
    al.'s RMS of 4 / 32 = 0.125 gives v = 4·sqrt(H·W / 1024): 4.0 at 32x32, 3.5 at 28x28. Each
    channel gets its own ±v·U (as in the paper), so the RMS does not depend on the channel count.
    """
    return _REFERENCE_EPS * math.sqrt(height * width / _REFERENCE_PIXELS)


def partner(i: int, j: int, height: int, width: int) -> tuple[int, int]:
    """The fftshifted index of the conjugate-symmetric partner of frequency (i, j) (or arrays)."""
    return (2 * (height // 2) - i) % height, (2 * (width // 2) - j) % width


def fourier_basis(i: int, j: int, height: int, width: int) -> np.ndarray:
    """The real, unit-L2-norm H×W image whose DFT is non-zero only at (i, j) and its partner.

    It is the inverse DFT of a spectrum that is 1 at both points, i.e. a cosine wave: written as
    one so no complex arithmetic or FFT is needed (tests compare it with numpy's FFT).

    Args:
        i, j: frequency in fftshifted coordinates; (height // 2, width // 2) is DC.
        height, width: image size.

    Returns:
        float64 array of shape (height, width).
    """
    if height < 1 or width < 1:
        raise ValueError(f"Expected height, width >= 1. Received: {height}x{width}")
    if not (0 <= i < height and 0 <= j < width):
        raise ValueError(f"Expected 0 <= i < {height} and 0 <= j < {width}. Received: i={i}, j={j}")
    return _bases(np.array([i]), np.array([j]), height, width)[0]


def _bases(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """`fourier_basis` for many frequencies at once: shape (len(rows), H, W)."""
    k = (rows - height // 2)[:, None, None] / height
    l = (cols - width // 2)[:, None, None] / width  # noqa: E741 (k, l: the DFT's names)
    m, n = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    waves = np.cos(2.0 * np.pi * (k * m + l * n))
    # Never zero: the wave is 1 at the origin. Self-partnered frequencies (DC, Nyquist) are ±1
    # everywhere and have twice the energy of the others, hence normalizing numerically.
    return waves / np.sqrt(np.sum(waves**2, axis=(1, 2), keepdims=True))


def _representatives(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One frequency of each conjugate pair (the one with the smaller flat index)."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    prow, pcol = partner(rows, cols, height, width)
    keep = rows * width + cols <= prow * width + pcol
    return rows[keep], cols[keep]


def fourier_heatmap(
    model: keras.Model,
    images,
    labels,
    *,
    eps: float | None = None,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Accuracy on `clip(x + r·eps·U(i, j), 0, 1)` for every frequency (i, j).

    r ∈ {-1, +1} is drawn per frequency, image and channel from `seed` (so the map does not depend
    on `batch_size`). A frequency and its conjugate partner have the same basis image, so only
    one of each pair is evaluated and the result mirrored: about half the forward passes.

    Args:
        model: a dict-output model (uses "logits") or a plain classifier; run in inference mode.
        images: (N, H, W, C) floats in [0, 1].
        labels: (N,) integer labels, or (N, K) one-hot.
        eps: L2 norm of the perturbation in each channel; None: `default_eps(H, W)`, Yin et al.'s
            ‖v‖ = 4 on CIFAR-10 scaled to the same per-pixel RMS. 0 gives the clean accuracy.
        batch_size: (frequency, image) pairs per forward pass.
        seed: seed of the random signs; same seed, same map.
        progress: show progress (a bar on a terminal) over frequencies.

    Returns:
        float64 array (H, W) of accuracies in [0, 1], fftshifted: the centre is DC.

    Reference:
        Yin et al., "A Fourier perspective on model robustness in computer vision", NeurIPS 2019.

    Example:
        heatmap = fourier_heatmap(model, x_test[:1000], y_test[:1000])
        heatmap_plot({"baseline": heatmap}, run_dir / "fourier_heatmap.png")
    """
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"Expected images of shape (N, H, W, C), N > 0. Received: {images.shape}")
    if labels.ndim == 2:
        labels = np.argmax(labels, axis=-1)
    if labels.shape != images.shape[:1]:
        raise ValueError(
            f"Expected one label per image. Received: images {images.shape}, labels {labels.shape}"
        )
    if images.min() < 0.0 or images.max() > 1.0:
        raise ValueError(
            "Expected images in [0, 1] (perturbed images are clipped to it). Received: "
            f"values in [{images.min()}, {images.max()}]"
        )
    num, height, width, channels = images.shape
    eps = default_eps(height, width) if eps is None else float(eps)
    if not eps >= 0.0:
        raise ValueError(f"Expected eps >= 0. Received: eps={eps}")
    if batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")

    rows, cols = _representatives(height, width)
    per_image = min(num, batch_size)  # images per forward pass
    per_freq = max(1, batch_size // per_image)  # frequencies per forward pass
    count = _correct_counter(model)
    correct = np.zeros(len(rows), np.int64)
    bar = progress_bar(total=len(rows), desc="fourier heatmap", unit="freq", enabled=progress)
    with bar:
        for f0 in range(0, len(rows), per_freq):
            freqs = slice(f0, f0 + per_freq)
            bases = _bases(rows[freqs], cols[freqs], height, width).astype(np.float32)
            signs = _signs(seed, range(len(rows))[freqs], num, channels)
            for n0 in range(0, num, per_image):
                batch = slice(n0, n0 + per_image)
                correct[freqs] += count(
                    images[batch], labels[batch], bases, signs[:, batch], np.float32(eps)
                ).numpy()
            bar.update(len(bases))

    heatmap = np.empty((height, width))
    heatmap[rows, cols] = correct / num
    heatmap[partner(rows, cols, height, width)] = correct / num
    return heatmap


def _signs(seed: int, frequencies, num: int, channels: int) -> np.ndarray:
    """±1 per (frequency, image, channel); one stream per frequency, so any chunking agrees."""
    draws = [np.random.default_rng((seed, f)).integers(0, 2, (num, channels)) for f in frequencies]
    return (2.0 * np.stack(draws) - 1.0).astype(np.float32)


def _correct_counter(model: keras.Model):
    """Compiled (x, y, bases, signs, eps) -> correct predictions per basis, for one model."""
    model_fn = logits_fn(model)

    @tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
    def count(x, y, bases, signs, eps):
        # (F, 1, H, W, 1) · (F, N, 1, 1, C) + (1, N, H, W, C): every frequency on every image.
        delta = eps * bases[:, None, :, :, None] * signs[:, :, None, None, :]
        perturbed = tf.clip_by_value(x[None] + delta, 0.0, 1.0)
        shape = tf.shape(perturbed)
        flat = tf.reshape(perturbed, tf.concat([[-1], shape[2:]], axis=0))
        predicted = tf.argmax(model_fn(flat), axis=-1, output_type=tf.int64)
        hits = tf.equal(tf.reshape(predicted, shape[:2]), tf.cast(y, tf.int64)[None])
        return tf.reduce_sum(tf.cast(hits, tf.int64), axis=1)

    return count


def save_heatmap(heatmap: np.ndarray, path) -> Path:
    """Saves the raw map as `.npy` (e.g. next to its PNG: the suffix is replaced) and returns it."""
    path = Path(path).with_suffix(".npy")
    np.save(path, np.asarray(heatmap))
    return path


def heatmap_figure(maps: Mapping[str, np.ndarray], *, title: str | None = None) -> Figure:
    """One panel per map on a shared 0–1 scale; with two maps, also their difference.

    Built as a plain `Figure`, outside any global state: `fig.savefig` draws it, nothing to close.
    """
    if not maps:
        raise ValueError("Expected at least one heat map. Received: maps={}")
    arrays = {name: np.asarray(m, dtype=np.float64) for name, m in maps.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            "Expected 2-D heat maps of one shape. Received shapes: "
            + ", ".join(f"{n}={a.shape}" for n, a in arrays.items())
        )
    height, width = next(iter(shapes))
    # Pixel centres at the offsets from DC: rows -H//2 .. H-1-H//2 (drawn upwards), columns alike.
    extent = (
        -(width // 2) - 0.5,
        width - 1 - width // 2 + 0.5,
        -(height // 2) - 0.5,
        height - 1 - height // 2 + 0.5,
    )
    names = list(arrays)
    with_diff = len(arrays) == 2
    panels = len(arrays) + with_diff
    fig = Figure(figsize=(3.2 * panels + 1.2, 3.4), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax, name in zip(axes, names, strict=False):
        image = ax.imshow(
            arrays[name], cmap="viridis", vmin=0.0, vmax=1.0, extent=extent, origin="lower"
        )
        ax.set_title(name, fontsize=9)
    fig.colorbar(image, ax=list(axes[: len(names)]), label="accuracy", shrink=0.9)
    if with_diff:
        diff = arrays[names[1]] - arrays[names[0]]
        limit = max(float(np.max(np.abs(diff))), 1e-3)  # a flat difference still gets a scale
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
        image = axes[2].imshow(diff, cmap="RdBu", norm=norm, extent=extent, origin="lower")
        axes[2].set_title(f"{names[1]} − {names[0]}", fontsize=9)
        fig.colorbar(image, ax=axes[2], label="accuracy difference", shrink=0.9)
    for ax in axes:
        ax.set_xlabel("horizontal frequency")
    axes[0].set_ylabel("vertical frequency\n(offset from DC, centre)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def heatmap_plot(maps: Mapping[str, np.ndarray], path, *, title: str | None = None) -> Path:
    """Writes `heatmap_figure(maps)` as a PNG and returns its path.

    Args:
        maps: {model name: map from `fourier_heatmap`}, plotted left to right.
        path: where to write the PNG.
        title: figure title, e.g. the dataset and ε.
    """
    fig = heatmap_figure(maps, title=title)
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
