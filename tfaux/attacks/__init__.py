"""Adversarial attacks on the primary logits, one protocol for all of them.

Every attack is an object bound to a model and called as `attack(x, y, *, eps, seed)`; it declares
its `name`, `norm`, `steps` and the report's `label(eps)` (`tfaux.attacks.protocol`). Each lives in
one file and registers itself in `ATTACKS`, where `create_attack(name, model, **settings)` finds
it:

- `fast_gradient`, `projected_gradient` (PGD, BIM), `momentum_iterative` (MIM): graph loops over
  cleverhans' FGM step; `carlini_wagner` (C&W-L2) and `spsa`: cleverhans' own, fixed for Keras 3.
- `apgd`, `fab` and `square`: the attacks of AutoAttack (Croce & Hein 2020), written natively in
  TensorFlow, one `tf.function` with a `tf.while_loop` per attack.

`threat_model` owns the pixel box, the norms and the ε check; `names` the attack names that
`tfaux.config` reads without TensorFlow. The names below load on first use (PEP 562), so that
`tfaux.attacks.names` imports without TensorFlow.
"""

import importlib

_SOURCES = {
    "ATTACKS": "tfaux.attacks.protocol",
    "Attack": "tfaux.attacks.protocol",
    "AttackedModel": "tfaux.attacks.protocol",
    "ReportColumn": "tfaux.attacks.protocol",
    "create_attack": "tfaux.attacks.protocol",
    "list_attacks": "tfaux.attacks.protocol",
    "logits_fn": "tfaux.attacks.protocol",
    "register_attack": "tfaux.attacks.protocol",
    "CLIP_MAX": "tfaux.attacks.threat_model",
    "CLIP_MIN": "tfaux.attacks.threat_model",
    "NORMS": "tfaux.attacks.threat_model",
    "check_eps": "tfaux.attacks.threat_model",
    "clip": "tfaux.attacks.threat_model",
    "random_in_ball": "tfaux.attacks.threat_model",
    "FGSM": "tfaux.attacks.fast_gradient",
    "BIM": "tfaux.attacks.projected_gradient",
    "PGD": "tfaux.attacks.projected_gradient",
    "pgd": "tfaux.attacks.projected_gradient",
    "worst_case": "tfaux.attacks.projected_gradient",
    "MIM": "tfaux.attacks.momentum_iterative",
    "mim": "tfaux.attacks.momentum_iterative",
    "CarliniWagner": "tfaux.attacks.carlini_wagner",
    "SPSA": "tfaux.attacks.spsa",
    "APGD": "tfaux.attacks.apgd",
    "FAB": "tfaux.attacks.fab",
    "FABTargeted": "tfaux.attacks.fab",
    "Square": "tfaux.attacks.square",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name not in _SOURCES:
        raise AttributeError(f"module 'tfaux.attacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted([*globals(), *_SOURCES])
