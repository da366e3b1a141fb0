"""Does a denoising front end denoise, or learn a "noisy identity" (seed 004's finding)?

For clean images x, their geometric augmentation g (as in training) and the perturbed input
x̃ = FGSM(g) on the whole model, the input differs from x by two parts: the geometric change
a = g − x and the FGSM perturbation n = x̃ − g. With D the denoiser:
- `noise_kept` = ⟨D(x̃) − g, n⟩ / ⟨n, n⟩: the share of the FGSM perturbation still in the output
  (1: passed through as by the identity; 0: removed, as by a D that returns g).
- `error_ratio` = ‖D(x̃) − g‖ / ‖n‖: how far the output is from the augmented clean image,
  relative to how far the input was (< 1: closer to it than the input).
- `identity_distance` = ‖D(x̃) − x̃‖ / ‖n‖: how much the denoiser changes its input.
- `geometric_kept` = ⟨D(g) − x, a⟩ / ⟨a, a⟩, on the augmented clean images alone: the share of
  the geometric change still in the output (1: kept, as by the identity; 0: undone, giving back
  the original image, the denoiser's training target).
- `geometric_error_ratio` = ‖D(g) − x‖ / ‖a‖: how far that output is from the original image.
- `clean_error` = RMS of D(x) − x: what it does to clean images.
`noisy_identity` is true when more than half of the FGSM perturbation passes through. A D that
also undoes the geometry (returns x) has D(x̃) − g = −a, so its `noise_kept` is −⟨a, n⟩/⟨n, n⟩:
near 0 unless the FGSM signs correlate with the geometric change.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfaux.attacks.fast_gradient import FGSM
from tfaux.data.augment import geometric_augment


def denoiser_report(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float = 0.1,
    seed: int = 0,
    flip: bool = True,
    output: str = "denoise",
) -> dict:
    """The measures above for a model with a denoiser output `output`, on test images `x`."""
    denoiser = keras.Model(model.input, model.output[output])
    x = tf.constant(x, tf.float32)
    geometric = geometric_augment(x, tf.constant([seed, 4], tf.int32), flip=flip)
    perturbed = FGSM(model)(geometric, y, eps=eps)

    def flat(images) -> np.ndarray:
        return np.asarray(images).reshape(len(x), -1)

    def run(images) -> np.ndarray:
        return flat(denoiser(images, training=False).numpy())

    clean, augmented, adversarial = flat(x.numpy()), flat(geometric.numpy()), flat(perturbed)
    noise, change = adversarial - augmented, augmented - clean  # FGSM part, geometric part
    out = run(perturbed)
    residual = out - augmented  # the FGSM part left in the output (and what D adds)
    on_augmented = run(geometric) - clean
    kept = _share(residual, noise)
    noise_norm = max(float(np.linalg.norm(noise)), 1e-12)
    return {
        "examples": int(len(clean)),
        "eps": float(eps),
        "noise_kept": kept,
        "error_ratio": float(np.linalg.norm(residual)) / noise_norm,
        "identity_distance": float(np.linalg.norm(out - adversarial)) / noise_norm,
        "geometric_kept": _share(on_augmented, change),
        "geometric_error_ratio": float(np.linalg.norm(on_augmented))
        / max(float(np.linalg.norm(change)), 1e-12),
        "clean_error": float(np.sqrt(np.mean((run(x) - clean) ** 2))),
        "noisy_identity": bool(kept > 0.5),
    }


def _share(residual: np.ndarray, part: np.ndarray) -> float:
    """⟨residual, part⟩ / ⟨part, part⟩: how much of `part` the residual still holds."""
    return float(np.sum(residual * part) / max(float(np.sum(part * part)), 1e-12))
