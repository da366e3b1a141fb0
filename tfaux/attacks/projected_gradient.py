"""PGD and BIM: projected gradient descent as a graph loop over cleverhans' FGM step, with
stateless random starts and restarts that keep the worst case per example.

cleverhans' `projected_gradient_descent` is a Python loop, unrolled k times in a graph and
retraced per ε; ours loops in `tf.while_loop` over cleverhans' own FGM step and `clip_eta`, adds
stateless random starts (reproducible with a seed) and restarts keeping the worst case. BIM is
this PGD without a random start, which is what cleverhans' `basic_iterative_method` is (its
Python `assert eps_iter <= eps` cannot take tensors); both run one trace.

`pgd` is the loop itself, which the adversarial training loops call inside their train step.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.utils import clip_eta

from tfaux.attacks.gradient import GradientAttack
from tfaux.attacks.protocol import check_settings, register_attack
from tfaux.attacks.threat_model import CLIP_MAX, CLIP_MIN, NORMS, clip, random_in_ball


@register_attack
class PGD(GradientAttack):
    """PGD-k (Madry et al.), L∞ or L2, from random starts; the worst restart per example counts.

    Args:
        model: a Keras classifier or an `AttackedModel`.
        norm: "linf" or "l2".
        steps: iterations k.
        step_size: α per step; default 2.5·ε/k (Madry et al.).
        restarts: runs from independent random starts; the worst case per example is kept.
        random_start: start uniformly inside the ε-ball.

    Example:
        x_adv = PGD(model, steps=20, restarts=2)(x, y, eps=0.1, seed=3)

    Reference:
        Madry et al., "Towards deep learning models resistant to adversarial attacks", 2018.
    """

    name = "pgd"
    kind = "pgd"

    def __init__(
        self,
        model,
        *,
        norm: str = "linf",
        steps: int = 20,
        step_size: float | None = None,
        restarts: int = 1,
        random_start: bool = True,
    ):
        super().__init__(model, norm=norm, steps=steps, step_size=step_size)
        check_settings(restarts=restarts)
        self.restarts, self.random_start = restarts, random_start

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "restarts": self.restarts,
            "random_start": self.random_start,
        }

    def label(self, eps: float) -> str:
        """ "PGD-20 ε=0.1", with "×r" for r restarts."""
        return super().label(eps) + (f" ×{self.restarts}" if self.restarts > 1 else "")

    def alpha(self, eps: float) -> float:
        return self.step_size if self.step_size is not None else 2.5 * eps / self.steps

    @staticmethod
    def graph(model_fn, norm):
        def pgd_with_restarts(x, y, p):
            def attempt(restart):
                return pgd(
                    model_fn, x, y, eps=p["eps"], step_size=p["alpha"], steps=p["steps"],
                    norm=norm, random_start=p["random_start"], seed=tf.stack([p["seed"], restart]),
                )  # fmt: skip

            return worst_case(model_fn, x, y, attempt, p["restarts"])

        return pgd_with_restarts


@register_attack
class BIM(PGD):
    """The basic iterative method (Kurakin et al.): PGD from the clean image, one run, α = ε/k.

    Args:
        model: a Keras classifier or an `AttackedModel`.
        norm: "linf" or "l2" (seed 001's Table 8 runs both).
        steps: iterations k.
        step_size: α per step, at most ε; default ε/k.

    Reference:
        Kurakin et al., "Adversarial examples in the physical world", 2017.
    """

    name = "bim"

    def __init__(
        self, model, *, norm: str = "linf", steps: int = 10, step_size: float | None = None
    ):
        super().__init__(model, norm=norm, steps=steps, step_size=step_size, random_start=False)

    def get_config(self) -> dict:
        return {"norm": self.norm, "steps": self.steps, "step_size": self.step_size}

    def check_eps(self, eps: float) -> float:
        eps = super().check_eps(eps)
        if self.step_size is not None and self.step_size > eps:
            raise ValueError(
                f"Expected step_size <= eps for BIM. Received: step_size={self.step_size}, "
                f"eps={eps}"
            )
        return eps

    def alpha(self, eps: float) -> float:
        return GradientAttack.alpha(self, eps)  # ε/k, not PGD's 2.5ε/k


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
        return clip(x + random_in_ball(tf.shape(x), norm, eps, seed))

    if start is not None:
        x_adv = clip(x + clip_eta(start - x, order, eps))
    elif tf.is_tensor(random_start):  # one trace serves PGD and BIM
        x_adv = tf.cond(random_start, uniform_start, lambda: x)
    else:
        x_adv = uniform_start() if random_start else x

    def step(i, x_adv):
        x_adv = fast_gradient_method(
            model_fn, x_adv, step_size, order, clip_min=CLIP_MIN, clip_max=CLIP_MAX, y=y
        )
        return i + 1, clip(x + clip_eta(x_adv - x, order, eps))

    _, x_adv = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), x_adv))
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
