"""Shared test helpers: small models and images, output checks, quick evaluation and CLI runs."""

from pathlib import Path

import cv2
import keras
import numpy as np

from tfaux import build
from tfaux.cli import main
from tfaux.config import EvalConfig, Recipe
from tfaux.training.callbacks import CatastrophicOverfittingGuard

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"


def random_images(n: int, shape=(28, 28, 1), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def garments(n: int = 6, shape=(28, 28, 1), seed: int = 0) -> np.ndarray:
    """Fashion-MNIST-like images: a smooth textured object on a black background."""
    height, width, channels = shape
    low = np.random.default_rng(seed).random((n, 7, 7, channels), dtype=np.float32)
    smooth = [cv2.resize(im, (width, height), interpolation=cv2.INTER_CUBIC) for im in low]
    yy, xx = np.mgrid[:height, :width]
    ellipse = ((yy - height / 2) / (0.4 * height)) ** 2 + ((xx - width / 2) / (0.3 * width)) ** 2
    mask = (ellipse < 1).astype(np.float32)[..., None]
    return np.clip(np.stack(smooth).reshape(n, *shape) * mask, 0, 1)


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


class MadeUpLogs(keras.callbacks.Callback):
    """Feeds made-up epoch metrics to the callbacks after it, one value per epoch
    (`val_accuracy=[0.5, 0.8, ...]`)."""

    def __init__(self, **series):
        super().__init__()
        self.series = series

    def on_epoch_end(self, epoch, logs=None):
        logs.update({key: values[epoch] for key, values in self.series.items()})


class ForcedGuard(CatastrophicOverfittingGuard):
    """A rollback guard whose PGD accuracy on the training batch is made up, one value per
    epoch: a collapse on demand, without training into one."""

    def __init__(self, accuracies, selection=None):
        x = random_images(2, (16, 16, 1))
        super().__init__(x, np.arange(2), eps=0.1, steps=1, selection=selection)
        self.accuracies = accuracies

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = epoch
        super().on_epoch_end(epoch, logs)

    def accuracy(self):
        return self.accuracies[self.epoch]


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
    spectrum = np.fft.fft2(gray.astype(np.float64))
    # A real image's DC and Nyquist bins are real: phase 0 or +π (never −π), like fourier_target.
    height, width = gray.shape[-2:]
    rows = [0] + ([height // 2] if height % 2 == 0 else [])
    cols = [0] + ([width // 2] if width % 2 == 0 else [])
    real_bins = (..., *np.ix_(rows, cols))
    spectrum[real_bins] = spectrum[real_bins].real
    spectrum = np.fft.fftshift(spectrum, axes=(-2, -1))
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
    "autoattack_examples": 16,  # where a recipe turns AutoAttack on
    "autoattack_steps": 5,
    "autoattack_queries": 20,
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


# The default recipe shrunk to a minute-long end-to-end run: 1 epoch, 512 training images.
QUICK = [
    "--set",
    "training.epochs=1",
    "--set",
    "data.train_size=512",
    "--set",
    "data.test_size=256",
    "--set",
    "model.width=0.5",
    "--set",
    "data.val_fraction=0.01",  # 600 validation images, not 3,000
    "--set",
    "monitor.robust_examples=64",
    "--no-progress",
    *quick_eval_cli(),
]


def run_cli(*args: str, tmp_path: Path | None = None) -> int:
    """`recipes/run.py ARGS` in this process (one TensorFlow start-up); its exit code.

    With `tmp_path`, runs and SavedModels are written under it instead of the repository.
    """
    if tmp_path is not None:
        args = (*args, "--runs-dir", str(tmp_path / "runs"), "--savedmodels-dir", str(tmp_path))
    return main(list(args), recipes_dir=RECIPES)


def small_loop_settings() -> dict:
    """Recipe sections that make every registered loop cheap and use all of its terms: 2 PGD
    steps, m = 2 with a 2-epoch ramp, no guard, one corruption with γ = 1 from the first epoch."""
    from tfaux.config import AdversarialConfig, AuxTrainingConfig, RandomSignConfig

    return {
        "adversarial": AdversarialConfig(
            eps=0.1, pgd_steps=2, replays=2, ramp_epochs=2, guard="off"
        ),
        "auxiliary": AuxTrainingConfig(corruptions=("rotation",), merge_epoch=0),
        "random_sign": RandomSignConfig(),
    }


def loop_recipe(*, dataset: str = "fashion_mnist", batch_size: int = 8, **sections):
    """A recipe holding a loop's settings (`adversarial=AdversarialConfig(...)`, ...) for tests
    that build models by hand; `dataset` decides whether augmentations may mirror images."""
    from tfaux.config import DataConfig, Recipe

    return Recipe("test", data=DataConfig(dataset=dataset, batch_size=batch_size), **sections)


def with_loop(
    model, loop: str, recipe=None, *, augmentation=None, weighting="fixed", **recipe_settings
):
    """`model`'s graph in the class of the registered `loop`, set up from `recipe` (default:
    `loop_recipe(**recipe_settings)`)."""
    from tfaux.training.loop import create_loop

    spec = create_loop(loop, recipe or loop_recipe(**recipe_settings))
    return spec.wrap(model, augmentation=augmentation, weighting=weighting)


def loop_model(
    loop: str,
    tasks=(),
    *,
    synchronized: bool = False,
    precision: str = "float32",
    num_classes: int = 4,
    seed: int = 0,
    augmentation=None,
    weighting="fixed",
    **recipe_settings,
):
    """A `tiny_model` with `tasks` and the heads, norm layers and random signs `loop` adds,
    wrapped by it."""
    from tfaux.training.loop import create_loop

    spec = create_loop(loop, loop_recipe(**recipe_settings))
    model = tiny_model(
        [*tasks, *spec.tasks(num_classes)],
        seed=seed,
        num_classes=num_classes,
        norm=spec.norm(0.9, synchronized),
        random_sign=spec.random_sign(),
        precision=precision,
    )
    return spec.wrap(model, augmentation=augmentation, weighting=weighting)


# === Models with known adversarial distances ===
def linear_model(w: np.ndarray) -> keras.Model:
    """logits = [0, w·x, −100, −100] on 4×4 images: effectively two classes (so the L∞ distance to
    the boundary is |w·x| / ‖w‖₁), with four logits for the DLR losses."""
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    kernel = np.zeros((16, 4), "float32")
    kernel[:, 1] = w
    model.layers[-1].set_weights([kernel, np.array([0, 0, -100, -100], "float32")])
    return model


def linear_problem(n: int = 96):
    rng = np.random.default_rng(0)
    w = rng.normal(size=16).astype("float32")
    w -= w.mean()
    x = np.clip(0.5 + rng.normal(scale=0.15, size=(n, 4, 4, 1)), 0.1, 0.9).astype("float32")
    score = x.reshape(n, 16) @ w
    return linear_model(w), x, (score > 0).astype("int32"), np.abs(score) / np.abs(w).sum()


def check_variant(variant: str) -> None:
    """Every check a recipe makes of one variant: its grammar, its loop and tasks in their
    registries, the loop's rules, λ and the loop settings (`experiment.check_recipe`)."""
    from tfaux.experiment import check_recipe

    check_recipe(Recipe("check", variants=(variant,)))
