"""Shared checks for models, serialization and export."""

import keras
import numpy as np

from tfaux import build
from tfaux.config import EvalConfig


def random_images(n: int, shape=(28, 28, 1), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def assert_same_outputs(a: keras.Model, b: keras.Model, x: np.ndarray, atol: float = 1e-5):
    out_a, out_b = a(x, training=False), b(x, training=False)
    if isinstance(out_a, dict):
        assert sorted(out_a) == sorted(out_b)
        for key in out_a:
            np.testing.assert_allclose(out_a[key], out_b[key], atol=atol, err_msg=key)
    else:
        np.testing.assert_allclose(out_a, out_b, atol=atol)


class Interrupt(keras.callbacks.Callback):
    """Stands in for a crash (Ctrl-C, SIGKILL): raises when epoch `at` begins, i.e. after the
    backup of epoch `at - 1`."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def tiny_model(tasks=(), *, seed: int = 0, num_classes: int = 4, mean=0.5, std=0.25, **kwargs):
    """A seeded small_cnn classifier on 16x16x1 images, fast enough for any unit test."""
    keras.utils.set_random_seed(seed)
    return build(
        "small_cnn",
        input_shape=(16, 16, 1),
        num_classes=num_classes,
        mean=mean,
        std=std,
        width=0.25,
        tasks=tasks,
        **kwargs,
    )


def numpy_fourier(images: np.ndarray) -> np.ndarray:
    """Independent reference for `fourier_target`: numpy FFT of the ITU-R 601 grayscale image."""
    if images.shape[-1] == 3:
        gray = images @ np.array([0.2989, 0.5870, 0.1140])
    else:
        gray = images[..., 0]
    spectrum = np.fft.fftshift(np.fft.fft2(gray.astype(np.float64)), axes=(-2, -1))
    return np.stack([np.log1p(np.abs(spectrum)), np.angle(spectrum) / np.pi], axis=-1)


# A robustness report small enough for unit tests: every attack and check runs, on few examples.
QUICK_EVAL_SETTINGS = {
    "pgd_steps": (3,),
    "bim_steps": 2,
    "mim_steps": 2,
    "curve_eps": (0.1, 0.5),
    "curve_examples": 32,
    "sanity_examples": 32,
    "blackbox_examples": 2,
    "spsa_steps": 3,
    "spsa_samples": 8,
    "cw_steps": 5,
}


def quick_eval(**overrides):
    return EvalConfig(**{**QUICK_EVAL_SETTINGS, **overrides})


def quick_eval_cli() -> list[str]:
    """`--set evaluation.<key>=<value>` for every quick setting."""
    args = []
    for key, value in QUICK_EVAL_SETTINGS.items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        args += ["--set", f"evaluation.{key}={text}"]
    return args
