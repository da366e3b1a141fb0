"""What the gradient attacks (FGSM, PGD, BIM, MIM) share: one compiled graph per kind, norm and
image shape on the attacked model, with the budget and every setting as tensors.

ε, step size, step count, restarts, random start, momentum decay and seed are tensors, and the
input signature leaves the batch size open, so an accuracy-vs-ε sweep, PGD-k for several k, a
short last batch or a prefix of the test set reuses the trace (`AttackedModel.tracing_counts()`
shows it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import tensorflow as tf

from tfaux.attacks.protocol import (
    Attack,
    AttackedModel,
    check_settings,
    compiled,
    labelled,
    shape_key,
)
from tfaux.attacks.threat_model import NORMS
from tfaux.names import unknown_name

# What a compiled gradient attack takes besides images and labels; each attack reads what it needs.
_PARAMETERS = {
    "eps": tf.TensorSpec([], tf.float32),
    "alpha": tf.TensorSpec([], tf.float32),
    "steps": tf.TensorSpec([], tf.int32),
    "restarts": tf.TensorSpec([], tf.int32),
    "random_start": tf.TensorSpec([], tf.bool),
    "decay": tf.TensorSpec([], tf.float32),
    "seed": tf.TensorSpec([], tf.int32),
}


class GradientAttack(Attack):
    """An attack whose whole run is one compiled graph `graph(model_fn, norm)(x, y, parameters)`.

    Subclasses set `name`, `kind` (the graph they run: BIM runs PGD's) and `graph`; the
    graph's other inputs come from the attack's `restarts`, `random_start` and `decay`, neutral
    (1, False, 1.0) where it has none.

    Args:
        model: a Keras classifier or an `AttackedModel` (shared: one trace per kind).
        norm: "linf" or "l2".
        steps: iterations.
        step_size: α per step; None: the attack's default (`alpha`).
    """

    kind: ClassVar[str]

    def __init__(self, model, *, norm: str = "linf", steps: int = 1, step_size=None):
        if norm not in NORMS:
            raise unknown_name("norm", norm, NORMS)
        check_settings(step_size, steps=steps)
        self.model = AttackedModel.of(model)
        self.norm, self.steps, self.step_size = norm, steps, step_size

    def get_config(self) -> dict:
        return {"norm": self.norm, "steps": self.steps, "step_size": self.step_size}

    def alpha(self, eps: float) -> float:
        """The step size used at budget ε: the set one, else ε/k (BIM's and MIM's)."""
        return self.step_size if self.step_size is not None else eps / self.steps

    def __call__(self, x, y, *, eps: float, seed: int = 0) -> tf.Tensor:
        eps = self.check_eps(eps)
        x, y = labelled(x, y)
        return self._function(x)(x, y, self.parameters(eps, seed))

    def parameters(self, eps: float, seed: int) -> dict:
        """The graph's tensor inputs at ε with `seed`."""
        values = {
            "eps": eps,
            "alpha": self.alpha(eps),
            "steps": self.steps,
            "restarts": getattr(self, "restarts", 1),
            "random_start": getattr(self, "random_start", False),
            "decay": getattr(self, "decay", 1.0),
            "seed": seed,
        }
        return {k: tf.constant(v, _PARAMETERS[k].dtype) for k, v in values.items()}

    @staticmethod
    def graph(model_fn: Callable, norm: str) -> Callable:
        """`(x, y, parameters) -> x_adv`, to be traced."""
        raise NotImplementedError

    def _function(self, x):
        """The compiled graph for images shaped like `x` and any batch size, shared by every
        attack of this kind and norm on the model; traced on its first call."""

        def make():
            images = tf.TensorSpec([None, *x.shape[1:]], tf.float32)
            labels = tf.TensorSpec([None], tf.int32)
            graph = self.graph(self.model.model_fn, self.norm)
            return compiled(graph, [images, labels, _PARAMETERS])

        return self.model.function((self.kind, self.norm, shape_key(x.shape[1:])), make)
