"""Attack names that must load without TensorFlow: `tfaux.experiment.check_recipe` validates
recipes with them before TensorFlow work, and the attacks read them from here: one owner.

AutoAttack's versions and the attacks each one runs, in the reference's order (fra31/auto-attack,
`AutoAttack.set_version` and `run_standard_evaluation`); every name is a registered attack
(`tfaux.attacks.ATTACKS`).
"""

AUTOATTACK_ORDER = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
AUTOATTACK_VERSIONS = tuple(AUTOATTACK_ORDER)
# Every attack AutoAttack can run; a selection (`attacks=`) runs in this order.
AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "apgd-t", "fab-t", "square")
