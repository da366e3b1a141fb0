"""The attack protocol: every attack is an object bound to one model and called as
`attack(x, y, *, eps, seed)`; it declares its name, norm, steps and the report's label, and
registers itself in `ATTACKS`, so that adding an attack is one new file.

    pgd = create_attack("pgd", model, steps=20, restarts=2)
    x_adv = pgd(x, y, eps=0.1, seed=0)  # same seed, same images
    pgd.label(0.1)  # "PGD-20 ε=0.1 ×2", the report's column

Attacks see a model as an `AttackedModel`: its primary logits in inference mode, a compiled
`predict`, and one cache of compiled attack graphs that every attack object built on it shares,
so an evaluation traces each kind of attack once (PGD-k for every k, ε and restart count and BIM
share one trace). Targeted attacks (`targeted = True`: APGD-T, FAB-T) also take `target_rank`,
the class with the rank-th highest clean logit. An attack joins the robustness report by
returning its columns from `report_columns` (none by default; the report's own FGSM/PGD
methodology is built in `tfaux.evaluate.robustness`).

Example (a new attack, one file in `tfaux/attacks/` or anywhere imported before use):
    @register_attack
    class Noise(Attack):
        name, norm, steps = "noise", "linf", 1

        def __init__(self, model):
            self.model = AttackedModel.of(model)

        def __call__(self, x, y, *, eps, seed=0):
            eps = self.check_eps(eps)
            x = tf.convert_to_tensor(x, tf.float32)
            return clip(x + random_in_ball(tf.shape(x), "linf", eps, tf.constant([seed, 0])))
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import keras
import tensorflow as tf

from tfaux.attacks.threat_model import check_eps
from tfaux.registry import Registry

if TYPE_CHECKING:
    from tfaux.config import EvalConfig


# === A model as attacks see it ===
def logits_fn(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """`x -> logits` in inference mode, for a dict-output or a plain classifier."""

    def fn(x):
        outputs = model(x, training=False)
        return outputs["logits"] if isinstance(outputs, dict) else outputs

    return fn


def with_gradient_path(model_fn):
    """A model whose logits do not depend differentiably on x (stop_gradient, rounding) gets a zero
    gradient instead of None: cleverhans would crash on None, and the sanity checks must see it."""
    return lambda x: model_fn(x) + 0.0 * tf.reduce_sum(x)


def model_function(model, *, gradient_path: bool = True) -> Callable[[tf.Tensor], tf.Tensor]:
    """x → logits of what an attack was given: a Keras classifier (its primary logits, with a
    gradient path if `gradient_path`), an `AttackedModel`, or such a function already."""
    if isinstance(model, AttackedModel):
        return model.model_fn
    if isinstance(model, keras.Model):
        fn = logits_fn(model)
        return with_gradient_path(fn) if gradient_path else fn
    if callable(model):
        return model
    raise TypeError(f"Expected a Keras model or a function x -> logits. Received: {model!r}")


def compiled(fn, signature) -> tf.types.experimental.PolymorphicFunction:
    """`tf.function(fn)` whose traces TensorFlow's retracing warning counts on their own.

    The warning counts the traces of every function with the same Python code together, so a
    run creating attacks per model (each variant, each epoch's robust-accuracy callback, the
    surrogate) warned "5 out of the last 5 calls ... triggered retracing", though each function
    traced once. A `functools.partial` has no `__code__`, so TensorFlow keys it by the function
    object itself: a function that really retraces still warns.
    """
    return tf.function(functools.partial(fn), input_signature=signature)


def shape_key(shape) -> str:
    """An image (or batch) shape as a cache key and a tracing-count name: "16x16x1"."""
    return "x".join(map(str, shape))


def check_settings(step_size: float | None = None, **counts) -> None:
    """Each count (`steps`, `restarts`, `samples`, ...) an integer >= 1, a step size > 0 or None:
    what every attack's constructor checks first."""
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"Expected an integer {key} >= 1. Received: {key}={value!r}")
    if step_size is not None and not step_size > 0:
        raise ValueError(f"Expected step_size > 0. Received: step_size={step_size}")


def labelled(x, y) -> tuple[tf.Tensor, tf.Tensor]:
    """Images as float32 and labels as int32 (one label dtype, one trace), one label per image."""
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"Expected as many labels as images. Received: x {x.shape}, y {y.shape}")
    return x, tf.cast(y, tf.int32)


class AttackedModel:
    """A model as attacks see it: its primary logits in inference mode, a compiled `predict`, and
    the compiled graphs of every attack built on it, each traced once per kind and image shape.

    Args:
        model: a dict-output model (uses "logits") or a plain classifier.

    Example:
        attacked = AttackedModel(model)
        pgd7, pgd20 = PGD(attacked, steps=7), PGD(attacked, steps=20)  # one trace for both
        attacked.tracing_counts()  # {"pgd linf 28x28x1": 1, ...}
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.model_fn = with_gradient_path(logits_fn(model))
        self._compiled: dict[tuple, Any] = {}

    @classmethod
    def of(cls, model) -> AttackedModel:
        """`model` itself if it is one, else a new one (with its own traces)."""
        return model if isinstance(model, cls) else cls(model)

    def predict(self, x) -> tf.Tensor:
        """Logits in inference mode, compiled."""
        x = tf.convert_to_tensor(x, tf.float32)
        images = tf.TensorSpec([None, *x.shape[1:]], tf.float32)
        key = ("predict", None, shape_key(x.shape[1:]))
        return self.function(key, lambda: compiled(self.model_fn, [images]))(x)

    def function(self, key: tuple, make: Callable[[], Any]):
        """The compiled function cached under `key` (kind, settings that shape the graph, image
        shape), made by `make()` on first use. Each value counts its own traces."""
        if key not in self._compiled:
            self._compiled[key] = make()
        return self._compiled[key]

    def tracing_counts(self) -> dict[str, int]:
        """How often each compiled attack (and `predict`) was traced: once per image shape (C&W:
        per batch shape); more is a retrace, which TensorFlow warns about."""
        return {
            " ".join(str(part) for part in key if part is not None): (
                fn.experimental_get_tracing_count()
            )
            for key, fn in self._compiled.items()
        }

    def unless_already_wrong(self, x, y, x_adv, keep=True) -> tf.Tensor:
        """`x_adv` where the clean prediction is right (and `keep`), else the clean image: an
        optimizing attack must not move a misclassified image onto its true class."""
        right = tf.argmax(self.predict(x), -1, output_type=y.dtype) == y
        return tf.where(tf.reshape(right & keep, [-1, 1, 1, 1]), x_adv, x)


# === The protocol ===
class Attack:
    """An attack on one model's primary logits: `attack(x, y, *, eps, seed)` → adversarial images.

    Subclasses set `name` (the registry's name), `norm` ("linf" or "l2") and `steps`, implement
    `__call__` and `get_config` (the constructor's settings, for `replace`), and may override
    `title` (the label without the budget), `check_eps` and `report_columns`.

    Attributes:
        model: what it attacks (an `AttackedModel`, or for APGD, FAB and Square what they were
            given); `replace` builds on it.
        name: the registered name ("pgd", "apgd-t").
        norm: the budget's norm, "linf" or "l2".
        steps: iterations (queries for a score-based attack).
        targeted: whether a call also takes `target_rank` (2 = the runner-up class).
        gradient_free: whether the attack needs only the logits (no gradients), so gradient
            masking cannot stop it.
    """

    name: ClassVar[str] = ""
    targeted: ClassVar[bool] = False
    gradient_free: ClassVar[bool] = False
    norm: str = "linf"
    steps: int = 1

    def __call__(self, x, y, *, eps: float, seed: int = 0) -> tf.Tensor:
        """Adversarial images for `x` with true labels `y` within ε; same `seed`, same images."""
        raise NotImplementedError

    @property
    def title(self) -> str:
        """The label without the budget: "PGD-20", "BIM-10 L2"."""
        return f"{self.name.upper()}-{self.steps}" + (" L2" if self.norm == "l2" else "")

    def label(self, eps: float) -> str:
        """The report's name for this attack at ε: "PGD-20 ε=0.1", "FGSM ε=0.3"."""
        return f"{self.title} ε={eps:g}"

    def check_eps(self, eps: float) -> float:
        """Validates a budget for this attack (before any work), returns it as a float."""
        return check_eps(eps, self.norm)

    def get_config(self) -> dict:
        """The settings this attack was built with (its constructor's keywords)."""
        raise NotImplementedError

    def replace(self, **changes) -> Attack:
        """This attack with some settings changed (`steps=40`), or on another `model=`."""
        model = changes.pop("model", self.model)
        return type(self)(model, **{**self.get_config(), **changes})

    @classmethod
    def report_columns(cls, model: AttackedModel, config: EvalConfig) -> list[ReportColumn]:
        """The columns this attack adds to the robustness report of `model` under `config`;
        none unless an attack says so."""
        return []

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({settings})"


@dataclass(frozen=True)
class ReportColumn:
    """One column of the robustness report: `attack` at `eps` on the first `examples` test images
    (None: all of them), named `attack.label(eps)`."""

    attack: Attack
    eps: float
    examples: int | None = None


# === The registry ===
ATTACKS: Registry[type[Attack]] = Registry("attack", packages=("tfaux.attacks",))


def register_attack(cls: type[Attack] | None = None, *, name: str | None = None):
    """Registers an attack class under its `name` (or `name=`).

    Example:
        @register_attack
        class Noise(Attack):
            name = "noise"
            ...
    """
    return ATTACKS.register(cls, name=name)


def list_attacks(pattern: str = "*") -> list[str]:
    """The registered attack names matching a shell-style `pattern`, sorted."""
    return ATTACKS.names(pattern)


def create_attack(name: str, model, **settings) -> Attack:
    """The attack registered as `name`, on `model` (a Keras classifier or an `AttackedModel`),
    with `settings` for its constructor; an unknown name suggests the closest ones."""
    return ATTACKS.get(name)(model, **settings)
