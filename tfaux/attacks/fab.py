"""FAB, the Fast Adaptive Boundary attack, untargeted (`FAB`) and targeted (`FABTargeted`), as
AutoAttack runs them.

FAB looks for the *smallest* perturbation that changes the prediction. Each step linearizes a
decision boundary at the current iterate, projects both the iterate and the clean image onto that
hyperplane intersected with the pixel box [0, 1]^d, and moves to a convex combination of the two
projections, biased towards the clean image (α ≤ `alpha_max`) and a little beyond the plane
(`eta`). Once the iterate is adversarial it is pulled back towards the clean image (`beta`), which
is what shrinks the perturbation. The two versions differ only in the boundary they linearize:

- `FAB` (AutoAttack's `plus` version, 5 restarts): the closest one, over every class j ≠ y,
  argmin_j |f_j − f_y| / ‖∇(f_j − f_y)‖_q with q the dual norm. It needs the Jacobian of all the
  logits each step, about as costly as a backward pass per class.
- `FABTargeted` (FAB-T, the `standard` version): the one between y and the class with the
  `target_rank`-th highest clean logit; AutoAttack runs ranks 2 to 10, one restart each. One
  gradient per step.

    fab = FAB(model, norm="linf")
    x_adv = fab(x, y, eps=8 / 255)
    fab_t = FABTargeted(model, norm="linf")
    x_adv = fab_t(x, y, eps=8 / 255, target_rank=2)

Written natively: one `tf.function` per image shape (the batch size is left open), traced once;
ε, target rank and seed are tensors, so AutoAttack's 9 target ranks and an ε sweep reuse it
(`tracing_counts()` shows it). The steps run in a `tf.while_loop` on the whole batch; where the
reference keeps indexing the examples still to attack, every example here runs every step and its
result is kept or dropped with `tf.where`.

Reference: Croce & Hein, "Minimally distorted adversarial examples with a fast adaptive boundary
attack", ICML 2020; code: github.com/fra31/auto-attack (`fab_base.py`, `fab_pt.py`,
`fab_projections.py`).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import keras
import tensorflow as tf

from tfaux.attacks.protocol import (
    Attack,
    check_settings,
    compiled,
    model_function,
    register_attack,
    shape_key,
)
from tfaux.attacks.threat_model import NORMS, check_eps, clip
from tfaux.names import unknown_name

_NOT_FOUND = 1e10  # the reference's distance for "no adversarial example yet"


class _FABLoop(Attack):
    """What `FAB` and `FABTargeted` share: validation, compilation, restarts, the step and its
    projections. Subclasses set `name`, `targeted` and `_boundary`, the linearized boundary of a
    step.

    `model` is a Keras classifier (its primary logits, with a gradient path), an `AttackedModel`
    or a function `x -> logits` in inference mode (see `logits_fn`), used as it is."""

    def __init__(
        self,
        model: keras.Model | Callable[[tf.Tensor], tf.Tensor],
        *,
        norm: str = "linf",
        steps: int = 100,
        restarts: int = 1,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
    ):
        if norm not in NORMS:
            raise unknown_name("norm", norm, NORMS)
        check_settings(steps=steps, restarts=restarts)
        if not 0.0 <= alpha_max <= 1.0:
            raise ValueError(f"Expected 0 <= alpha_max <= 1. Received: alpha_max={alpha_max}")
        if not eta >= 1.0:
            raise ValueError(f"Expected eta >= 1 (an overshoot). Received: eta={eta}")
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"Expected 0 < beta <= 1. Received: beta={beta}")
        self.model, self.model_fn = model, model_function(model)
        self.norm, self.steps, self.restarts = norm, steps, restarts
        self.alpha_max, self.eta, self.beta = float(alpha_max), float(eta), float(beta)
        self._compiled: dict = {}
        self._num_classes: dict = {}

    def get_config(self) -> dict:
        return {
            "norm": self.norm,
            "steps": self.steps,
            "restarts": self.restarts,
            "alpha_max": self.alpha_max,
            "eta": self.eta,
            "beta": self.beta,
        }

    def tracing_counts(self) -> dict[str, int]:
        """How often the attack was traced, per image shape: once, whatever ε, rank or seed."""
        return {
            f"{self.norm} {shape_key(key)}": fn.experimental_get_tracing_count()
            for key, fn in self._compiled.items()
        }

    # === Validation and compilation ===
    def _run(self, x, y, target_rank, eps, seed):
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y)
        if x.shape.rank is None or x.shape.rank < 2 or y.shape.rank != 1:
            raise ValueError(
                f"Expected images [batch, ...] and labels [batch]. Received: x {x.shape}, "
                f"y {y.shape}"
            )
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"Expected as many labels as images. Received: x {x.shape}, y {y.shape}"
            )
        eps = check_eps(eps, self.norm)
        fn = self._function(x)
        num_classes = self._num_classes[_key(x)]
        if self.targeted and not (
            isinstance(target_rank, numbers.Integral) and 2 <= target_rank <= num_classes
        ):
            raise ValueError(
                f"Expected a target_rank from 2 (the runner-up) to {num_classes} (the number of "
                f"classes). Received: target_rank={target_rank!r}"
            )
        return fn(
            x,
            tf.cast(y, tf.int32),  # one label dtype, one trace
            tf.constant(int(target_rank), tf.int32),
            tf.constant(eps, tf.float32),
            tf.constant(seed, tf.int32),
        )

    def _function(self, x):
        """The compiled attack for images shaped like `x`, any batch size. Traced here, before its
        first run, so that the class count is known to validate `target_rank`."""
        key = _key(x)
        if key not in self._compiled:
            scalar = functools.partial(tf.TensorSpec, [])
            signature = [
                tf.TensorSpec([None, *key], tf.float32),
                tf.TensorSpec([None], tf.int32),
                scalar(tf.int32),
                scalar(tf.float32),
                scalar(tf.int32),
            ]
            fn = compiled(self._attack, signature)  # this instance's traces counted alone
            fn.get_concrete_function()
            self._compiled[key] = fn
        return self._compiled[key]

    # === The attack (traced) ===
    def _attack(self, x, y, target_rank, eps, seed):
        logits = self.model_fn(x)
        if logits.shape.rank != 2 or logits.shape[-1] is None or logits.shape[-1] < 2:
            raise ValueError(
                f"Expected model_fn to return logits [batch, classes] with a known number of "
                f"classes, at least 2. Received: shape {logits.shape}"
            )
        self._num_classes[_key(x)] = logits.shape[-1]
        # Like the reference, only correctly classified points are attacked; FAB-T's target is
        # the class with the target_rank-th highest clean logit (FAB has none).
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y)
        target = None
        if self.targeted:
            ranked = tf.argsort(logits, axis=-1, direction="DESCENDING")
            target = tf.gather(ranked, target_rank - 1, axis=1)

        def restart(r, best, best_norm):
            # Later restarts start at a random point at half the smaller of ε and the best
            # distance found so far (the reference's `min(res2, eps) * t / ‖t‖ * .5`).
            radius = _per_example(tf.minimum(best_norm, eps), x)
            start = clip(x + 0.5 * radius * self._random_direction(x, tf.stack([seed, r])))
            x1 = tf.where(r > 0, start, x)

            def step(i, x1, best, best_norm):
                return (i + 1, *self._step(x1, x, y, target, best, best_norm))

            _, _, best, best_norm = tf.while_loop(
                lambda i, *_: i < self.steps, step, (0, x1, best, best_norm)
            )
            return r + 1, best, best_norm

        no_distance = tf.fill(tf.shape(x)[:1], _NOT_FOUND)
        _, best, best_norm = tf.while_loop(
            lambda r, *_: r < self.restarts, restart, (0, x, no_distance)
        )
        found = correct & (best_norm < _NOT_FOUND)
        x_min = tf.where(_per_example(found, x), best, x)
        fooled = tf.not_equal(tf.argmax(self.model_fn(x_min), -1, output_type=tf.int32), y)
        fooled &= self._distance(x_min - x) <= eps
        return x_min, tf.where(_per_example(fooled, x), x_min, x)

    def _boundary(self, x1, y, target):
        """The boundary to cross, linearized at x1: (df [batch], dg [batch, d]) with the plane
        df + <dg, z − x1> = 0. `target`: FAB-T's target classes, None for FAB."""
        raise NotImplementedError

    def _step(self, x1, x0, y, target, best, best_norm):
        """One FAB step from x1; returns the next iterate and the updated best adversarial."""
        batch = tf.shape(x0)[0]
        df, w = self._boundary(x1, y, target)
        x1_flat, x0_flat = _flat(x1), _flat(x0)
        b = -df + tf.reduce_sum(w * x1_flat, -1)

        # Project the iterate and the clean image onto {z : <w, z> = b} ∩ [0, 1]^d, in one call.
        project = project_linf if self.norm == "linf" else project_l2
        d3 = project(tf.concat([x1_flat, x0_flat], 0), tf.concat([w, w], 0), tf.concat([b, b], 0))
        d1, d2 = d3[:batch], d3[batch:]
        a = tf.maximum(self._distance(d3), 1e-8)
        a1, a2 = a[:batch, None], a[batch:, None]

        # Biased towards the clean image's projection: the smaller step when x1 is far from x0.
        alpha = tf.minimum(tf.maximum(a1 / (a1 + a2), 0.0), self.alpha_max)
        moved = (x1_flat + self.eta * d1) * (1 - alpha) + (x0_flat + self.eta * d2) * alpha
        x1 = tf.reshape(clip(moved), tf.shape(x0))

        # Keep the closest adversarial iterate; pull adversarial iterates back towards x0.
        is_adv = tf.not_equal(tf.argmax(self.model_fn(x1), -1, output_type=tf.int32), y)
        distance = self._distance(x1 - x0)
        better = is_adv & (distance < best_norm)
        best = tf.where(_per_example(better, x0), x1, best)
        best_norm = tf.where(better, distance, best_norm)
        x1 = tf.where(_per_example(is_adv, x0), x0 + (x1 - x0) * self.beta, x1)
        return x1, best, best_norm

    def _distance(self, delta):
        flat = _flat(delta)
        if self.norm == "linf":
            return tf.reduce_max(tf.abs(flat), -1)
        return tf.sqrt(tf.reduce_sum(tf.square(flat), -1))

    def _dual_norm(self, g):
        """‖g‖_q over the last axis, q the dual of the attack's norm (L∞ → L1, L2 → L2)."""
        if self.norm == "linf":
            return tf.reduce_sum(tf.abs(g), -1)
        return tf.sqrt(tf.reduce_sum(tf.square(g), -1))

    def _random_direction(self, x, seed):
        """A random direction of unit norm per example: uniform in the cube for L∞, Gaussian for
        L2, as in the reference."""
        if self.norm == "linf":
            t = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        else:
            t = tf.random.stateless_normal(tf.shape(x), seed)
        return t / _per_example(self._distance(t), x)


@register_attack
class FAB(_FABLoop):
    """Untargeted FAB against the closest linearized boundary, for L∞ or L2.

    Args:
        model: a Keras classifier, an `AttackedModel` or `x -> logits` (see `_FABLoop`).
        norm: "linf" or "l2", the norm whose distance is minimized.
        steps: iterations per restart (AutoAttack: 100).
        restarts: runs; the first starts at x, later ones at random points around it
            (AutoAttack's `plus` version: 5). The closest example over all runs is kept.
        alpha_max: the largest weight of the clean image's projection in a step.
        eta: overshoot beyond the linearized boundary (> 1 lands on the adversarial side).
        beta: how far an adversarial iterate is pulled back towards x (x + β·δ).

    Example:
        fab = FAB(model, norm="l2", restarts=5)
        x_min = fab.minimal(x, y, eps=0.5)  # smallest L2 distortion found
        x_adv = fab(x, y, eps=0.5)  # kept only where it fools within ε

    Reference: Croce & Hein, ICML 2020 (arXiv:1907.02044); AutoAttack's `FABAttack` with
    `targeted=False`.
    """

    name, targeted = "fab", False

    def minimal(self, x, y, eps: float, seed: int = 0) -> tf.Tensor:
        """The smallest adversarial example found; x where none was found or x is misclassified.

        `eps` only sizes the random starts of restarts after the first, as in the reference.
        """
        return self._run(x, y, 0, eps, seed)[0]

    def __call__(self, x, y, *, eps: float, seed: int = 0) -> tf.Tensor:
        """`minimal(...)` where it is misclassified within ε of x (‖x_adv − x‖ ≤ ε), else x."""
        return self._run(x, y, 0, eps, seed)[1]

    def _boundary(self, x1, y, target):
        # The reference's `get_diff_logits_grads_batch`: f_j − f_y and its gradient for every j,
        # then the j ≠ y whose plane is closest in the attack's norm. One backward pass per class,
        # unrolled in the graph: per FAB step on CPU 1.2-1.4x faster than `batch_jacobian` (small
        # CNN, ResNet-8, 10 classes), a `tf.while_loop` over classes no faster. The price is a
        # trace that grows with the class count (~8 s for ResNet-8 at 100 classes), paid once.
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x1)
            logits = self.model_fn(x1)
            columns = tf.unstack(logits, axis=-1)
        jacobian = tf.stack(
            [
                tape.gradient(column, x1, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                for column in columns
            ],
            axis=1,
        )
        num_classes = logits.shape[-1]
        jacobian = tf.reshape(jacobian, [-1, num_classes, math.prod(x1.shape[1:])])
        own = tf.one_hot(y, num_classes)
        df = logits - tf.reduce_sum(logits * own, -1, keepdims=True)
        dg = jacobian - tf.einsum("bk,bkd->bd", own, jacobian)[:, None]
        distance = tf.abs(df) / (1e-12 + self._dual_norm(dg))
        distance = tf.where(own > 0, float("inf"), distance)  # j = y is no boundary
        closest = tf.argmin(distance, -1, output_type=tf.int32)
        return tf.gather(df, closest, batch_dims=1), tf.gather(dg, closest, batch_dims=1)


@register_attack
class FABTargeted(_FABLoop):
    """Targeted FAB (FAB-T) against one ranked class, for L∞ or L2.

    Args:
        model: a Keras classifier, an `AttackedModel` or `x -> logits` (see `_FABLoop`).
        norm: "linf" or "l2", the norm whose distance is minimized.
        steps: iterations per restart (AutoAttack: 100).
        restarts: runs per target; the first starts at x, later ones at random points around it
            (AutoAttack's `standard` version: 1). The closest example over all runs is kept.
        alpha_max: the largest weight of the clean image's projection in a step.
        eta: overshoot beyond the linearized boundary (> 1 lands on the adversarial side).
        beta: how far an adversarial iterate is pulled back towards x (x + β·δ).

    Example:
        fab = FABTargeted(model, norm="l2")
        x_min = fab.minimal(x, y, target_rank=2, eps=0.5)  # smallest L2 distortion found
        x_adv = fab(x, y, eps=0.5, target_rank=2)  # kept only where it fools within ε

    Reference: Croce & Hein, ICML 2020 (arXiv:1907.02044); AutoAttack's `FABAttack` with
    `targeted=True`.
    """

    name, targeted = "fab-t", True

    def minimal(self, x, y, target_rank: int, eps: float, seed: int = 0) -> tf.Tensor:
        """The smallest adversarial example found against the class with the `target_rank`-th
        highest clean logit (2 is the runner-up); x where none was found or x is misclassified.

        `eps` only sizes the random starts of restarts after the first, as in the reference.
        """
        return self._run(x, y, target_rank, eps, seed)[0]

    def __call__(self, x, y, *, eps: float, seed: int = 0, target_rank: int = 2) -> tf.Tensor:
        """`minimal(...)` where it is misclassified within ε of x (‖x_adv − x‖ ≤ ε), else x."""
        return self._run(x, y, target_rank, eps, seed)[1]

    def _boundary(self, x1, y, target):
        # The reference's `get_diff_logits_grads_batch_targeted`: one gradient, of f_target − f_y.
        with tf.GradientTape() as tape:
            tape.watch(x1)
            logits = self.model_fn(x1)
            toward = tf.one_hot(target, logits.shape[-1]) - tf.one_hot(y, logits.shape[-1])
            df = tf.reduce_sum(logits * toward, -1)
        dg = tape.gradient(df, x1, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return df, _flat(dg)


# === Projections onto a hyperplane ∩ the box [0, 1]^d ===
# Ports of the reference's `projection_linf` and `projection_l2` (fab_projections.py). Each
# returns, per row, the smallest d (in its norm) with <w, t + d> = b and t + d in [0, 1]^d, or,
# where the box cannot reach the plane, the box corner closest to it. All rows run every branch
# and keep theirs with `tf.where`; the reference indexes the rows of each branch instead.


def project_linf(t, w, b):
    """L∞ projection: d_i = −sign(w_i)·min(λ, p_i), p_i the room to the box towards the plane;
    the optimal λ is where the piecewise-linear <w, d(λ)> meets the plane, found by a binary
    search over the sorted p_i."""
    dim = t.shape[-1]
    # Orient the plane so that <w, t> ≥ b: d must decrease <w, ·>.
    sign = tf.where(tf.reduce_sum(w * t, 1) - b >= 0, 1.0, -1.0)
    w, b = w * sign[:, None], b * sign

    a = tf.cast(w < 0, w.dtype)
    nonzero = tf.cast(tf.not_equal(w, 0), w.dtype)
    d = (a - t) * nonzero  # the box corner towards the plane
    p = a - t * (2 * a - 1)  # room to that corner per coordinate
    indp = tf.argsort(p, axis=1)

    b = b - tf.reduce_sum(w * t, 1)  # the change of <w, ·> needed (≤ 0)
    b0 = tf.reduce_sum(w * d, 1)  # the largest change the box allows

    # <w, d(λ)> at λ = each p_i, coordinates by decreasing room: sb − s·λ.
    indp2 = tf.reverse(indp, [1])
    ws = tf.gather(w, indp2, batch_dims=1)
    bs2 = -ws * tf.gather(d, indp2, batch_dims=1)
    s = tf.cumsum(tf.abs(ws), axis=1)
    sb = tf.cumsum(bs2, axis=1) + b0[:, None]

    b2 = sb[:, -1] - s[:, -1] * tf.gather(p, indp[:, 0], batch_dims=1)
    c_l = b - b2 > 0  # reached before any coordinate hits the box
    c2 = (b - b0 > 0) & ~c_l  # reached after some do

    lb = tf.zeros_like(b)
    ub = tf.fill(tf.shape(b), float(dim - 1))
    for _ in range(math.ceil(math.log2(dim))):
        counter4 = tf.floor((lb + ub) / 2)
        counter2 = tf.cast(counter4, tf.int32)
        indcurr = tf.gather(indp, dim - 1 - counter2, batch_dims=1)
        b2 = tf.gather(sb, counter2, batch_dims=1) - tf.gather(
            s, counter2, batch_dims=1
        ) * tf.gather(p, indcurr, batch_dims=1)
        c = b - b2 > 0
        lb = tf.where(c, counter4, lb)
        ub = tf.where(c, ub, counter4)
    lb = tf.cast(lb, tf.int32)

    lmbd_l = tf.maximum((b - sb[:, -1]) / (-s[:, -1]), 0.0)[:, None]
    d_l = (2 * a - 1) * lmbd_l
    sb_lb, s_lb = tf.gather(sb, lb, batch_dims=1), tf.gather(s, lb, batch_dims=1)
    lmbd_2 = tf.maximum((b - sb_lb) / (-s_lb), 0.0)[:, None]
    d_2 = tf.minimum(lmbd_2, d) * a + tf.maximum(-lmbd_2, d) * (1 - a)

    d = tf.where(c_l[:, None], d_l, tf.where(c2[:, None], d_2, d))
    return d * nonzero


def project_l2(t, w, b):
    """L2 projection: d(λ) = clip(−λ·w) to the box; the optimal λ is where <w, d(λ)> meets the
    plane, found by a binary search over the sorted λ_i at which coordinates hit the box."""
    dim = t.shape[-1]
    # Orient the plane so that c = <w, t> − b ≥ 0: d must decrease <w, ·>.
    c = tf.reduce_sum(w * t, 1) - b
    sign = tf.where(c >= 0, 1.0, -1.0)
    w, c = w * sign[:, None], c * sign
    tiny = tf.abs(w) < 1e-8
    kept = tf.cast(~tiny, w.dtype)

    # λ at which coordinate i reaches the box moving along −w (1e12: never).
    r = tf.clip_by_value(tf.maximum(t / w, (t - 1) / w), -1e12, 1e12)
    r = tf.where(tiny | (r == -1e12), 1e12, r)
    indr = tf.argsort(r, axis=1)
    rs = tf.gather(r, indr, batch_dims=1)
    rs2 = tf.pad(rs[:, 1:], [[0, 0], [0, 1]])
    rs = tf.where(rs == 1e12, 0.0, rs)
    rs2 = tf.where(rs2 == 1e12, 0.0, rs2)

    w3s = tf.gather(tf.square(w), indr, batch_dims=1)
    w5 = tf.reduce_sum(w3s, 1, keepdims=True)
    ws = w5 - tf.cumsum(w3s, axis=1)  # weight of the coordinates not yet at the box
    d = -(r * w) * kept  # every coordinate at the box
    # s_k = <w, d(λ)> at λ = rs_k.
    s = tf.concat([-w5 * rs[:, :1], tf.cumsum((rs - rs2) * ws, axis=1) - w5 * rs[:, :1]], axis=1)

    c4 = s[:, 0] + c < 0  # reached before any coordinate hits the box
    c3 = tf.reduce_sum(d * w, 1) + c > 0  # not reachable inside the box
    c2 = ~(c4 | c3)

    lb = tf.zeros_like(c)
    ub = tf.fill(tf.shape(c), float(dim - 1))
    for _ in range(math.ceil(math.log2(dim))):
        counter4 = tf.floor((lb + ub) / 2)
        counter2 = tf.cast(counter4, tf.int32)
        c3_ = tf.gather(s, counter2, batch_dims=1) + c > 0
        lb = tf.where(c3_, counter4, lb)
        ub = tf.where(c3_, ub, counter4)
    lb = tf.cast(lb, tf.int32)

    d_4 = -(c / w5[:, 0])[:, None] * w
    ws_lb = tf.gather(ws, lb, batch_dims=1)
    alpha = (tf.gather(s, lb, batch_dims=1) + c) / ws_lb + tf.gather(rs, lb, batch_dims=1)
    alpha = tf.where(ws_lb == 0, 0.0, alpha)[:, None]
    c5 = tf.cast(alpha > r, w.dtype)  # coordinates already at the box at λ = alpha
    d_2 = d * c5 - alpha * w * (1 - c5)

    d = tf.where(c4[:, None], d_4, tf.where(c2[:, None], d_2, d))
    return d * kept


# === Helpers ===
def _key(x) -> tuple:
    return tuple(x.shape[1:])


def _flat(x):
    """[batch, d], d static: the projections' binary search needs it."""
    return tf.reshape(x, [-1, math.prod(x.shape[1:])])


def _per_example(values, x):
    """[batch] values shaped to broadcast against x."""
    return tf.reshape(values, [-1] + [1] * (x.shape.rank - 1))
