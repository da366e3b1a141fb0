"""Aux targets against independent references; the task registry."""

import numpy as np
import pytest

from tests.helpers import numpy_fourier, random_images
from tfaux.tasks import FourierTask, ReconTask, create_task, fourier_target, list_tasks


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (9, 16, 1)])
def test_fourier_target_matches_numpy(shape):
    x = random_images(3, shape)
    got = fourier_target(x).numpy()
    want = numpy_fourier(x)
    assert got.shape == (3, *shape[:2], 2)
    np.testing.assert_allclose(got[..., 0], want[..., 0], rtol=1e-4, atol=1e-4)
    # Phase is only defined where the magnitude is not ~0; compare on the unit circle.
    np.testing.assert_allclose(np.cos(np.pi * got[..., 1]), np.cos(np.pi * want[..., 1]), atol=1e-3)
    np.testing.assert_allclose(np.sin(np.pi * got[..., 1]), np.sin(np.pi * want[..., 1]), atol=1e-3)
    assert np.all(np.abs(got[..., 1]) <= 1.0)


def test_fourier_target_dc_term_is_centred():
    x = np.full((1, 8, 8, 1), 0.5, np.float32)  # constant image: all energy in the DC term
    magnitude = fourier_target(x).numpy()[0, ..., 0]
    assert np.unravel_index(np.argmax(magnitude), magnitude.shape) == (4, 4)
    np.testing.assert_allclose(magnitude[4, 4], np.log1p(0.5 * 64), rtol=1e-6)
    assert np.count_nonzero(magnitude > 1e-5) == 1


def test_recon_target_is_the_clean_input():
    x = random_images(2)
    np.testing.assert_array_equal(ReconTask().target(x, None), x)


def test_task_registry():
    assert {"recon", "fourier"} <= set(list_tasks())
    assert isinstance(create_task("fourier", 0.5), FourierTask)
    assert create_task("fourier", 0.5).weight == 0.5
    with pytest.raises(ValueError, match="'fourier'"):
        create_task("fourrier")
    with pytest.raises(ValueError, match="Received: weight=-0.1"):
        ReconTask(-0.1)


def _negative_self_conjugate_images(n: int, shape) -> np.ndarray:
    """Images whose DC-free self-conjugate bins (the Nyquist row, column and corner) are real
    and negative: a pattern on the odd rows and columns, plus noise."""
    height, width = shape[:2]
    rows = (-1.0) ** np.arange(height)[:, None]
    cols = (-1.0) ** np.arange(width)[None, :]
    pattern = 0.5 - 0.15 * (rows + cols + rows * cols)  # in [0.05, 0.65]
    noise = 0.05 * random_images(n, shape, seed=1)
    return (pattern[None, ..., None] + noise).astype(np.float32)


def _self_conjugate_bins(height: int, width: int) -> list[tuple[int, int]]:
    """The fftshifted indices of the bins that are real for a real image: DC and Nyquist."""
    rows = [0] + ([height // 2] if height % 2 == 0 else [])
    cols = [0] + ([width // 2] if width % 2 == 0 else [])
    return [((r + height // 2) % height, (c + width // 2) % width) for r in rows for c in cols]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (9, 16, 1)])
def test_fourier_phase_is_deterministic_at_self_conjugate_bins(shape):
    # Real bins that are negative have phase ±π; tf.math.angle picked the sign from a ~1e-6
    # rounding error in the imaginary part (both −1 and +1 targets at the Nyquist bins).
    x = _negative_self_conjugate_images(16, shape)
    got, want = fourier_target(x).numpy(), numpy_fourier(x)
    bins = _self_conjugate_bins(*shape[:2])
    assert len(bins) == (4 if shape[0] % 2 == 0 else 2)
    dc = (shape[0] // 2, shape[1] // 2)
    for row, col in bins:
        np.testing.assert_array_equal(got[:, row, col, 1], want[:, row, col, 1])
        # DC is positive (phase 0); the Nyquist bins are negative here (phase +π, never −π).
        np.testing.assert_array_equal(got[:, row, col, 1], 0.0 if (row, col) == dc else 1.0)
    np.testing.assert_allclose(np.cos(np.pi * got[..., 1]), np.cos(np.pi * want[..., 1]), atol=1e-3)
    np.testing.assert_allclose(got[..., 0], want[..., 0], rtol=1e-4, atol=1e-4)


def test_fourier_raw_magnitude_is_the_papers_modulus():
    x = random_images(2, (16, 16, 1))
    raw, logged = fourier_target(x, "raw").numpy(), fourier_target(x).numpy()
    np.testing.assert_allclose(raw[..., 0], np.expm1(numpy_fourier(x)[..., 0]), rtol=1e-4)
    np.testing.assert_allclose(np.log1p(raw[..., 0]), logged[..., 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(raw[..., 1], logged[..., 1])
    np.testing.assert_allclose(raw[0, 8, 8, 0], x[0].sum(), rtol=1e-5)  # DC = Σ pixels
    task = FourierTask(0.1, magnitude="raw")
    np.testing.assert_array_equal(task.target(x, None), raw)
    assert task.get_config() == {"weight": 0.1, "magnitude": "raw"}
    assert FourierTask.from_config(task.get_config()).magnitude == "raw"
    assert FourierTask().magnitude == "log1p"
    with pytest.raises(ValueError, match="Received: magnitude='log'"):
        FourierTask(magnitude="log")
