"""Seeing training in TensorBoard: the learning rate, what the heads produce, heat maps, hparams.

Keras' own `keras.callbacks.TensorBoard` already writes the epoch scalars, the learning rate
included (`epoch_learning_rate`, evaluated at the current step for a schedule). This module adds
what it cannot know about:

- `LearningRateLogger` puts the same `learning_rate` into the epoch logs, so `History`, the CSV
  log and `train.json` have it too (Keras' TensorBoard callback only writes it to TensorBoard).
- `ImageLogger` shows a fixed batch of validation images through the model: the inputs, each
  image-shaped head against its target, and adversarial examples with their perturbation.
- `write_heatmap` and `write_hparams` write a finished variant's Fourier heat map and its
  hyperparameters with the final metrics (TensorBoard's HParams dashboard).

Every writer takes a log directory and writes only there; none leaves a default writer behind.
The caller chooses the directory (in a multi-worker job only the chief passes a real one).
"""

from __future__ import annotations

import contextlib
import io
import numbers
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfaux.attacks.fast_gradient import FGSM
from tfaux.attacks.projected_gradient import PGD
from tfaux.attacks.protocol import Attack
from tfaux.attacks.threat_model import check_eps
from tfaux.data.pipeline import labels_of
from tfaux.evaluate.fourier_heatmap import heatmap_figure
from tfaux.models.aux_model import PRIMARY
from tfaux.tasks.fourier import fourier_target
from tfaux.training.callbacks import SharedAttacker, TimedMonitor

IMAGES_DIR = "images"
HEATMAP_TAG = "fourier_heatmap"
_HPARAM_TYPES = (bool, int, float, str)


# === Learning rate ===
def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The rate the optimizer applies now: a schedule is evaluated at `optimizer.iterations`."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class LearningRateLogger(keras.callbacks.Callback):
    """Adds `learning_rate` to the epoch logs (History, CSVLogger, later callbacks).

    `ReduceLROnPlateau` and `LearningRateScheduler` already write it (the rate used during the
    epoch, before a reduction); then their value is kept, so the logs never disagree with them
    whatever the callback order. With a schedule (CosineDecay, warmup) nothing else writes it.

    Keras' TensorBoard callback plots `epoch_learning_rate` on its own, read from the optimizer
    when *it* runs: place it before `ReduceLROnPlateau`, or a reduction shows one epoch early.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.setdefault("learning_rate", current_learning_rate(self.model.optimizer))


# === Images ===
def image_panels(
    model: keras.Model,
    images,
    labels,
    *,
    attack: Attack | None = None,
    eps: float = 0.1,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The pictures `ImageLogger` writes, as float32 arrays (N, H, width, C) in [0, 1].

    Keys: "inputs"; "recon" (input | reconstruction) when the model has a "recon" output;
    "fourier/log_magnitude" and "fourier/phase" (target | prediction, one channel each) with a
    "fourier" output; "denoise" (input | output) with a "denoise" output; "adversarial" and
    "perturbation" (0.5 + δ/(2ε): mid-gray is no change, black/white ∓ε) with an `attack`,
    plus "denoise/adversarial" (adversarial input | its denoised version) when both apply.

    Args:
        model: a dict-output model ("logits" and image-shaped heads) or a plain classifier.
        images: (N, H, W, C) floats in [0, 1], C = 1 or 3.
        labels: (N,) integer labels (or a dict with "label"); the attack uses the true labels.
        attack: the attack on the model's primary logits, e.g. `PGD(model, steps=10)` (built
            once and reused: compiled once); None for no adversarial panels.
        eps: the attack's budget.
        seed: seed of the attack's random start.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    outputs = _outputs(model, x)
    panels = {"inputs": x}
    if "recon" in outputs:
        panels["recon"] = _side_by_side(x, _clip(outputs["recon"]))
    if "fourier" in outputs:
        target, prediction = fourier_target(x), tf.cast(outputs["fourier"], tf.float32)
        for channel, name in enumerate(("log_magnitude", "phase")):
            panels[f"fourier/{name}"] = _scaled_pair(target[..., channel], prediction[..., channel])
    if "denoise" in outputs:
        panels["denoise"] = _side_by_side(x, _clip(outputs["denoise"]))
    if attack is not None:
        x_adv = attack(x, labels_of(labels), eps=eps, seed=seed)
        panels["adversarial"] = x_adv
        # ε = 0 is a legal (if pointless) budget: everything is mid-gray then.
        scale = 0.5 / eps if eps > 0 else 0.0
        panels["perturbation"] = _clip(0.5 + (x_adv - x) * scale)
        if "denoise" in outputs:
            denoised = _clip(_outputs(model, x_adv)["denoise"])
            panels["denoise/adversarial"] = _side_by_side(x_adv, denoised)
    return {tag: np.asarray(panel, np.float32) for tag, panel in panels.items()}


class ImageLogger(TimedMonitor):
    """Writes `image_panels` of a fixed validation batch to `<log_dir>/images` every few epochs.

    Images are written after epochs `every - 1`, `2·every - 1`, ... and after the last epoch
    (also when early stopping ends training), at step = epoch, like Keras' epoch scalars.

    Args:
        log_dir: the run's TensorBoard directory (the one given to `keras.callbacks.TensorBoard`).
        images: validation images (N, H, W, C) in [0, 1], C = 1 or 3; the first `n` are shown.
        labels: their integer labels (or a dict with "label"), for the attack.
        n: how many images to show.
        every: write every `every` epochs.
        eps: L∞ budget of the adversarial examples; None for no adversarial panels.
        steps: PGD steps (random start, α = 2.5·ε/steps); 0 for FGSM.
        seed: seed of PGD's random start (the same start every epoch, so epochs compare).
        attackers: a `SharedAttacker` of the fit's monitors (`RobustAccuracy`'s), so their
            PGD is traced once; default its own.

    Example:
        callbacks = [keras.callbacks.TensorBoard(log_dir), ImageLogger(log_dir, x_val, y_val)]
    """

    monitor_name = "images"

    def __init__(
        self,
        log_dir: str | os.PathLike,
        images,
        labels,
        *,
        n: int = 8,
        every: int = 1,
        eps: float | None = 0.1,
        steps: int = 10,
        seed: int = 0,
        attackers: SharedAttacker | None = None,
    ):
        super().__init__()
        if not str(log_dir):
            raise ValueError(f"Expected a log directory. Received: log_dir={log_dir!r}")
        images = np.asarray(images, np.float32)
        labels = np.asarray(labels_of(labels))
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                f"Expected images of shape (N, H, W, C), C = 1 or 3. Received: {images.shape}"
            )
        if images.size and (images.min() < 0.0 or images.max() > 1.0):
            raise ValueError(
                f"Expected images in [0, 1]. Received: values in [{images.min()}, {images.max()}]"
            )
        if labels.ndim == 2:  # one-hot
            labels = np.argmax(labels, axis=-1)
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"Expected one label per image. Received: images {images.shape}, "
                f"labels {labels.shape}"
            )
        if not 1 <= n <= len(images):
            raise ValueError(f"Expected 1 <= n <= {len(images)} (the images). Received: n={n}")
        if every < 1:
            raise ValueError(f"Expected every >= 1. Received: every={every}")
        if steps < 0:
            raise ValueError(f"Expected steps >= 0 (0: FGSM). Received: steps={steps}")
        self.log_dir = Path(log_dir)
        self.images, self.labels = images[:n], labels[:n]
        self.every, self.seed = int(every), int(seed)
        self.eps = None if eps is None else check_eps(eps)
        self.steps = steps
        self._attackers = attackers or SharedAttacker()
        self._writer = self._attack = None
        self._epoch = self._written = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        with self.timed():
            self._writer = tf.summary.create_file_writer(str(self.log_dir / IMAGES_DIR))
        self._attack = None  # one compiled attack for the whole training, shared with the others
        if self.eps is not None:
            attacked = self._attackers(self.model)
            self._attack = PGD(attacked, steps=self.steps) if self.steps else FGSM(attacked)
        self._epoch = self._written = None

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch
        if (epoch + 1) % self.every == 0:
            self._write(epoch)

    def on_train_end(self, logs=None):
        if self._epoch is not None and self._written != self._epoch:
            self._write(self._epoch)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _write(self, epoch: int) -> None:
        with self.timed():
            self._write_panels(epoch)

    def _write_panels(self, epoch: int) -> None:
        panels = image_panels(
            self.model,
            self.images,
            self.labels,
            attack=self._attack,
            eps=self.eps,
            seed=self.seed,
        )
        with self._writer.as_default(step=epoch):
            for tag, panel in panels.items():
                tf.summary.image(tag, panel, max_outputs=len(panel))
        self._writer.flush()
        self._written = epoch


# === Heat map and hyperparameters ===
def write_heatmap(
    log_dir: str | os.PathLike, heatmap, step: int = 0, *, title: str | None = None
) -> None:
    """Writes a Fourier heat map, drawn like `heatmap_figure` (with its colorbar), as the image
    summary `fourier_heatmap` in `log_dir`.

    Args:
        log_dir: the run's TensorBoard directory.
        heatmap: an (H, W) accuracy map from `fourier_heatmap`.
        step: the summary step.
        title: figure title, e.g. the dataset and ε.
    """
    heatmap = np.asarray(heatmap, np.float64)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"Expected a 2-D heat map. Received shape: {heatmap.shape}")
    fig = heatmap_figure({"accuracy under Fourier-basis noise": heatmap}, title=title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    image = tf.image.decode_png(buffer.getvalue(), channels=3)
    with _file_writer(log_dir, step):
        tf.summary.image(HEATMAP_TAG, image[None], max_outputs=1)


def write_hparams(
    log_dir: str | os.PathLike,
    hparams: Mapping[str, bool | int | float | str],
    metrics: Mapping[str, float],
    *,
    step: int = 0,
    trial_id: str | None = None,
) -> None:
    """Writes one HParams record (a trial or a variant of a run) and its final metric scalars.

    TensorBoard's HParams dashboard shows one row per directory holding a record, with these
    metrics and the scalars of its subdirectories (Keras' `train/` and `validation/`). Flatten
    structured settings into scalars: λ per task as "lambda_recon", "lambda_fourier", ...

    Args:
        log_dir: the trial's or variant's TensorBoard directory.
        hparams: name → bool, int, float or str (numpy scalars are accepted).
        metrics: name → final value, e.g. {"test_accuracy": 0.98, "pgd_accuracy": 0.61}.
        step: step of the metric scalars.
        trial_id: groups repeated trials of the same settings; default a hash of `hparams`.
    """
    values = {}
    for name, value in hparams.items():
        value = value.item() if isinstance(value, np.generic) else value
        if not isinstance(name, str) or not isinstance(value, _HPARAM_TYPES):
            raise TypeError(
                "Expected hparams of str name → bool, int, float or str. Received: "
                f"{name!r}: {value!r}"
            )
        values[name] = value
    if not values:
        raise ValueError("Expected at least one hyperparameter. Received: hparams={}")
    scalars = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not isinstance(value, numbers.Real):
            raise TypeError(f"Expected metrics of str name → number. Received: {name!r}: {value!r}")
        scalars[name] = float(value)
    with _file_writer(log_dir, step):
        hp.hparams(values, trial_id=trial_id)
        for name, value in scalars.items():
            tf.summary.scalar(name, value)


# === Helpers ===
@contextlib.contextmanager
def _file_writer(log_dir: str | os.PathLike, step: int) -> Iterator[None]:
    """A writer to `log_dir` that is the default only inside the block, closed after it."""
    if not str(log_dir):
        raise ValueError(f"Expected a log directory. Received: log_dir={log_dir!r}")
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default(step=step):
            yield
    finally:
        writer.close()


def _outputs(model: keras.Model, x: tf.Tensor) -> dict:
    outputs = model(x, training=False)
    return outputs if isinstance(outputs, dict) else {PRIMARY: outputs}


def _clip(x) -> tf.Tensor:
    return tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 1.0)


def _side_by_side(left: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    return tf.concat([left, right], axis=2)


def _scaled_pair(target: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
    """(N, H, W) target | prediction as (N, H, 2W, 1), both on the target's min-max scale per
    image: a prediction out of the target's range saturates instead of flattening the target."""
    low = tf.reduce_min(target, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(target, axis=[1, 2], keepdims=True)
    span = tf.maximum(high - low, 1e-6)
    pair = _side_by_side((target - low) / span, (prediction - low) / span)
    return _clip(pair)[..., None]
