"""SPSA (Uesato et al. 2018): a gradient-free attack, cleverhans' own, fixed for Keras 3 and seeded.

cleverhans' optimizer passes `lr=` to Keras 3's Adam, which rejects it; ours sets the same
hyperparameters without that constructor. cleverhans draws its start and its directions with
stateful ops whose seeds are fixed when traced; ours draws the same distributions statelessly from
the call's seed, so a seed gives the same images on every call.
"""

from __future__ import annotations

import contextlib
import logging

import tensorflow as tf
from cleverhans.tf2.attacks.spsa import SPSAAdam, margin_logit_loss, projected_optimization

from tfaux.attacks.protocol import (
    Attack,
    AttackedModel,
    check_settings,
    compiled,
    labelled,
    register_attack,
    shape_key,
)
from tfaux.attacks.threat_model import CLIP_MAX, CLIP_MIN


@register_attack
class SPSA(Attack):
    """SPSA under an L∞ budget: Adam on a gradient estimated from random ±δ directions, one image
    at a time; it needs only the logits, so gradient masking cannot stop it.

    Args:
        model: a Keras classifier or an `AttackedModel`.
        norm: "linf" only.
        steps: Adam steps.
        samples: perturbation samples per step (even: they come in ± pairs).
        step_size: Adam's learning rate; default 0.01.

    Reference:
        Uesato et al., "Adversarial risk and the dangers of evaluating against weak attacks", 2018.
    """

    name = "spsa"
    gradient_free = True

    def __init__(
        self,
        model,
        *,
        norm: str = "linf",
        steps: int = 20,
        samples: int = 128,
        step_size: float | None = None,
    ):
        if norm != "linf":
            raise ValueError(f"Expected norm='linf' for spsa. Received: norm={norm!r}")
        check_settings(step_size, steps=steps, samples=samples)
        if samples % 2:
            raise ValueError(f"Expected an even number of SPSA samples. Received: {samples}")
        self.model = AttackedModel.of(model)
        self.norm, self.steps, self.samples, self.step_size = norm, steps, samples, step_size

    def get_config(self) -> dict:
        return {
            "norm": self.norm,
            "steps": self.steps,
            "samples": self.samples,
            "step_size": self.step_size,
        }

    @property
    def title(self) -> str:
        return f"SPSA-{self.steps}"

    def __call__(self, x, y, *, eps: float, seed: int = 0) -> tf.Tensor:
        eps = self.check_eps(eps)
        x, y = labelled(x, y)
        fn = self._function(x)
        eps, alpha = tf.constant(eps, tf.float32), tf.constant(self.step_size or 0.01)
        # cleverhans' SPSA takes one image at a time; each step evaluates `samples` copies.
        with _without_back_prop_notice():
            x_adv = [
                fn(x[i : i + 1], y[i : i + 1], eps, alpha, tf.constant([seed, i], tf.int32))
                for i in range(len(x))
            ]
        # Its random start can land a misclassified image on the true class, and its early stop
        # keeps it there (found by the robust <= clean check, issue 4).
        return self.model.unless_already_wrong(x, y, tf.concat(x_adv, 0))

    def _function(self, x):
        # cleverhans uses the step count as a Python number (`float(num_steps)`), and the sample
        # count is a shape: both key the trace; ε, α and the seed are tensors.
        def make():
            signature = [tf.TensorSpec([1, *x.shape[1:]], tf.float32), tf.TensorSpec([1], tf.int32)]
            signature += [tf.TensorSpec([], tf.float32)] * 2 + [tf.TensorSpec([2], tf.int32)]
            return compiled(self._graph(), signature)

        key = ("spsa", self.samples, self.steps, shape_key(x.shape[1:]))
        return self.model.function(key, make)

    def _graph(self):
        model_fn, samples, steps = self.model.model_fn, self.samples, self.steps

        def loss_fn(x, label):  # untargeted: push the true logit below the best other one
            logits = model_fn(x)
            return -margin_logit_loss(logits, label, nb_classes=logits.shape[-1])

        def run(x, y, eps, alpha, seed):
            optimizer = _SPSAAdam(alpha, delta=0.01, num_samples=samples, seed=seed)
            return projected_optimization(
                loss_fn, x, y, eps, steps, optimizer, CLIP_MIN, CLIP_MAX,
                early_stop_loss_threshold=0.0, project_perturbation=_SeededStart(seed),
            )  # fmt: skip

        return run


class _BackPropNotice(logging.Filter):
    """Drops TensorFlow's notice that `tf.while_loop(..., back_prop=False)` is deprecated."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("while_loop" in message and "back_prop=False is deprecated" in message)


@contextlib.contextmanager
def _without_back_prop_notice():
    """cleverhans' SPSA calls `tf.while_loop(..., back_prop=False)` twice (spsa.py: its optimizer
    and `projected_optimization`); while tracing, TensorFlow's `deprecation` module logs a notice
    for it on the "tensorflow" logger, once per process. We cannot change cleverhans' call, so
    only that message, only around SPSA's calls, is dropped: every other warning still shows."""
    logger = tf.get_logger()
    notice = _BackPropNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


class _SPSAAdam:
    """cleverhans' SPSA optimizer without its Keras 2 base class (`Adam(lr=...)` fails in Keras 3),
    and with its directions drawn from a seed.

    `projected_optimization` keeps the Adam state explicitly, so cleverhans' own methods need only
    the hyperparameters; they are borrowed unchanged but for the draw.
    """

    init_state = SPSAAdam.init_state
    _compute_gradients = SPSAAdam._compute_gradients
    _apply_gradients = SPSAAdam._apply_gradients

    def __init__(self, lr, delta=0.01, num_samples=128, seed=None):
        self.lr, self.beta_1, self.beta_2, self.epsilon = lr, 0.9, 0.999, 1e-7
        # One gradient estimate per step (cleverhans' default): the step alone seeds its draw.
        self._delta, self._num_samples, self._num_iters = delta, num_samples // 2, 1
        self._seed = tf.zeros([2], tf.int32) if seed is None else seed
        self._step = tf.constant(0.0)

    def minimize(self, loss_fn, x, optim_state):
        # Adam's step count t is the loop variable that tells `projected_optimization`'s steps
        # apart; `_get_delta` (called within) seeds that step's directions with it.
        self._step = optim_state["t"]
        return SPSAAdam.minimize(self, loss_fn, x, optim_state)

    def _get_delta(self, x, delta):
        """cleverhans' directions, ±δ per pixel with equal odds (the sign of a uniform draw), from
        the seed and the step rather than a stateful op seeded once, when traced."""
        step_seed = tf.random.experimental.stateless_fold_in(
            self._seed, tf.cast(self._step, tf.int32) + 1
        )
        shape = [self._num_samples, *x.shape[1:]]
        return delta * tf.sign(tf.random.stateless_uniform(shape, step_seed, -1.0, 1.0))


class _SeededStart:
    """cleverhans' SPSA projection (onto the L∞ ball, then [0, 1]) whose first call replaces the
    random start it is handed by a seeded draw of the same law, uniform in [−ε, ε].

    `projected_optimization` draws its start with a stateful `tf.random.uniform`, whose seed is
    fixed when traced, and projects it with `project_perturbation` before its loop: that first
    call is the start; later calls (one per step, in the loop) project the iterates.
    """

    def __init__(self, seed):
        self.seed, self.started = seed, False

    def __call__(self, perturbation, epsilon, input_image, clip_min, clip_max):
        if not self.started:
            self.started = True
            seed = tf.random.experimental.stateless_fold_in(self.seed, 0)
            shape = tf.shape(input_image)
            perturbation = tf.random.stateless_uniform(shape, seed, -epsilon, epsilon)
        perturbation = tf.clip_by_value(perturbation, -epsilon, epsilon)
        return tf.clip_by_value(input_image + perturbation, clip_min, clip_max) - input_image
