"""Adversarial attacks on the primary logits.

`cleverhans_based`: FGSM, PGD, BIM, MIM, C&W-L2 and SPSA over cleverhans' TF2 code, compiled.
`apgd`, `fab` and `square`: the attacks of AutoAttack (Croce & Hein 2020), written natively in
TensorFlow, one `tf.function` with a `tf.while_loop` per attack.
"""

from tfaux.attacks.cleverhans_based import (
    ATTACKS,
    CLIP_MAX,
    CLIP_MIN,
    NORMS,
    Attacker,
    AttackSpec,
    check_eps,
    logits_fn,
    mim,
    pgd,
    random_in_ball,
    worst_case,
)
from tfaux.attacks.fab import FAB, FABTargeted
from tfaux.attacks.square import Square

__all__ = [
    "ATTACKS",
    "CLIP_MAX",
    "CLIP_MIN",
    "NORMS",
    "AttackSpec",
    "Attacker",
    "FAB",
    "FABTargeted",
    "Square",
    "check_eps",
    "logits_fn",
    "mim",
    "pgd",
    "random_in_ball",
    "worst_case",
]
