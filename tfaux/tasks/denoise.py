"""Denoising autoencoder front end (seed 004 §4.1): an image-to-image network before the classifier.

The classifier sees the denoiser's output, and the denoiser learns to reproduce the original,
pre-augmentation image from the perturbed input (geometric augmentation, then FGSM from the
current model: the loop `fgsm` with augmentation "geometric"). It stays in the deployed model:
it is part of the classifier's input path. Seed 004 found it "learned a noisy identity";
`tfaux.evaluate.denoiser.denoiser_report` measures whether ours does.
"""

from __future__ import annotations

import keras
from keras import layers

from tfaux.tasks.base import AuxTask, register_task


@register_task
class DenoiseTask(AuxTask):
    """A small convolutional autoencoder (two stride-2 downsamplings and back, sigmoid output
    in [0, 1]) trained with pixel-wise MSE against the original image.

    Args:
        weight: λ of the reconstruction term.
        filters: channels of the first level (doubled at the bottleneck).
    """

    name = "denoise"
    front = True
    target_originals = True
    reports = True

    def __init__(self, weight: float = 0.01, filters: int = 32):
        super().__init__(weight)
        if filters < 1:
            raise ValueError(f"Expected filters >= 1. Received: filters={filters}")
        self.filters = int(filters)
        self._mse = keras.losses.MeanSquaredError()

    def front_end(self, images):
        height, width, channels = images.shape[1:]
        x = images
        for i, filters in enumerate((self.filters, 2 * self.filters), start=1):
            x = layers.Conv2D(filters, 3, 2, "same", activation="relu", name=f"denoise_down{i}")(x)
        for i, filters in enumerate((self.filters, self.filters), start=1):
            x = layers.Conv2DTranspose(
                filters, 3, 2, "same", activation="relu", name=f"denoise_up{i}"
            )(x)
        x = layers.Conv2D(channels, 3, padding="same", name="denoise_conv")(x)
        if (x.shape[1], x.shape[2]) != (height, width):  # odd sizes round up on the way down
            x = layers.CenterCrop(height, width, name="denoise_crop")(x)
        return layers.Activation("sigmoid", name=self.name, dtype="float32")(x)  # float32 loss

    def target(self, x, y):
        return x

    def loss(self, target, prediction):
        return self._mse(target, prediction)

    def report(self, model, x, y, *, recipe, flip: bool) -> dict:
        """Whether it denoises or passes the perturbation through (`denoiser_report`), on the
        first `evaluation.denoiser_examples` images, perturbed at the training ε."""
        from tfaux.evaluate.denoiser import denoiser_report  # evaluation imports the models

        n = min(recipe.evaluation.denoiser_examples, len(x))
        report = denoiser_report(
            model, x[:n], y[:n], eps=recipe.adversarial.eps, seed=recipe.training.seed, flip=flip
        )
        return {"denoiser": report}

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters}
