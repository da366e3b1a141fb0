"""C&W-L2 (Carlini & Wagner 2017): cleverhans' attack, untargeted, fixed for Keras 3.

cleverhans calls `optimizer.variables()` and zeroes them to reset Adam (in Keras 3 that list
holds the learning rate too) and makes the attack *targeted* whenever labels are given; we give
it an Adam whose reset spares the learning rate, and no labels (untargeted on the prediction; its
result is kept only where the prediction is the true label). Its constant c has the images' shape
instead of one value per example, which scales c by the batch size and the pixel count and fails
on colour images; see `cw_l2_attack`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf
from cleverhans.tf2.attacks.carlini_wagner_l2 import CarliniWagnerL2

from tfaux.attacks.protocol import (
    Attack,
    AttackedModel,
    check_settings,
    labelled,
    register_attack,
    shape_key,
)
from tfaux.attacks.threat_model import CLIP_MAX, CLIP_MIN


@register_attack
class CarliniWagner(Attack):
    """Untargeted C&W-L2, a minimal-distortion attack: a found image counts only within the L2
    radius ε, and only where the clean prediction is right.

    Args:
        model: a Keras classifier or an `AttackedModel`.
        steps: Adam iterations per binary-search step.
        search_steps: binary-search steps over its constant c.
        step_size: Adam's learning rate; default 0.01.

    Reference:
        Carlini & Wagner, "Towards evaluating the robustness of neural networks", 2017.
    """

    name = "cw-l2"
    norm = "l2"

    def __init__(
        self, model, *, steps: int = 200, search_steps: int = 4, step_size: float | None = None
    ):
        check_settings(step_size, steps=steps, search_steps=search_steps)
        self.model = AttackedModel.of(model)
        self.steps, self.search_steps, self.step_size = steps, search_steps, step_size

    @property
    def title(self) -> str:
        return "CW-L2"

    def get_config(self) -> dict:
        return {"steps": self.steps, "search_steps": self.search_steps, "step_size": self.step_size}

    def __call__(self, x, y, *, eps: float, seed: int = 0) -> tf.Tensor:
        """Adversarial images within the L2 radius ε, else the clean ones (C&W draws nothing:
        `seed` is unused)."""
        eps = self.check_eps(eps)
        x, y = labelled(x, y)
        # One attack object per batch shape, reused: a new one would trace its compiled gradient
        # again.
        learning_rate = self.step_size or 1e-2
        key = ("cw-l2", self.steps, self.search_steps, learning_rate, shape_key(x.shape))
        attack = self.model.function(
            key,
            lambda: cw_l2_attack(
                self.model.model_fn,
                int(x.shape[0]),
                steps=self.steps,
                search_steps=self.search_steps,
                learning_rate=learning_rate,
            ),  # fmt: skip
        )
        attack.optimizer = _Keras2Adam(learning_rate)  # a fresh Adam for each call
        x_adv = tf.convert_to_tensor(attack.attack(x.numpy()))
        # A minimal-distortion attack: it counts only within the L2 radius ε. It attacks the
        # predicted label, so on a misclassified image it may move *to* the true label; there
        # the clean image is kept (found by the robust <= clean check on the first real run).
        distance = tf.norm(tf.reshape(x_adv - x, [x.shape[0], -1]), axis=1)
        return self.model.unless_already_wrong(x, y, x_adv, keep=distance <= eps + 1e-6)


def cw_l2_attack(
    model_fn: Callable[[tf.Tensor], tf.Tensor],
    batch_size: int,
    *,
    steps: int,
    search_steps: int,
    learning_rate: float = 1e-2,
    abort_early: bool = True,
) -> CarliniWagnerL2:
    """cleverhans' untargeted C&W-L2 for batches of `batch_size` images, with its constant c kept
    at one value per example and an Adam that works under Keras 3; run it with `.attack(x)`.

    cleverhans starts c as `tf.ones(shape) * initial_const` with the images' shape [n, H, W, C]
    where its binary search wants [n]: the loss Σ c·f_i then broadcasts [n, H, W, C] against [n]
    (one-channel images: [n, H, W, n]), so every example's c is n·H·W times the intended value
    (H·W·C for a single image) and depends on the batch, the bounds' updates keep that shape,
    and colour images fail unless n is 1 or C. cleverhans multiplies its `initial_const` in, so
    ours is an object that answers that product with one value per example: from then on every
    tensor of the search is [n], as the attack intends, and its gradient is traced once.

    Args:
        model_fn: x → logits.
        batch_size: images per `.attack` chunk.
        steps: Adam iterations per binary-search step.
        search_steps: binary-search steps over c (from cleverhans' default c = 0.01, ×10 while
            an example finds no adversarial image).
        learning_rate: Adam's step size.
        abort_early: stop a search step when the batch's total loss stops falling (cleverhans'
            and Carlini's default); this is the one place where examples affect each other.

    Reference:
        Carlini & Wagner, "Towards evaluating the robustness of neural networks", 2017.
    """
    attack = _CarliniWagnerL2(
        model_fn,
        batch_size=batch_size,
        clip_min=CLIP_MIN,
        clip_max=CLIP_MAX,
        binary_search_steps=search_steps,
        max_iterations=steps,
        abort_early=abort_early,
        initial_const=_PerExampleConst(1e-2),
        learning_rate=learning_rate,
    )
    attack.optimizer = _Keras2Adam(learning_rate)
    return attack


class _CarliniWagnerL2(CarliniWagnerL2):
    """cleverhans' attack, counting its traces like our compiled functions (for
    `AttackedModel.tracing_counts`): its one compiled function is `gradient`."""

    def experimental_get_tracing_count(self) -> int:
        return self.gradient.experimental_get_tracing_count()


class _PerExampleConst:
    """C&W's initial constant c, one value per example: cleverhans computes
    `tf.ones(images.shape) * initial_const`; TensorFlow cannot convert this object, so it asks its
    `__rmul__`, which returns c for each of the n images (shape [n])."""

    def __init__(self, value: float):
        self.value = value

    def __rmul__(self, ones: tf.Tensor) -> tf.Tensor:
        return tf.fill(tf.shape(ones)[:1], tf.cast(self.value, ones.dtype))


class _Keras2Adam:
    """The two Keras 2 optimizer calls cleverhans' C&W makes, on a Keras 3 Adam."""

    def __init__(self, learning_rate: float):
        self._adam = keras.optimizers.Adam(learning_rate)

    def variables(self):
        # cleverhans zeroes these before each binary-search step to reset Adam; in Keras 3 the
        # list also holds the learning rate, which must survive the reset.
        return [v for v in self._adam.variables if v is not self._adam._learning_rate]

    def apply_gradients(self, grads_and_vars):
        self._adam.apply_gradients(grads_and_vars)
