"""Shared checks for models, serialization and export."""

import keras
import numpy as np


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
