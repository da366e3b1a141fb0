"""Whether a difference between two variants is real: intervals, paired tests and a verdict.

Two situations, two designs:

- Over seeds (`mean_ci`, `paired_seed_difference`): a few runs per variant, each seed's runs
  trained from the same seed, so the per-seed differences are paired; Student t intervals.
- Within one seed, over test examples (`paired_test`, `accuracy_ci`): every variant is scored
  on the same test images, so two variants' correctness is paired example by example.

All quantities are in the units given (fractions of 1 for accuracies); reports scale them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference at this budget"


class Estimate(NamedTuple):
    """A value with its confidence interval; NaN bounds where the interval is undefined."""

    estimate: float
    low: float
    high: float


class SeedDifference(NamedTuple):
    """Variant − baseline, mean over seeds of the per-seed differences (paired t)."""

    difference: float
    low: float
    high: float
    p_value: float
    n: int


class PairedTest(NamedTuple):
    """Variant − baseline accuracy on the same test examples, with McNemar's exact test.

    `variant_only` (b) counts examples only the variant gets right, `baseline_only` (c) those only
    the baseline gets right; they are all that the difference (b − c) / n depends on.
    """

    difference: float
    low: float
    high: float
    p_value: float
    variant_only: int
    baseline_only: int
    n: int


def mean_ci(values, confidence: float = 0.95) -> Estimate:
    """Mean over seeds with a Student t interval (seeds are few, the variance is estimated).

    Args:
        values: one number per seed.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        (mean, low, high); low and high are NaN for a single value, where no spread is known.
    """
    x = _numbers(values, "values")
    _check_confidence(confidence)
    mean = float(x.mean())
    if len(x) < 2:
        return Estimate(mean, math.nan, math.nan)
    sem = float(stats.sem(x))
    if sem == 0.0:  # identical seeds: scipy's interval would be NaN for a zero scale
        return Estimate(mean, mean, mean)
    low, high = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=sem)
    return Estimate(mean, float(low), float(high))


def paired_seed_difference(
    variant_values, baseline_values, confidence: float = 0.95
) -> SeedDifference:
    """Variant − baseline over seeds, paired by seed: a t interval of the per-seed differences
    and the paired t-test's two-sided p-value (`scipy.stats.ttest_rel`).

    Pairing removes what the two share in a seed (data order, initialization luck), so it
    detects smaller differences than comparing two independent means.

    Args:
        variant_values: the variant's metric, one per seed.
        baseline_values: the baseline's metric for the same seeds, in the same order.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        (difference, low, high, p_value, n); NaN interval and p-value for a single seed.
    """
    v = _numbers(variant_values, "variant_values")
    b = _numbers(baseline_values, "baseline_values")
    if v.shape != b.shape:
        raise ValueError(
            "Expected one baseline value per variant value (the same seeds). "
            f"Received: {len(v)} variant and {len(b)} baseline values."
        )
    _check_confidence(confidence)
    d = v - b
    difference = float(d.mean())
    if len(d) < 2:
        return SeedDifference(difference, math.nan, math.nan, math.nan, 1)
    if np.all(d == d[0]):  # no spread: scipy returns NaN; the sign is then certain
        return SeedDifference(difference, difference, difference, float(difference == 0), len(d))
    result = stats.ttest_rel(v, b)
    ci = result.confidence_interval(confidence)
    return SeedDifference(difference, float(ci.low), float(ci.high), float(result.pvalue), len(d))


def paired_test(correct_variant, correct_baseline, confidence: float = 0.95) -> PairedTest:
    """Variant − baseline accuracy on the same test examples: a CI of the difference and
    McNemar's exact p-value. The verdict reads the CI (see `verdict`).

    The CI is the Bonett–Price adjusted Wald interval, a closed form in the discordant counts
    b and c: with p̃_b = (b + 1) / (n + 2), p̃_c = (c + 1) / (n + 2) and Δ̃ = p̃_b − p̃_c,
    Δ̃ ± z · sqrt((p̃_b + p̃_c − Δ̃²) / (n + 2)). It keeps its nominal coverage down to a
    handful of discordant pairs and it agrees with McNemar's exact test except at the margin,
    where the exact test is the conservative one (p just above 0.05). A paired bootstrap does
    not: it cannot resample a disagreement it never saw, so with 3 fixes and 0 breaks its
    interval excluded 0 while McNemar's p was 0.25 (and it took seconds per comparison).

    McNemar's test conditions on the b + c discordant pairs: under "no difference" each is
    equally likely to favour either model, so b ~ Binomial(b + c, 1/2) (`scipy.stats.binomtest`,
    two-sided).

    Args:
        correct_variant: per test example, whether the variant classified it correctly.
        correct_baseline: the same for the baseline, same examples in the same order.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        (difference, low, high, p_value, variant_only, baseline_only, n), accuracies as fractions.

    Reference:
        Bonett & Price, "Adjusted Wald confidence interval for a difference of binomial
        proportions based on paired data", J. Educ. Behav. Stat. 37(4), 2012; recommended by
        Fagerland, Lydersen & Laake, "Recommended tests and confidence intervals for paired
        binomial proportions", Stat. Med. 33(16), 2014. McNemar, Psychometrika 12(2), 1947.
    """
    v = _booleans(correct_variant, "correct_variant")
    b = _booleans(correct_baseline, "correct_baseline")
    if v.shape != b.shape:
        raise ValueError(
            "Expected correctness of both models on the same test examples. "
            f"Received: {v.shape[0]} and {b.shape[0]} examples."
        )
    _check_confidence(confidence)
    n = int(v.shape[0])
    variant_only, baseline_only = int(np.sum(v & ~b)), int(np.sum(~v & b))
    discordant = variant_only + baseline_only
    p_value = stats.binomtest(variant_only, discordant, 0.5).pvalue if discordant else 1.0
    p_b, p_c = (variant_only + 1) / (n + 2), (baseline_only + 1) / (n + 2)
    adjusted = p_b - p_c
    half = stats.norm.ppf((1 + confidence) / 2) * math.sqrt((p_b + p_c - adjusted**2) / (n + 2))
    return PairedTest(
        difference=(variant_only - baseline_only) / n,
        low=max(-1.0, adjusted - half),
        high=min(1.0, adjusted + half),
        p_value=float(p_value),
        variant_only=variant_only,
        baseline_only=baseline_only,
        n=n,
    )


def accuracy_ci(correct, confidence: float = 0.95) -> Estimate:
    """One accuracy over the test set with its Wilson interval, for a single seed's error bars.

    Args:
        correct: per test example, whether the model classified it correctly.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        (accuracy, low, high) as fractions.
    """
    c = _booleans(correct, "correct")
    return proportion_ci(int(c.sum()), len(c), confidence)


def proportion_ci(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """`accuracy_ci` from counts (a report that kept the accuracy and n, not the examples).

    Wilson's score interval stays inside [0, 1] and keeps its coverage near 0 % and 100 %, where
    robust accuracies often are; the normal approximation does neither.
    """
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(
            "Expected 0 <= successes <= trials and trials >= 1. "
            f"Received: successes={successes}, trials={trials}."
        )
    _check_confidence(confidence)
    ci = stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return Estimate(successes / trials, float(ci.low), float(ci.high))


def verdict(low: float, high: float) -> str:
    """The word a table prints for a CI of variant − baseline: `BETTER` if it lies above 0,
    `WORSE` if below, else `NO_DIFFERENCE` (an undefined, NaN interval included)."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return NO_DIFFERENCE


def paired_verdict(test, confidence: float = 0.95) -> str:
    """The verdict of a within-seed `paired_test`: its CI must exclude 0 *and* McNemar's exact
    p be below 1 − confidence, so the word never contradicts the p printed beside it."""
    if not test.p_value < 1 - confidence:
        return NO_DIFFERENCE
    return verdict(test.low, test.high)


def _numbers(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"Expected at least one finite number in {name}. Received: {values!r}.")
    return x


def _booleans(values, name: str) -> np.ndarray:
    x = np.asarray(values)
    if x.ndim != 1 or x.size == 0 or x.dtype != np.bool_:
        raise ValueError(
            f"Expected {name} as a non-empty 1-D boolean array (one entry per test example). "
            f"Received: dtype {x.dtype}, shape {x.shape}."
        )
    return x


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"Expected confidence in (0, 1). Received: confidence={confidence}.")
