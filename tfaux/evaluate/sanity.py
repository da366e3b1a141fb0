"""Sanity checks that catch a robustness number produced by a weak attack, not a strong model.

Carlini et al. 2019 ("On evaluating adversarial robustness") and Athalye et al. 2018
("Obfuscated gradients give a false sense of security") list the signatures of gradient masking;
each check below tests one of them on *the same examples* (per-example correctness arrays), so a
difference is the attacks', not the sample's. Every check returns pass / fail / skipped with the
numbers behind it; a failed check means "robustness claim not trustworthy".
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np


class UntrustworthyRobustnessWarning(UserWarning):
    """A sanity check failed: the reported robust accuracy may come from gradient masking."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: skipped (what it needs was not measured)
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def run_checks(
    correct: dict[str, np.ndarray],
    *,
    clean: str,
    fgsm: str | None = None,
    pgd: str | None = None,
    pgd_more_steps: str | None = None,
    pgd_more_restarts: str | None = None,
    large_eps: str | None = None,
    blackbox: tuple[str, ...] = (),
    transfer: str | None = None,
    gradients: dict | None = None,
    num_classes: int,
    tolerance: float = 0.02,
) -> list[Check]:
    """All checks on per-example correctness arrays (True = still classified correctly).

    Arrays may have different lengths (expensive attacks run on a prefix of the test set); each
    comparison uses the common prefix.

    Args:
        correct: attack label → boolean array over the first n test examples.
        clean, fgsm, pgd: labels of the clean, FGSM and PGD-k results at the main ε.
        pgd_more_steps, pgd_more_restarts: PGD with 2k steps and with twice the restarts.
        large_eps: PGD at a budget where any image can be pushed to any class.
        blackbox: gradient-free attacks (SPSA) at the main ε.
        transfer: PGD crafted on a standard-trained surrogate, scored on this model.
        gradients: {"finite": bool, "zero_fraction": float} of the input gradients.
        num_classes: for the chance level.
        tolerance: accuracy difference (fraction) allowed for randomness in the attacks.

    Returns:
        The checks, in a fixed order.
    """
    checks = []
    robust = [k for k in correct if k != clean]
    worst = max(robust, key=lambda k: _gap(correct[k], correct[clean]), default=None)
    if worst is None:
        checks.append(Check("robust <= clean", None, "no attack was run"))
    else:
        gap = _gap(correct[worst], correct[clean])
        checks.append(
            Check(
                "robust <= clean",
                gap <= tolerance,
                f"largest excess of an attack over clean accuracy: {100 * gap:+.1f} points "
                f"({worst})",
            )
        )
    checks.append(_not_better("PGD <= FGSM", correct, pgd, fgsm, tolerance, "iterative attack"))
    checks.append(_not_better("2x steps", correct, pgd_more_steps, pgd, tolerance, "more steps"))
    checks.append(
        _not_better("2x restarts", correct, pgd_more_restarts, pgd, tolerance, "more restarts")
    )
    if large_eps is None:
        checks.append(Check("large eps -> chance", None, "no PGD at a large budget was run"))
    else:
        accuracy, chance = float(np.mean(correct[large_eps])), 1.0 / num_classes
        checks.append(
            Check(
                "large eps -> chance",
                accuracy <= chance + tolerance,
                f"{large_eps}: {100 * accuracy:.1f}% (chance {100 * chance:.1f}%)",
            )
        )
    for name in blackbox:
        checks.append(_not_better(f"{name} not stronger", correct, pgd, name, tolerance, "PGD"))
    checks.append(
        _not_better("transfer not stronger", correct, pgd, transfer, tolerance, "white-box PGD")
    )
    if gradients is None:
        checks.append(Check("input gradients", None, "not measured"))
    else:
        ok = gradients["finite"] and gradients["zero_fraction"] <= 0.01
        checks.append(
            Check(
                "input gradients",
                ok,
                f"finite: {gradients['finite']}, examples with a zero gradient: "
                f"{100 * gradients['zero_fraction']:.1f}%",
            )
        )
    return checks


def warn_failed(checks: list[Check], context: str = "") -> list[Check]:
    """Warns loudly once per failed check; returns the failed checks."""
    failed = [c for c in checks if c.passed is False]
    for check in failed:
        prefix = f"{context}: " if context else ""
        warnings.warn(
            f"{prefix}robustness claim not trustworthy: {check.name} failed ({check.detail})",
            UntrustworthyRobustnessWarning,
            stacklevel=2,
        )
    return failed


def _not_better(name, correct, stronger, weaker, tolerance, what) -> Check:
    """`stronger` must leave at most `tolerance` more examples correct than `weaker`."""
    if stronger is None or weaker is None or stronger not in correct or weaker not in correct:
        return Check(name, None, "not run")
    gap = _gap(correct[stronger], correct[weaker])
    n = min(len(correct[stronger]), len(correct[weaker]))
    return Check(
        name,
        gap <= tolerance,
        f"{stronger}: {100 * np.mean(correct[stronger][:n]):.1f}% vs {weaker}: "
        f"{100 * np.mean(correct[weaker][:n]):.1f}% on {n} examples ({what})",
    )


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    """Accuracy of `a` minus accuracy of `b` on their common prefix."""
    n = min(len(a), len(b))
    return float(np.mean(a[:n]) - np.mean(b[:n])) if n else 0.0
