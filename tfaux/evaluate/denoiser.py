"""Does a denoising front end denoise, or learn a "noisy identity" (seed 004's finding)?

For clean images x and perturbed inputs x̃ (geometric augmentation, then FGSM on the whole
model, as in training), with n = x̃ − x the perturbation and D the denoiser:
- `noise_kept` = ⟨D(x̃) − x, n⟩ / ⟨n, n⟩: the share of the perturbation still in the output
  (1: passed through as by the identity; 0: removed).
- `error_ratio` = ‖D(x̃) − x‖ / ‖n‖: how far the output is from the clean image, relative to
  how far the input was (< 1: closer to clean than the input).
- `identity_distance` = ‖D(x̃) − x̃‖ / ‖n‖: how much the denoiser changes its input.
- `clean_error` = RMS of D(x) − x: what it does to clean images.
`noisy_identity` is true when more than half of the perturbation passes through.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfaux.attacks import Attacker, AttackSpec
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
    perturbed = Attacker(model)(AttackSpec("fgsm", eps=eps), geometric, y)
    noise = (perturbed - x).numpy().reshape(len(x), -1)
    out = denoiser(perturbed, training=False).numpy().reshape(len(x), -1)
    clean_out = denoiser(x, training=False).numpy().reshape(len(x), -1)
    flat = x.numpy().reshape(len(x), -1)
    residual, noise_norm = out - flat, max(float(np.linalg.norm(noise)), 1e-12)
    kept = float(np.sum(residual * noise) / max(float(np.sum(noise * noise)), 1e-12))
    change = out - perturbed.numpy().reshape(len(x), -1)
    return {
        "examples": int(len(flat)),
        "eps": float(eps),
        "noise_kept": kept,
        "error_ratio": float(np.linalg.norm(residual)) / noise_norm,
        "identity_distance": float(np.linalg.norm(change)) / noise_norm,
        "clean_error": float(np.sqrt(np.mean((clean_out - flat) ** 2))),
        "noisy_identity": bool(kept > 0.5),
    }
