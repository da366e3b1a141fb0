"""Aux targets against independent references; the task registry."""

import numpy as np
import pytest

from tests.helpers import numpy_fourier, random_images
from tfaux.aux import FourierTask, ReconTask, create_task, fourier_target, list_tasks


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
