"""Fourier heat maps: basis images against numpy's FFT, symmetry, clean and perturbed accuracy."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.helpers import random_images, tiny_model
from tfaux.evaluate.fourier_heatmap import (
    default_eps,
    fourier_basis,
    fourier_heatmap,
    heatmap_figure,
    heatmap_plot,
    save_heatmap,
)


def _numpy_partner_mask(i, j, height, width):
    """Where the conjugate partner of shifted frequency (i, j) lies, found with numpy alone:
    conjugating an image reflects its spectrum, so conj(ifft(δ at (i, j))) has its energy there."""
    delta = np.zeros((height, width))
    delta[i, j] = 1.0
    wave = np.fft.ifft2(np.fft.ifftshift(delta))
    return np.abs(np.fft.fftshift(np.fft.fft2(np.conj(wave)))) > 0.5


@pytest.mark.parametrize("height, width", [(16, 16), (7, 7), (6, 5)])
def test_basis_is_real_unit_norm_with_energy_at_the_frequency_and_its_partner(height, width):
    for i in range(height):
        for j in range(width):
            basis = fourier_basis(i, j, height, width)
            assert basis.shape == (height, width) and np.isrealobj(basis)
            np.testing.assert_allclose(np.linalg.norm(basis), 1.0, rtol=1e-12)
            energy = np.abs(np.fft.fftshift(np.fft.fft2(basis))) ** 2
            expected = _numpy_partner_mask(i, j, height, width)
            expected[i, j] = True
            np.testing.assert_allclose(energy[~expected], 0.0, atol=1e-18)
            # Parseval: all of the unit energy, split equally between the two points.
            np.testing.assert_allclose(energy[expected], height * width / expected.sum())
            (pi, pj) = np.argwhere(_numpy_partner_mask(i, j, height, width))[0]
            np.testing.assert_allclose(fourier_basis(pi, pj, height, width), basis, atol=1e-12)


def test_basis_rejects_frequencies_outside_the_grid():
    with pytest.raises(ValueError, match="Received: i=16"):
        fourier_basis(16, 0, 16, 16)


def _predicted(model, x):
    """Labels from `model.predict`, independent of the heat map's compiled path."""
    outputs = model.predict(x, verbose=0)
    return np.argmax(outputs["logits"] if isinstance(outputs, dict) else outputs, axis=-1)


def _clean_accuracy(model, x, y):
    return np.mean(_predicted(model, x) == y)


def _symmetric_under_point_reflection(heatmap):
    """map[i, j] == map[partner], with the partner written out per parity of the size."""
    height, width = heatmap.shape
    for axis, size in ((0, height), (1, width)):
        if size % 2 == 0:  # index 0 is Nyquist, its own partner; 1..size-1 reflect around size/2
            heatmap = np.concatenate(
                [heatmap.take([0], axis), np.flip(heatmap.take(range(1, size), axis), axis)], axis
            )
        else:
            heatmap = np.flip(heatmap, axis)
    return heatmap


def _linear_model(shape):
    """Random linear logits: unlike a freshly initialized CNN (near-constant predictions on noise),
    its predictions move with the perturbation, so symmetry checks are not vacuous."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(4)])


@pytest.mark.parametrize("shape", [(16, 16, 1), (9, 9, 3), (8, 7, 2)])
def test_heatmap_is_symmetric_under_conjugation_and_in_unit_interval(shape):
    model, x = _linear_model(shape), random_images(16, shape)
    y = _predicted(model, x)
    heatmap = fourier_heatmap(model, x, y, eps=3 * default_eps(*shape[:2]), progress=False)
    assert heatmap.shape == shape[:2]
    assert np.all((heatmap >= 0) & (heatmap <= 1))
    assert heatmap.min() < 1.0  # the perturbation does something, so the check is not vacuous
    np.testing.assert_array_equal(_symmetric_under_point_reflection(heatmap), heatmap)
    if shape[0] % 2 == 0:  # the Nyquist row is its own reflection, not the last row's
        assert not np.array_equal(np.flip(heatmap, (0, 1)), heatmap)


def _digits_0_to_3():
    """sklearn's 8x8 digits 0-3, upsampled to 16x16 in [0, 1]; learnable in a few epochs."""
    digits = load_digits()
    keep = digits.target < 4
    x = digits.images[keep].repeat(2, axis=1).repeat(2, axis=2)[..., None] / 16.0
    return x.astype(np.float32), digits.target[keep]


@pytest.fixture(scope="module")
def trained():
    """A tiny_model trained on digits 0-3, and 64 held-out test digits."""
    x, y = _digits_0_to_3()
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    model.fit(x[:600], y[:600], batch_size=32, epochs=6, verbose=0)
    return model, x[600:664], y[600:664]


def test_large_perturbation_lowers_the_accuracy_of_a_trained_model(trained):
    model, x, y = trained
    clean = _clean_accuracy(model, x, y)
    assert clean > 0.8  # well above chance (0.25)
    heatmap = fourier_heatmap(model, x, y, eps=8.0, progress=False)
    assert heatmap.mean() < clean - 0.1
    assert heatmap.min() < heatmap.max()  # some frequencies hurt more than others


def test_zero_eps_gives_the_clean_accuracy_at_every_frequency(trained):
    model, x, y = trained
    heatmap = fourier_heatmap(model, x, y, eps=0.0, batch_size=100, progress=False)
    assert heatmap.shape == (16, 16)
    np.testing.assert_array_equal(heatmap, _clean_accuracy(model, x, y))


def test_same_seed_same_map_for_any_batch_size(trained):
    model, x, y = trained
    x, y = x[:10], y[:10]
    maps = [
        fourier_heatmap(model, x, y, eps=6.0, seed=seed, batch_size=batch, progress=False)
        for seed, batch in ((1, 1024), (1, 7), (1, 33), (2, 1024))
    ]
    np.testing.assert_array_equal(maps[0], maps[1])
    np.testing.assert_array_equal(maps[0], maps[2])
    assert not np.array_equal(maps[0], maps[3])  # signs do change with the seed


def test_invalid_arguments_say_what_was_expected():
    model, x = tiny_model(), random_images(4, (16, 16, 1))
    with pytest.raises(ValueError, match="Expected eps >= 0. Received: eps=-1.0"):
        fourier_heatmap(model, x, np.zeros(4), eps=-1.0, progress=False)
    with pytest.raises(ValueError, match="one label per image"):
        fourier_heatmap(model, x, np.zeros(3), progress=False)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fourier_heatmap(model, x * 2, np.zeros(4), progress=False)


def test_default_eps_matches_yin_et_al_on_cifar_and_keeps_the_rms():
    assert default_eps(32, 32) == 4.0
    # Same per-pixel RMS of a unit-norm basis scaled by eps: eps / sqrt(H·W).
    np.testing.assert_allclose(default_eps(28, 28) / 28, 4.0 / 32)


@pytest.mark.parametrize("count, axes", [(1, 2), (2, 5), (3, 4)])
def test_plot_writes_a_png_with_a_panel_per_map_and_a_difference_for_two(tmp_path, count, axes):
    maps = {f"model {k}": np.random.default_rng(k).random((16, 16)) for k in range(count)}
    fig = heatmap_figure(maps, title="test")
    assert len(fig.axes) == axes  # panels, one shared accuracy colourbar, a difference colourbar
    path = heatmap_plot(maps, tmp_path / "heatmap.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    saved = save_heatmap(maps["model 0"], path)
    assert saved == tmp_path / "heatmap.npy"
    np.testing.assert_array_equal(np.load(saved), maps["model 0"])


def test_plot_rejects_maps_of_different_shapes(tmp_path):
    with pytest.raises(ValueError, match="one shape"):
        heatmap_plot({"a": np.zeros((4, 4)), "b": np.zeros((5, 5))}, tmp_path / "x.png")
