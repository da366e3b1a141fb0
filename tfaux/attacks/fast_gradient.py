"""FGSM: one step of size ε along the sign (L∞) or the direction (L2) of the loss gradient,
cleverhans' `fast_gradient_method` with the true labels, compiled.

Reference: Goodfellow et al., "Explaining and harnessing adversarial examples", 2015.
"""

from __future__ import annotations

from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method

from tfaux.attacks.gradient import GradientAttack
from tfaux.attacks.protocol import register_attack
from tfaux.attacks.threat_model import CLIP_MAX, CLIP_MIN, NORMS


@register_attack
class FGSM(GradientAttack):
    """The fast gradient sign method (L∞), or its L2 version with `norm="l2"`.

    Args:
        model: a Keras classifier or an `AttackedModel`.
        norm: "linf" or "l2".

    Example:
        x_adv = FGSM(model)(x, y, eps=0.1)
    """

    name = "fgsm"
    kind = "fgsm"

    def __init__(self, model, *, norm: str = "linf"):
        super().__init__(model, norm=norm, steps=1)

    def get_config(self) -> dict:
        return {"norm": self.norm}

    @property
    def title(self) -> str:
        return "FGSM" + (" L2" if self.norm == "l2" else "")

    def alpha(self, eps: float) -> float:
        return eps  # one step of the whole budget

    @staticmethod
    def graph(model_fn, norm):
        order = NORMS[norm]

        def fgsm(x, y, p):
            return fast_gradient_method(
                model_fn, x, p["eps"], order, clip_min=CLIP_MIN, clip_max=CLIP_MAX, y=y
            )

        return fgsm
