"""APGD: PGD whose step size adapts itself (Croce & Hein 2020), native and compiled.

A port of the reference code's `APGDAttack.attack_single_run` (fra31/auto-attack): start at
x + ε·t/‖t‖, η₀ = 2ε, momentum 0.75 (1 on the first step), checkpoints at 22 % of the budget and
then every max(previous gap − 3 %, 6 %) of it; at a checkpoint η halves for every example whose
loss increased in at most ρ = 75 % of the steps since the last one, or whose η was not halved last
time and whose best loss did not improve; a halved example restarts from its best point. What is
returned is the last *misclassified* iterate, not the point of highest loss.

The whole run is one `tf.while_loop` in one `tf.function` per image shape and loss, traced once:
ε, the seed and the target rank are tensors, and the batch size is left open. Per-example state
(step size, best point, best loss) is updated with `tf.where`, never gathered.

Reference: Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import tensorflow as tf

from tfaux.attacks.protocol import (
    Attack,
    check_settings,
    compiled,
    model_function,
    register_attack,
    shape_key,
    with_gradient_path,
)
from tfaux.attacks.threat_model import NORMS, check_eps, clip

LOSSES = ("ce", "dlr", "dlr_targeted")
# Each loss's registered attack: APGD-CE, APGD-DLR and APGD-T.
_NAMES = {"ce": "apgd-ce", "dlr": "apgd-dlr", "dlr_targeted": "apgd-t"}


def dlr_loss(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """−(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12): the margin, invariant to the logits' scale
    and shift, so a model cannot hide behind large or saturated logits."""
    ordered = tf.sort(logits, axis=-1)
    true = tf.gather(logits, y, axis=-1, batch_dims=1)
    is_top = tf.cast(tf.argmax(logits, axis=-1, output_type=y.dtype) == y, logits.dtype)
    other = ordered[:, -2] * is_top + ordered[:, -1] * (1.0 - is_top)
    return -(true - other) / (ordered[:, -1] - ordered[:, -3] + 1e-12)


def targeted_dlr_loss(logits: tf.Tensor, y: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """−(z_y − z_t) / (z_π1 − ½(z_π3 + z_π4) + 1e-12), APGD-T's loss."""
    ordered = tf.sort(logits, axis=-1)
    true = tf.gather(logits, y, axis=-1, batch_dims=1)
    aimed = tf.gather(logits, target, axis=-1, batch_dims=1)
    return -(true - aimed) / (ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4]) + 1e-12)


def checkpoints(steps: int) -> list[tuple[int, int]]:
    """(iteration, window) pairs at which APGD checks its step size, as the reference counts
    them: the first window is max(⌊0.22·steps⌋, 1) iterations, each next one shorter by
    max(⌊0.03·steps⌋, 1) down to max(⌊0.06·steps⌋, 1)."""
    window = max(int(0.22 * steps), 1)
    shortest, shrink = max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    found, since = [], 0
    for i in range(steps):
        since += 1
        if since == window:
            found.append((i, window))
            window, since = max(window - shrink, shortest), 0
    return found


class APGD(Attack):
    """APGD-CE, APGD-DLR and APGD-T (one target rank per call) on a model's primary logits.

    Registered by loss as "apgd-ce", "apgd-dlr" and "apgd-t" (`APGDCE`, `APGDDLR`, `APGDT`).

    Args:
        model: a Keras classifier (dict outputs: "logits" is used), an `AttackedModel` or a
            function x → logits.
        norm: "linf" or "l2".
        loss: "ce", "dlr" or "dlr_targeted" (APGD-T).
        steps: iterations per restart (AutoAttack: 100).
        restarts: random starts; later ones run only while some example is still robust.
        rho: the fraction of loss increases below which the step size halves.
        eot: gradients averaged over this many forward-backward passes (AutoAttack's `rand`
            version: 20, for models with randomness at inference).

    After a call, `zero_gradients` counts the correctly classified points whose gradient at the
    random start was exactly zero (AutoAttack's check against masked gradients).

    Example:
        attack = APGD(model, loss="ce")
        x_adv = attack(x, y, eps=8 / 255)  # x where no adversarial example was found
    """

    def __init__(
        self,
        model,
        *,
        norm: str = "linf",
        loss: str = "ce",
        steps: int = 100,
        restarts: int = 1,
        rho: float = 0.75,
        eot: int = 1,
    ):
        if norm not in NORMS:
            raise ValueError(f"Expected norm in {tuple(NORMS)}. Received: norm={norm!r}")
        if loss not in LOSSES:
            raise ValueError(f"Expected loss in {LOSSES}. Received: loss={loss!r}")
        check_settings(steps=steps, restarts=restarts, eot=eot)
        if not 0.0 < rho < 1.0:
            raise ValueError(f"Expected 0 < rho < 1. Received: rho={rho}")
        self.model = model
        self.model_fn = with_gradient_path(model_function(model, gradient_path=False))
        self.norm, self.loss, self.steps, self.restarts = norm, loss, steps, restarts
        self.rho, self.eot = rho, eot
        self.name, self.targeted = _NAMES[loss], loss == "dlr_targeted"
        self.zero_gradients = 0
        self._functions: dict = {}

    def get_config(self) -> dict:
        return {
            "norm": self.norm,
            "loss": self.loss,
            "steps": self.steps,
            "restarts": self.restarts,
            "rho": self.rho,
            "eot": self.eot,
        }

    def __call__(self, x, y, *, eps: float, seed: int = 0, target_rank: int = 2) -> tf.Tensor:
        """Adversarial images where found (clean and still robust → x).

        Args:
            x: images in [0, 1], [B, H, W, C].
            y: true labels, [B].
            eps: the budget in pixel units.
            seed: the random starts' seed (restart r uses seed + r).
            target_rank: APGD-T's target, the class with the `target_rank`-th highest clean
                logit (2 = the runner-up); ignored by the untargeted losses.
        """
        x, y, eps = self._inputs(x, y, eps)
        if self.loss == "dlr_targeted" and not 2 <= target_rank <= self._num_classes(x):
            raise ValueError(
                f"Expected 2 <= target_rank <= number of classes. Received: "
                f"target_rank={target_rank}"
            )
        run = self._function(x)
        adversarial = x.numpy()
        attacked = np.arange(len(adversarial))  # each restart: the points still robust only
        self.zero_gradients = 0
        for restart in range(self.restarts):
            xs, ys = tf.gather(x, attacked), tf.gather(y, attacked)
            x_adv, fooled, zero = run(
                xs, ys, eps, tf.constant([seed, restart], tf.int32), target_rank
            )
            fooled = fooled.numpy()
            adversarial[attacked[fooled]] = x_adv.numpy()[fooled]
            self.zero_gradients += int(zero) if restart == 0 else 0
            attacked = attacked[~fooled]
            if not len(attacked):
                break
        return tf.constant(adversarial)

    def tracing_counts(self) -> dict[str, int]:
        """How often the attack was traced, per image shape: once, whatever ε, seed, target
        rank and batch size."""
        return {
            shape_key(key): fn.experimental_get_tracing_count()
            for key, fn in self._functions.items()
        }

    def _inputs(self, x, y, eps):
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.cast(tf.convert_to_tensor(y), tf.int32)
        if x.shape.rank != 4 or y.shape.rank != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"Expected images [B, H, W, C] and labels [B]. Received: x {x.shape}, y {y.shape}"
            )
        return x, y, tf.constant(check_eps(eps, self.norm), tf.float32)

    def _num_classes(self, x) -> int:
        return int(self.model_fn(x[:1]).shape[-1])

    def _function(self, x):
        key = tuple(x.shape[1:])
        if key not in self._functions:
            signature = [
                tf.TensorSpec([None, *key], tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([2], tf.int32),
                tf.TensorSpec([], tf.int32),
            ]
            self._functions[key] = compiled(self._single_run, signature)
        return self._functions[key]

    # === One restart (traced) ===
    def _single_run(self, x, y, eps, seed, target_rank):
        """(last misclassified iterate or x, misclassified at some iterate) for every example."""
        steps, batch = self.steps, tf.shape(x)[0]
        per_example = tf.concat([[batch], tf.ones([3], tf.int32)], 0)
        clean = self.model_fn(x)
        target = tf.argsort(clean, axis=-1)[:, -target_rank]
        initially_correct = tf.argmax(clean, axis=-1, output_type=tf.int32) == y

        def loss_of(logits):
            if self.loss == "ce":
                return tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            if self.loss == "dlr":
                return dlr_loss(logits, y)
            return targeted_dlr_loss(logits, y, target)

        def gradient(x_adv):
            """EOT-averaged ∇ₓ loss, with the last pass's logits and loss (as the reference)."""
            total = tf.zeros_like(x_adv)
            for _ in range(self.eot):
                with tf.GradientTape() as tape:
                    tape.watch(x_adv)
                    logits = self.model_fn(x_adv)
                    loss = loss_of(logits)
                    summed = tf.reduce_sum(loss)
                total += tape.gradient(summed, x_adv)
            return total / self.eot, logits, loss

        # Start: x + ε·t/‖t‖, uniform t for L∞, Gaussian for L2.
        if self.norm == "linf":
            t = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        else:
            t = tf.random.stateless_normal(tf.shape(x), seed)
        x_adv = clip(x + eps * self._normalize(t))
        grad, logits, loss = gradient(x_adv)
        correct = tf.argmax(logits, axis=-1, output_type=tf.int32) == y
        # AutoAttack's check: points the attack works on whose gradient at the start is zero.
        flat = tf.reduce_sum(tf.abs(tf.reshape(grad, [batch, -1])), axis=1)
        zero = tf.reduce_sum(tf.cast(initially_correct & (flat == 0), tf.int32))
        state = {
            "x_adv": x_adv,
            "x_old": x_adv,
            "grad": grad,
            "x_best": x_adv,
            "grad_best": grad,
            "loss_best": loss,
            "x_found": x_adv,
            "correct": correct,
            "step": tf.fill(per_example, 2.0 * eps),
            "losses": tf.zeros([steps, batch]),
            "loss_at_check": loss,
            "halved_at_check": tf.ones([batch], tf.bool),
        }
        plan = checkpoints(steps)
        is_check = tf.constant([i in dict(plan) for i in range(steps)])
        window = tf.constant([dict(plan).get(i, 1) for i in range(steps)], tf.int32)

        def body(i, s):
            # Momentum step: a = 1 on the first step, 0.75 after.
            a = tf.where(i > 0, 0.75, 1.0)
            moved = self._project(s["x_adv"] + s["step"] * self._direction(s["grad"]), x, eps)
            x_new = s["x_adv"] + (moved - s["x_adv"]) * a + (s["x_adv"] - s["x_old"]) * (1 - a)
            x_new = self._project(x_new, x, eps)
            grad, logits, loss = gradient(x_new)

            # Keep the last misclassified iterate and the best-loss point.
            wrong = tf.argmax(logits, axis=-1, output_type=tf.int32) != y
            new = {
                "x_old": s["x_adv"],
                "correct": s["correct"] & ~wrong,
                "x_found": _where(wrong, x_new, s["x_found"]),
                "losses": tf.tensor_scatter_nd_update(s["losses"], [[i]], [loss]),
            }
            better = loss > s["loss_best"]
            new["x_best"] = _where(better, x_new, s["x_best"])
            new["grad_best"] = _where(better, grad, s["grad_best"])
            new["loss_best"] = tf.where(better, loss, s["loss_best"])

            # Checkpoint: halve η where the loss oscillates or stalled, restart from the best.
            def check():
                rows = tf.range(steps)[:, None]
                in_window = (rows > i - window[i]) & (rows <= i)
                # The reference compares each step with the one before, wrapping to the
                # (still zero) last row at step 0; tf.roll reproduces that.
                increased = new["losses"] > tf.roll(new["losses"], 1, axis=0)
                count = tf.reduce_sum(tf.cast(increased & in_window, tf.float32), axis=0)
                oscillating = count <= tf.cast(window[i], tf.float32) * self.rho
                stalled = ~s["halved_at_check"] & (s["loss_at_check"] >= new["loss_best"])
                halve = oscillating | stalled
                return (
                    _where(halve, s["step"] / 2.0, s["step"]),
                    _where(halve, new["x_best"], x_new),
                    _where(halve, new["grad_best"], grad),
                    new["loss_best"],
                    halve,
                )

            def no_check():
                return s["step"], x_new, grad, s["loss_at_check"], s["halved_at_check"]

            step, x_next, grad_next, loss_at_check, halved = tf.cond(is_check[i], check, no_check)
            new.update(
                x_adv=x_next,
                grad=grad_next,
                step=step,
                loss_at_check=loss_at_check,
                halved_at_check=halved,
            )
            return i + 1, new

        _, state = tf.while_loop(
            lambda i, s: i < steps, body, (tf.constant(0), state), parallel_iterations=1
        )
        fooled = initially_correct & ~state["correct"]
        return _where(fooled, state["x_found"], x), fooled, zero

    def _normalize(self, t):
        flat = tf.reshape(t, [tf.shape(t)[0], -1])
        if self.norm == "linf":
            size = tf.reduce_max(tf.abs(flat), axis=1)
        else:
            size = tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))
        return t / (size[:, None, None, None] + 1e-12)

    def _direction(self, grad):
        return tf.sign(grad) if self.norm == "linf" else self._normalize(grad)

    def _project(self, x_adv, x, eps):
        """Into the ε-ball around x and the [0, 1] box, the reference's way for each norm."""
        if self.norm == "linf":
            return clip(tf.clip_by_value(x_adv, x - eps, x + eps))
        delta = x_adv - x
        size = tf.sqrt(tf.reduce_sum(tf.square(delta), axis=[1, 2, 3], keepdims=True))
        return clip(x + self._normalize(delta) * tf.minimum(eps, size))


class _OneLoss(APGD):
    """APGD with the loss its class names: the registered variants."""

    fixed_loss: ClassVar[str]

    def __init__(self, model, **settings):
        super().__init__(model, loss=self.fixed_loss, **settings)

    def get_config(self) -> dict:
        return {k: v for k, v in super().get_config().items() if k != "loss"}


@register_attack
class APGDCE(_OneLoss):
    """APGD on the cross-entropy, AutoAttack's first attack."""

    name, fixed_loss = "apgd-ce", "ce"


@register_attack
class APGDDLR(_OneLoss):
    """APGD on the DLR margin, invariant to the logits' scale and shift (AutoAttack's `plus`)."""

    name, fixed_loss = "apgd-dlr", "dlr"


@register_attack
class APGDT(_OneLoss):
    """APGD-T: the targeted DLR loss towards the class of the `target_rank`-th highest clean
    logit (AutoAttack runs ranks 2 to 10)."""

    name, fixed_loss, targeted = "apgd-t", "dlr_targeted", True


def _where(condition, a, b):
    """`tf.where` for a per-example condition [B] over tensors [B, ...]."""
    shape = tf.concat([tf.shape(condition), tf.ones([tf.rank(a) - 1], tf.int32)], 0)
    return tf.where(tf.reshape(condition, shape), a, b)
