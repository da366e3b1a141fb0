"""Adversarial attacks on the primary logits.

`cleverhans_based`: FGSM, PGD, BIM, MIM, C&W-L2 and SPSA over cleverhans' TF2 code, compiled.
`apgd`, `fab`, `square` and `autoattack`: AutoAttack (Croce & Hein 2020), written natively in
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

__all__ = [
    "ATTACKS",
    "CLIP_MAX",
    "CLIP_MIN",
    "NORMS",
    "AttackSpec",
    "Attacker",
    "check_eps",
    "logits_fn",
    "mim",
    "pgd",
    "random_in_ball",
    "worst_case",
]
