"""TensorBoard monitoring: everything is read back from the event files and checked."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from tests.helpers import numpy_fourier, random_images, tiny_model
from tfaux import build, experiment
from tfaux.attacks.projected_gradient import PGD
from tfaux.config import DataConfig, MonitorConfig, Recipe, TrainingConfig
from tfaux.tasks import DenoiseTask, FourierTask, ReconTask
from tfaux.training.callbacks import RobustAccuracy, SharedAttacker
from tfaux.training.monitor import (
    HEATMAP_TAG,
    ImageLogger,
    LearningRateLogger,
    image_panels,
    write_heatmap,
    write_hparams,
)

H = W = 16
QUANTUM = 1.0 / 255.0  # tf.summary.image stores uint8


def _data(n=8, channels=1, seed=0):
    return random_images(n, (H, W, channels), seed=seed), np.arange(n) % 4


def _events(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={TENSORS: 0})  # keep every record
    events.Reload()
    return events


def _images(log_dir) -> dict[str, dict[int, list[np.ndarray]]]:
    """{tag: {step: [decoded uint8 images]}}; a v2 image summary is [width, height, png...]."""
    events = _events(log_dir)
    found = {}
    for tag in events.Tags()["tensors"]:
        for event in events.Tensors(tag):
            pngs = tf.make_ndarray(event.tensor_proto)[2:]
            decoded = [tf.image.decode_png(png).numpy() for png in pngs]
            found.setdefault(tag, {})[event.step] = decoded
    return found


def _scalars(log_dir, tag) -> list[float]:
    return [float(tf.make_ndarray(e.tensor_proto)) for e in _events(log_dir).Tensors(tag)]


def _no_default_writer() -> bool:
    return not bool(tf.summary.scalar("probe", 0.0, step=0))  # False: nowhere to write


class _Constant(keras.callbacks.Callback):
    """A metric that never improves, so ReduceLROnPlateau reduces on schedule."""

    def on_epoch_end(self, epoch, logs=None):
        logs["constant"] = 1.0


class _Spy(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(logs["learning_rate"])


# === Learning rate ===
def test_learning_rate_of_a_schedule_is_its_value_at_the_current_step(tmp_path):
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(schedule))
    x, y = _data()
    history = model.fit(
        x,
        y,
        batch_size=4,  # 2 steps per epoch
        epochs=2,
        verbose=0,
        callbacks=[LearningRateLogger(), keras.callbacks.TensorBoard(str(tmp_path))],
    )
    expected = [float(schedule(2)), float(schedule(4))]
    assert expected[0] > expected[1] > 0.0  # the schedule really moves
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)
    # Keras' TensorBoard plots the same rate, once per epoch (no duplicate series).
    np.testing.assert_allclose(
        _scalars(tmp_path / "train", "epoch_learning_rate"), expected, rtol=1e-6
    )


def test_learning_rate_matches_reduce_lr_on_plateau_in_either_order(tmp_path):
    x, y = _data()
    plateau = dict(monitor="constant", mode="min", factor=0.5, patience=1)
    # Reductions after epochs 1 and 2; each epoch logs the rate it trained with.
    expected = [0.1, 0.1, 0.05]
    for order in ("logger_first", "plateau_first"):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        spy, reduce = _Spy(), keras.callbacks.ReduceLROnPlateau(**plateau)
        board = keras.callbacks.TensorBoard(str(tmp_path / order))
        if order == "logger_first":  # the runner's order: TensorBoard before the reduction
            callbacks = [_Constant(), LearningRateLogger(), spy, board, reduce]
        else:
            callbacks = [_Constant(), reduce, LearningRateLogger(), spy]
        history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=callbacks)
        np.testing.assert_allclose(spy.seen, expected, rtol=1e-6, err_msg=order)
        np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)
        if order == "logger_first":
            scalars = _scalars(tmp_path / order / "train", "epoch_learning_rate")
            np.testing.assert_allclose(scalars, expected, rtol=1e-6)


# === Images ===
@pytest.fixture(scope="module")
def recon_fourier_run(tmp_path_factory):
    """3 epochs of a recon+fourier model, images every 2 epochs: written after epochs 1 and 2."""
    log_dir = tmp_path_factory.mktemp("recon_fourier")
    model = tiny_model([ReconTask(), FourierTask()])
    model.compile(optimizer="sgd")
    x, y = _data()
    logger = ImageLogger(log_dir, x, y, n=3, every=2, eps=0.1, steps=2)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[logger])
    return log_dir, x[:3]


def test_images_of_a_recon_fourier_model_at_the_requested_epochs(recon_fourier_run):
    log_dir, x = recon_fourier_run
    images = _images(log_dir / "images")
    assert sorted(images) == [
        "adversarial",
        "fourier/log_magnitude",
        "fourier/phase",
        "inputs",
        "perturbation",
        "recon",
    ]
    wide = {"recon", "fourier/log_magnitude", "fourier/phase"}
    for tag, steps in images.items():
        assert sorted(steps) == [1, 2], tag  # every 2 epochs, and after the last one
        for batch in steps.values():
            assert len(batch) == 3
            assert all(image.shape == (H, 2 * W if tag in wide else W, 1) for image in batch)
    # The left half of the recon panel is the input itself.
    for image, original in zip(images["recon"][2], x, strict=True):
        np.testing.assert_allclose(image[:, :W] / 255.0, original, atol=QUANTUM)
    assert _no_default_writer()
    assert os.listdir(log_dir) == ["images"]  # nothing else written


def test_perturbation_image_shows_an_attack_within_eps(recon_fourier_run):
    log_dir, x = recon_fourier_run
    images, eps = _images(log_dir / "images"), 0.1
    inputs = np.stack(images["inputs"][2]) / 255.0
    adversarial = np.stack(images["adversarial"][2]) / 255.0
    # 0.5 + δ/(2ε) back to δ: one 8-bit step of the image is 2ε/255 of δ.
    delta = (np.stack(images["perturbation"][2]) / 255.0 - 0.5) * 2 * eps
    np.testing.assert_allclose(inputs, x, atol=QUANTUM)
    assert np.abs(delta).max() <= eps * (1 + 2 * QUANTUM)
    assert np.abs(delta).max() > eps / 2  # PGD uses the budget; not a blank gray image
    np.testing.assert_allclose(adversarial - inputs, delta, atol=2 * QUANTUM + 2 * eps * QUANTUM)


def test_rgb_denoiser_with_fgsm_and_no_recon_or_fourier(tmp_path):
    keras.utils.set_random_seed(0)
    model = build(
        "small_cnn", input_shape=(H, W, 3), num_classes=4, width=0.25, tasks=[DenoiseTask(4)]
    )
    model.compile(optimizer="sgd")
    x, y = _data(channels=3)
    logger = ImageLogger(tmp_path, x, y, n=2, every=3, eps=0.05, steps=0)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[logger])
    images = _images(tmp_path / "images")
    expected = ["adversarial", "denoise", "denoise/adversarial", "inputs", "perturbation"]
    assert sorted(images) == expected  # no recon or fourier panels
    for tag, steps in images.items():
        assert sorted(steps) == [1], tag  # never every 3 epochs in 2: only after the last
        width = 2 * W if tag.startswith("denoise") else W
        assert all(image.shape == (H, width, 3) for image in steps[1])
    # FGSM moves every pixel by ±ε unless clipping at 0 or 1 stops it.
    delta = (np.stack(images["perturbation"][1]) / 255.0 - 0.5) * 2 * 0.05
    assert np.abs(delta).max() <= 0.05 * (1 + 2 * QUANTUM)
    assert np.median(np.abs(delta)) > 0.05 * (1 - 2 * QUANTUM)


def test_fourier_target_half_is_the_numpy_spectrum_min_max_scaled():
    model = tiny_model([FourierTask()])
    x, y = _data(n=2)
    panels = image_panels(model, x, y)
    assert sorted(panels) == ["fourier/log_magnitude", "fourier/phase", "inputs"]
    reference = numpy_fourier(x)
    for channel, tag in enumerate(("fourier/log_magnitude", "fourier/phase")):
        target = reference[..., channel]
        low = target.min(axis=(1, 2), keepdims=True)
        scaled = (target - low) / (target.max(axis=(1, 2), keepdims=True) - low)
        np.testing.assert_allclose(panels[tag][..., :W, 0], scaled, atol=1e-4, err_msg=tag)
        assert 0.0 <= panels[tag].min() and panels[tag].max() <= 1.0


def test_plain_model_without_attack_shows_only_inputs():
    x, y = _data(n=2)
    panels = image_panels(tiny_model(), x, y)
    assert list(panels) == ["inputs"]
    np.testing.assert_array_equal(panels["inputs"], x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "1 <= n <= 8"),
        ({"n": 9}, "1 <= n <= 8"),
        ({"every": 0}, "every >= 1"),
        ({"eps": 1.5}, "0 <= eps <= 1"),
        ({"steps": -1}, "steps >= 0"),
        ({"images": np.full((8, H, W, 1), 2.0)}, "images in \\[0, 1\\]"),
        ({"images": np.zeros((8, H, W, 2))}, "C = 1 or 3"),
        ({"labels": np.zeros(7)}, "one label per image"),
        ({"log_dir": ""}, "Expected a log directory"),
    ],
)
def test_image_logger_rejects_bad_arguments(tmp_path, kwargs, message):
    x, y = _data()
    args = {"log_dir": tmp_path, "images": x, "labels": y, **kwargs}
    with pytest.raises(ValueError, match=message):
        ImageLogger(args.pop("log_dir"), args.pop("images"), args.pop("labels"), **args)


# === Heat map and hyperparameters ===
def test_heatmap_is_written_as_a_decodable_image(tmp_path):
    heatmap = np.random.default_rng(0).random((H, W))
    write_heatmap(tmp_path, heatmap, step=3, title="test")
    images = _images(tmp_path)
    assert list(images) == [HEATMAP_TAG] and list(images[HEATMAP_TAG]) == [3]
    (image,) = images[HEATMAP_TAG][3]
    assert image.ndim == 3 and image.shape[2] == 3
    assert image.shape[1] > image.shape[0] > 100  # a figure with a colorbar, not the raw map
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # a colour map was drawn
    assert _no_default_writer()


def test_heatmap_rejects_a_non_2d_map(tmp_path):
    with pytest.raises(ValueError, match="Expected a 2-D heat map"):
        write_heatmap(tmp_path, np.zeros((2, H, W)))


def test_hparams_record_holds_the_values_and_the_metrics(tmp_path):
    hparams = {
        "loop": "pgd",
        "eps": 0.1,
        "replays": np.int64(4),
        "lambda_recon": 0.01,
        "flip": False,
    }
    write_hparams(tmp_path, hparams, {"test_accuracy": 0.75, "pgd_accuracy": np.float32(0.5)})
    events = _events(tmp_path)
    content = events.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
    info = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert info.hparams["loop"].string_value == "pgd"
    assert info.hparams["eps"].number_value == pytest.approx(0.1)
    assert info.hparams["replays"].number_value == 4
    assert info.hparams["lambda_recon"].number_value == pytest.approx(0.01)
    assert info.hparams["flip"].bool_value is False and info.hparams["flip"].HasField("bool_value")
    assert _scalars(tmp_path, "test_accuracy") == [0.75]
    assert _scalars(tmp_path, "pgd_accuracy") == [0.5]
    assert _no_default_writer()


@pytest.mark.parametrize(
    "hparams, metrics, error",
    [
        ({}, {}, ValueError),
        ({"weights": (0.1, 0.2)}, {}, TypeError),
        ({"eps": 0.1}, {"accuracy": "high"}, TypeError),
    ],
)
def test_hparams_rejects_values_tensorboard_cannot_show(tmp_path, hparams, metrics, error):
    with pytest.raises(error, match="Expected"):
        write_hparams(tmp_path, hparams, metrics)


# === What monitoring runs, and what it costs ===
def _digits(variant: str = "none", **sections) -> Recipe:
    return Recipe(
        "monitoring",
        variants=(variant,),
        data=DataConfig("digits", batch_size=64, train_size=256),
        training=sections.pop("training", TrainingConfig(epochs=2)),
        **sections,
    )


@pytest.mark.parametrize(
    ("variant", "sections", "every"),
    [
        ("none", {}, None),  # the default: a clean selection never reads it
        ("none", {"monitor": MonitorConfig(robust_every=3)}, 3),
        ("none@pgd", {"monitor": MonitorConfig(robust_every=3)}, 1),  # selects by it
        ("none", {"training": TrainingConfig(epochs=2, select="best_robust")}, 1),
        ("none", {"objective": "robust"}, 1),  # the best variant is picked by it
    ],
)
def test_validation_pgd_runs_every_epoch_only_where_something_reads_it(
    variant, sections, every, tmp_path
):
    recipe = _digits(variant, **sections)
    splits = experiment.load_splits(recipe)
    loop = experiment.loop_of(recipe, variant)
    callbacks = experiment.training_callbacks(
        recipe, loop, 2, splits, history_file=tmp_path / "h.csv"
    )
    robust = [c for c in callbacks if isinstance(c, RobustAccuracy)]
    assert [c.every for c in robust] == ([] if every is None else [every])
    assert experiment.val_pgd_every(recipe, type(loop)) == (every or 0)
    tuned = experiment.training_callbacks(  # the tuner, scoring trials by validation PGD
        recipe, loop, 2, splits, history_file=tmp_path / "t.csv", robust_every=1
    )
    assert [c.every for c in tuned if isinstance(c, RobustAccuracy)] == [1]


def test_validation_pgd_every_k_epochs_measures_those_and_the_last_and_counts_its_seconds():
    x, y = _data()
    model = tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    robust = RobustAccuracy(x, y, eps=0.1, steps=2, every=2)
    history = model.fit(
        x, y, validation_data=(x, y), batch_size=4, epochs=5, verbose=0, callbacks=[robust]
    )
    measured = [math.isfinite(v) for v in history.history["val_pgd_accuracy"]]
    assert measured == [False, True, False, True, True]  # epochs 2, 4 and the last, 5
    assert measured == [math.isfinite(v) for v in history.history["val_clean_pgd_accuracy"]]
    assert robust.seconds > 0
    assert experiment.monitor_seconds([robust]) == {"val_pgd": round(robust.seconds, 1)}
    with pytest.raises(ValueError, match="every >= 1"):
        RobustAccuracy(x, y, eps=0.1, every=0)


def test_the_image_logger_counts_its_seconds(tmp_path):
    model = tiny_model([ReconTask()])
    model.compile(optimizer="sgd")
    x, y = _data()
    logger = ImageLogger(tmp_path, x, y, n=2, every=1, eps=0.1, steps=1)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[logger])
    assert logger.seconds > 0
    assert list(experiment.monitor_seconds([logger])) == ["images"]


def test_validation_pgd_and_the_panels_share_one_compiled_attack(tmp_path):
    model = tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data()
    attackers = SharedAttacker()
    robust = RobustAccuracy(x, y, eps=0.1, steps=2, attackers=attackers)
    logger = ImageLogger(tmp_path, x, y, n=2, eps=0.1, steps=2, attackers=attackers)
    model.fit(
        x, y, validation_data=(x, y), batch_size=4, epochs=2, verbose=0, callbacks=[robust, logger]
    )
    counts = attackers(model).tracing_counts()
    assert [n for name, n in counts.items() if name.startswith("pgd")] == [1]  # not 1 each
    shared = image_panels(model, x[:2], y[:2], attack=PGD(attackers(model), steps=2), eps=0.1)
    own = image_panels(model, x[:2], y[:2], attack=PGD(model, steps=2), eps=0.1)  # a fresh trace
    for tag in ("adversarial", "perturbation"):
        np.testing.assert_array_equal(shared[tag], own[tag])


def test_the_runners_monitors_share_their_attacker(tmp_path):
    recipe = _digits("none@pgd")
    splits = experiment.load_splits(recipe)
    loop = experiment.loop_of(recipe, "none@pgd")
    callbacks = experiment.training_callbacks(
        recipe, loop, 2, splits, history_file=tmp_path / "h.csv", log_dir=tmp_path / "tb"
    )
    monitors = [c for c in callbacks if isinstance(c, (RobustAccuracy, ImageLogger))]
    assert len(monitors) == 2 and monitors[0]._attackers is monitors[1]._attackers
