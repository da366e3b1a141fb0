"""One interface over cleverhans' TF2 attacks, compiled, always on the primary logits.

Every attack here is a *single-task* attack: it maximizes the loss of the `logits` output only,
with the true labels (model predictions as labels would let "label leaking" inflate robust
accuracy), BatchNorm in inference mode, and pixels clipped to [0, 1].

    attacker = Attacker(model)
    x_adv = attacker(AttackSpec("pgd", eps=0.1, steps=20, restarts=2), x, y, seed=0)

Each attack kind is traced once per model and image shape and reused for a whole evaluation: its
input signature leaves the batch size open (a short last batch or a prefix of the test set is no
new shape), and ε, step size, step count, restarts, random start, momentum decay and seed are
tensors (an accuracy-vs-ε sweep or PGD-k for several k does not retrace). `tracing_counts()`
shows it. Where cleverhans is slow or broken under Keras 3, the fix is a thin wrapper here:
- PGD: cleverhans' `projected_gradient_descent` is a Python loop, unrolled k times in a graph
  and retraced per ε; ours loops in `tf.while_loop` over cleverhans' own FGM step and `clip_eta`,
  adds stateless random starts (reproducible with a seed) and restarts keeping the worst case.
  BIM is this PGD without a random start, which is what cleverhans' `basic_iterative_method` is
  (its Python `assert eps_iter <= eps` cannot take tensors).
- MIM: cleverhans' `momentum_iterative_method` is a Python loop too; ours is the same step on
  cleverhans' helpers in a `tf.while_loop` (tests compare both to 1e-6).
- C&W-L2: cleverhans calls `optimizer.variables()` and zeroes them to reset Adam (in Keras 3 that
  list holds the learning rate too) and makes the attack *targeted* whenever labels are given; we
  give it an Adam whose reset spares the learning rate, and no labels (untargeted on the
  prediction; its result is kept only where the prediction is the true label). Its constant c
  has the images' shape instead of one value per example, which scales c by the batch size and
  the pixel count and fails on colour images; see `cw_l2_attack`.
- SPSA: cleverhans' optimizer passes `lr=` to Keras 3's Adam, which rejects it; ours sets the same
  hyperparameters without that constructor. cleverhans draws its start and its directions with
  stateful ops whose seeds are fixed when traced; ours draws the same distributions statelessly
  from the call's seed, so a seed gives the same images on every call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.carlini_wagner_l2 import CarliniWagnerL2
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.attacks.spsa import SPSAAdam, margin_logit_loss, projected_optimization
from cleverhans.tf2.utils import clip_eta, compute_gradient, optimize_linear

from tfaux.names import unknown_name

CLIP_MIN, CLIP_MAX = 0.0, 1.0
NORMS = {"linf": np.inf, "l2": 2}
ATTACKS = ("fgsm", "pgd", "bim", "mim", "cw_l2", "spsa")
_DEFAULT_STEPS = {"fgsm": 1, "pgd": 20, "bim": 10, "mim": 10, "cw_l2": 200, "spsa": 20}


def logits_fn(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """`x -> logits` in inference mode, for a dict-output or a plain classifier."""

    def fn(x):
        outputs = model(x, training=False)
        return outputs["logits"] if isinstance(outputs, dict) else outputs

    return fn


def check_eps(eps: float, norm: str = "linf") -> float:
    """Validates an attack budget ε in pixel units of [0, 1] images."""
    if norm == "linf" and not 0.0 <= eps <= 1.0:
        raise ValueError(f"Expected 0 <= eps <= 1 (pixels are in [0, 1]). Received: eps={eps}")
    if not eps >= 0.0:
        raise ValueError(f"Expected eps >= 0. Received: eps={eps}")
    return float(eps)


@dataclass(frozen=True)
class AttackSpec:
    """What to attack with: name, budget and strength. Defaults follow each attack's paper.

    Args:
        name: one of `ATTACKS`.
        eps: the budget ε in pixel units (L∞ or L2 by `norm`; for C&W-L2 the L2 radius within
            which a found adversarial example counts).
        norm: "linf" or "l2" (PGD, FGSM, BIM, MIM; seed 001's Table 8 runs BIM and MIM in
            both); SPSA is L∞, C&W is L2.
        steps: iterations (PGD 20, BIM/MIM 10, C&W 200 per binary-search step, SPSA 20).
        step_size: α per step; default 2.5·ε/steps for PGD (Madry et al.), ε/steps for BIM/MIM.
        restarts: PGD runs from independent random starts; the worst case per example is kept.
        random_start: PGD starts uniformly inside the ε-ball (Madry et al.); BIM never does.
        decay: MIM's momentum decay μ.
        search_steps: C&W binary-search steps over its constant c.
        samples: SPSA's perturbation samples per step.
    """

    name: str
    eps: float
    norm: str = "linf"
    steps: int | None = None
    step_size: float | None = None
    restarts: int = 1
    random_start: bool = True
    decay: float = 1.0
    search_steps: int = 4
    samples: int = 128

    def __post_init__(self):
        if self.name not in ATTACKS:
            raise unknown_name("attack", self.name, ATTACKS)
        if self.norm not in NORMS:
            raise unknown_name("norm", self.norm, NORMS)
        if self.norm == "l2" and self.name not in ("fgsm", "pgd", "bim", "mim", "cw_l2"):
            raise ValueError(f"Expected norm='linf' for {self.name}. Received: norm='l2'")
        check_eps(self.eps, "l2" if self.name == "cw_l2" else self.norm)
        if self.steps is None:
            object.__setattr__(self, "steps", _DEFAULT_STEPS[self.name])
        for key in ("steps", "restarts", "search_steps", "samples"):
            if getattr(self, key) < 1:
                raise ValueError(f"Expected {key} >= 1. Received: {key}={getattr(self, key)}")
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"Expected step_size > 0. Received: step_size={self.step_size}")
        if self.name == "bim" and self.step_size is not None and self.step_size > self.eps:
            raise ValueError(
                f"Expected step_size <= eps for BIM. Received: step_size={self.step_size}, "
                f"eps={self.eps}"
            )
        if self.name == "spsa" and self.samples % 2:
            raise ValueError(f"Expected an even number of SPSA samples. Received: {self.samples}")

    @property
    def alpha(self) -> float:
        """The step size actually used."""
        if self.step_size is not None:
            return self.step_size
        if self.name == "pgd":
            return 2.5 * self.eps / self.steps
        if self.name == "fgsm":
            return self.eps
        return self.eps / self.steps

    @property
    def label(self) -> str:
        """Short name for tables: "PGD-20 L∞ ε=0.1 ×2", "FGSM ε=0.3"."""
        name = {"cw_l2": "CW-L2", "spsa": "SPSA"}.get(self.name, self.name.upper())
        if self.name in ("pgd", "bim", "mim", "spsa"):
            name += f"-{self.steps}"
        if self.norm == "l2" and self.name != "cw_l2":
            name += " L2"
        name += f" ε={self.eps:g}"
        return name + (f" ×{self.restarts}" if self.restarts > 1 else "")

    def replace(self, **changes) -> AttackSpec:
        return dataclasses.replace(self, **changes)


class Attacker:
    """Compiled attacks on one model's primary logits; each attack kind is traced once.

    Args:
        model: a dict-output model (uses "logits") or a plain classifier.

    Example:
        attacker = Attacker(model)
        x_adv = attacker(AttackSpec("pgd", eps=0.1, steps=20), x, y, seed=3)
    """

    def __init__(self, model: keras.Model):
        self.model_fn = with_gradient_path(logits_fn(model))
        self._compiled: dict = {}

    def __call__(self, spec: AttackSpec, x, y, seed: int = 0) -> tf.Tensor:
        """Adversarial images for `x` with true labels `y`; same `seed`, same images."""
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y)
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"Expected as many labels as images. Received: x {x.shape}, y {y.shape}"
            )
        y = tf.cast(y, tf.int32)  # one label dtype, one trace
        if spec.name == "cw_l2":
            return self._cw_l2(spec, x, y)
        if spec.name == "spsa":
            return self._spsa(spec, x, y, seed)
        kind = "pgd" if spec.name == "bim" else spec.name  # BIM: PGD without a random start
        return self._function(kind, spec.norm, x)(x, y, _parameters(spec, seed))

    def predict(self, x) -> tf.Tensor:
        """Logits in inference mode, compiled."""
        x = tf.convert_to_tensor(x, tf.float32)
        return self._function("predict", None, x)(x)

    def tracing_counts(self) -> dict[str, int]:
        """How often each compiled attack (and `predict`) was traced: once per image shape (C&W:
        per batch shape); more is a retrace, which TensorFlow warns about."""
        counts = {}
        for key, fn in self._compiled.items():
            traced = fn.gradient if isinstance(fn, CarliniWagnerL2) else fn
            counts[" ".join(str(part) for part in key if part is not None)] = (
                traced.experimental_get_tracing_count()
            )
        return counts

    # === Gradient attacks and predict (compiled) ===
    def _function(self, kind: str, norm: str | None, x):
        """The compiled `kind` for images shaped like `x` and any batch size: a short last batch
        or a prefix of a batch is no new shape. Traced on its first call."""
        key = (kind, norm, _shape(x.shape[1:]))
        if key not in self._compiled:
            images = tf.TensorSpec([None, *x.shape[1:]], tf.float32)
            if kind == "predict":
                fn, signature = self.model_fn, [images]
            else:
                labels = tf.TensorSpec([None], tf.int32)
                fn, signature = self._graph(kind, norm), [images, labels, _PARAMETERS]
            self._compiled[key] = compiled(fn, signature)
        return self._compiled[key]

    def _graph(self, kind: str, norm: str):
        model_fn, order = self.model_fn, NORMS[norm]
        if kind == "fgsm":

            def fgsm(x, y, p):
                return fast_gradient_method(
                    model_fn, x, p["eps"], order, clip_min=CLIP_MIN, clip_max=CLIP_MAX, y=y
                )

            return fgsm
        if kind == "mim":

            def momentum_iterative(x, y, p):
                return mim(
                    model_fn, x, y, eps=p["eps"], step_size=p["alpha"], steps=p["steps"],
                    decay=p["decay"], norm=norm,
                )  # fmt: skip

            return momentum_iterative

        def pgd_with_restarts(x, y, p):
            def attempt(restart):
                return pgd(
                    model_fn, x, y, eps=p["eps"], step_size=p["alpha"], steps=p["steps"],
                    norm=norm, random_start=p["random_start"], seed=tf.stack([p["seed"], restart]),
                )  # fmt: skip

            return worst_case(model_fn, x, y, attempt, p["restarts"])

        return pgd_with_restarts

    # === C&W-L2 and SPSA (cleverhans' own loops, Keras 3 fixes) ===
    def _cw_l2(self, spec: AttackSpec, x, y):
        # One attack object per batch shape, reused: a new one would trace its compiled gradient
        # again.
        learning_rate = spec.step_size or 1e-2
        key = ("cw_l2", spec.steps, spec.search_steps, learning_rate, _shape(x.shape))
        if key not in self._compiled:
            self._compiled[key] = cw_l2_attack(
                self.model_fn, int(x.shape[0]), steps=spec.steps, search_steps=spec.search_steps,
                learning_rate=learning_rate,
            )  # fmt: skip
        attack = self._compiled[key]
        attack.optimizer = _Keras2Adam(learning_rate)  # a fresh Adam for each call
        x_adv = tf.convert_to_tensor(attack.attack(x.numpy()))
        # A minimal-distortion attack: it counts only within the L2 radius ε. It attacks the
        # predicted label, so on a misclassified image it may move *to* the true label; there
        # the clean image is kept (found by the robust <= clean check on the first real run).
        distance = tf.norm(tf.reshape(x_adv - x, [x.shape[0], -1]), axis=1)
        return self._unless_already_wrong(x, y, x_adv, keep=distance <= spec.eps + 1e-6)

    def _spsa(self, spec: AttackSpec, x, y, seed: int):
        # cleverhans uses the step count as a Python number (`float(num_steps)`), and the sample
        # count is a shape: both key the trace; ε, α and the seed are tensors.
        key = ("spsa", spec.samples, spec.steps, _shape(x.shape[1:]))
        if key not in self._compiled:
            signature = [tf.TensorSpec([1, *x.shape[1:]], tf.float32), tf.TensorSpec([1], tf.int32)]
            signature += [tf.TensorSpec([], tf.float32)] * 2 + [tf.TensorSpec([2], tf.int32)]
            graph = self._spsa_graph(spec.samples, spec.steps)
            self._compiled[key] = compiled(graph, signature)
        fn = self._compiled[key]
        eps, alpha = tf.constant(spec.eps, tf.float32), tf.constant(spec.step_size or 0.01)
        # cleverhans' SPSA takes one image at a time; each step evaluates `samples` copies.
        with _without_back_prop_notice():
            x_adv = [
                fn(x[i : i + 1], y[i : i + 1], eps, alpha, tf.constant([seed, i], tf.int32))
                for i in range(len(x))
            ]
        # Its random start can land a misclassified image on the true class, and its early stop
        # keeps it there (found by the robust <= clean check, issue 4).
        return self._unless_already_wrong(x, y, tf.concat(x_adv, 0))

    def _unless_already_wrong(self, x, y, x_adv, keep=True):
        """`x_adv` where the clean prediction is right (and `keep`), else the clean image: an
        optimizing attack must not move a misclassified image onto its true class."""
        right = tf.argmax(self.predict(x), -1, output_type=y.dtype) == y
        return tf.where(tf.reshape(right & keep, [-1, 1, 1, 1]), x_adv, x)

    def _spsa_graph(self, samples: int, steps: int):
        model_fn = self.model_fn

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
    attack = CarliniWagnerL2(
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


def pgd(
    model_fn: Callable[[tf.Tensor], tf.Tensor],
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    step_size,
    steps,
    norm: str = "linf",
    random_start=True,
    seed=None,
    start: tf.Tensor | None = None,
) -> tf.Tensor:
    """Projected gradient descent (Madry et al. 2018) as a graph loop over cleverhans' FGM step.

    Each step is cleverhans' `fast_gradient_method` followed by its `clip_eta` projection and
    clipping to [0, 1]. FGSM is `steps=1, random_start=False, step_size=eps`; FGSM with a random
    start (Wong et al. 2020) is `steps=1, step_size=1.25·eps`; BIM (Kurakin et al. 2017) is
    `random_start=False, step_size=eps/steps`. Usable inside a train step.

    Args:
        model_fn: x → logits.
        x, y: clean images in [0, 1] and their true labels.
        eps, step_size, steps: budget, α and k (Python numbers or scalar tensors).
        norm: "linf" or "l2".
        random_start: start uniformly inside the ε-ball (a Python bool or a scalar bool tensor).
        seed: shape-[2] integer seed of the stateless random start.
        start: the first iterate instead of x or a uniform draw (MART starts at x + 0.001·N(0, I)),
            projected to the ball and [0, 1] like every iterate; `random_start` is then unused.

    Reference:
        Madry et al., "Towards deep learning models resistant to adversarial attacks", 2018.
    """
    order = NORMS[norm]
    eps = tf.cast(eps, x.dtype)
    seed = tf.zeros([2], tf.int32) if seed is None else seed

    def uniform_start():
        return _clip(x + random_in_ball(tf.shape(x), norm, eps, seed))

    if start is not None:
        x_adv = _clip(x + clip_eta(start - x, order, eps))
    elif tf.is_tensor(random_start):  # one trace serves PGD and BIM
        x_adv = tf.cond(random_start, uniform_start, lambda: x)
    else:
        x_adv = uniform_start() if random_start else x

    def step(i, x_adv):
        x_adv = fast_gradient_method(
            model_fn, x_adv, step_size, order, clip_min=CLIP_MIN, clip_max=CLIP_MAX, y=y
        )
        return i + 1, _clip(x + clip_eta(x_adv - x, order, eps))

    _, x_adv = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), x_adv))
    return tf.stop_gradient(x_adv)


def mim(
    model_fn: Callable[[tf.Tensor], tf.Tensor],
    x: tf.Tensor,
    y: tf.Tensor,
    *,
    eps,
    step_size,
    steps,
    decay=1.0,
    norm: str = "linf",
) -> tf.Tensor:
    """The momentum iterative method (MI-FGSM; L∞ or L2) as a graph loop: cleverhans'
    `momentum_iterative_method` step for step, on its own helpers (the gradient is normalized
    by its mean |g| under either norm, as cleverhans does; the step and the projection follow
    `norm`).

    cleverhans loops in Python, so a graph holds `steps` copies of the model and a new step count
    retraces; here `steps` (like ε, α and the decay μ) may be a tensor.

    Args:
        model_fn: x → logits.
        x, y: clean images in [0, 1] and their true labels.
        eps, step_size, steps: budget, α and k (Python numbers or scalar tensors).
        decay: the momentum decay μ.
        norm: "linf" or "l2": the step's direction (sign, or the L2-normalized momentum) and
            the projection.

    Reference:
        Dong et al., "Boosting adversarial attacks with momentum", 2018.
    """
    eps, order = tf.cast(eps, x.dtype), NORMS[norm]

    def step(i, momentum, x_adv):
        grad = compute_gradient(
            model_fn, tf.nn.sparse_softmax_cross_entropy_with_logits, x_adv, y, targeted=False
        )
        # Each gradient normalized by its mean |g| per example, then accumulated with decay μ.
        axes = list(range(1, len(grad.shape)))
        grad /= tf.maximum(tf.cast(1e-12, grad.dtype), tf.reduce_mean(tf.abs(grad), axes, True))
        momentum = decay * momentum + grad
        x_adv = x_adv + optimize_linear(momentum, step_size, order)
        return i + 1, momentum, _clip(x + clip_eta(x_adv - x, order, eps))

    loop = (tf.constant(0), tf.zeros_like(x), x)
    _, _, x_adv = tf.while_loop(lambda i, *_: i < steps, step, loop)
    return tf.stop_gradient(x_adv)


def worst_case(
    model_fn, x, y, attempt: Callable[[tf.Tensor], tf.Tensor], restarts: int | tf.Tensor
) -> tf.Tensor:
    """Runs `attempt(restart)` `restarts` times and keeps, per example, the most damaging result.

    Damage: misclassified beats correctly classified; then the higher cross-entropy wins.
    `restarts` may be a scalar tensor: the attempts run in a graph loop.
    """
    restarts = tf.convert_to_tensor(restarts)

    def damage(x_adv):
        logits = model_fn(x_adv)
        fooled = tf.cast(tf.argmax(logits, -1, output_type=y.dtype) != y, tf.float32)
        return fooled * 1e6 + tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)

    def step(restart, best, best_damage):
        candidate = attempt(restart)
        # A single attempt is compared with nothing: skip its extra forward pass.
        candidate_damage = tf.cond(restarts > 1, lambda: damage(candidate), lambda: best_damage)
        better = (restart == 0) | (candidate_damage > best_damage)
        best = tf.where(tf.reshape(better, [-1, 1, 1, 1]), candidate, best)
        return restart + 1, best, tf.where(better, candidate_damage, best_damage)

    loop = (tf.constant(0), x, tf.zeros(tf.shape(y)))
    _, best, _ = tf.while_loop(lambda restart, *_: restart < restarts, step, loop)
    return best


def random_in_ball(shape, norm: str, eps, seed) -> tf.Tensor:
    """A stateless uniform sample from the L∞ cube or the L2 ball of radius ε, per example."""
    if norm == "linf":
        return tf.random.stateless_uniform(shape, seed, -1.0, 1.0) * eps
    direction = tf.random.stateless_normal(shape, seed)
    axes = tf.range(1, tf.rank(direction))
    norms = tf.sqrt(tf.reduce_sum(tf.square(direction), axis=axes, keepdims=True))
    direction /= tf.maximum(norms, 1e-12)
    dims = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
    radius = tf.random.stateless_uniform(
        tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), seed + 1
    ) ** (1.0 / dims)
    return direction * radius * eps


def with_gradient_path(model_fn):
    """A model whose logits do not depend differentiably on x (stop_gradient, rounding) gets a zero
    gradient instead of None: cleverhans would crash on None, and the sanity checks must see it."""
    return lambda x: model_fn(x) + 0.0 * tf.reduce_sum(x)


def _clip(x):
    return tf.clip_by_value(x, CLIP_MIN, CLIP_MAX)


def compiled(fn, signature) -> tf.types.experimental.PolymorphicFunction:
    """`tf.function(fn)` whose traces TensorFlow's retracing warning counts on their own.

    The warning counts the traces of every function with the same Python code together, so a
    run creating an `Attacker` per model (each variant, each epoch's robust-accuracy callback,
    the surrogate) warned "5 out of the last 5 calls ... triggered retracing", though each
    function traced once. A `functools.partial` has no `__code__`, so TensorFlow keys it by the
    function object itself: a function that really retraces still warns.
    """
    return tf.function(functools.partial(fn), input_signature=signature)


def _shape(shape) -> str:
    return "x".join(map(str, shape))


# What a compiled gradient attack takes besides images and labels. All are tensors, so a new ε,
# α, step count, restart count, start or seed reuses the trace; each attack reads what it needs.
_PARAMETERS = {
    "eps": tf.TensorSpec([], tf.float32),
    "alpha": tf.TensorSpec([], tf.float32),
    "steps": tf.TensorSpec([], tf.int32),
    "restarts": tf.TensorSpec([], tf.int32),
    "random_start": tf.TensorSpec([], tf.bool),
    "decay": tf.TensorSpec([], tf.float32),
    "seed": tf.TensorSpec([], tf.int32),
}


def _parameters(spec: AttackSpec, seed: int) -> dict:
    is_pgd = spec.name == "pgd"  # BIM runs as PGD: one start, not random
    values = {
        "eps": spec.eps,
        "alpha": spec.alpha,
        "steps": spec.steps,
        "restarts": spec.restarts if is_pgd else 1,
        "random_start": spec.random_start and is_pgd,
        "decay": spec.decay,
        "seed": seed,
    }
    return {k: tf.constant(v, _PARAMETERS[k].dtype) for k, v in values.items()}


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
