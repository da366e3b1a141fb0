"""Whether a difference between two variants is real: intervals, paired tests and a verdict.

Two situations, two designs:

- Over seeds (`mean_ci`, `seed_values`): a few runs per variant, each seed's runs trained
  from the same seed, so the per-seed differences are paired; Student t intervals.
- Within one seed, over test examples (`paired_test`, `accuracy_ci`): every variant is scored
  on the same test images, so two variants' correctness is paired example by example.

Comparisons that a report judges (a table of variants, a recipe's claims) go through one
path: an `Evidence` (`paired_correctness`, `seed_values`, `paired_bootstrap`) says what the data
can tell (a difference, an interval at any confidence, a p-value, the smallest detectable
effect, and which test decided), and `judge` corrects a family of them with Holm's step-down
procedure. The words come from the corrected result: `table_verdict` for "variant vs
baseline", `claim_verdict` for a paper's claim.

All quantities are in the units given (fractions of 1 for accuracies); reports scale them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.power import TTestPower

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference at this budget"
HOLDS = "holds"
HOLDS_SMALLER = "holds, smaller than claimed"
DOES_NOT_HOLD = "does not hold"
RULED_OUT = "does not hold: the claimed effect is ruled out"
UNDECIDED = "undecided at this budget"
POWER = 0.8  # the power a minimum detectable effect is quoted at
MIN_DISTINCT_SEEDS = 3  # fewer distinct per-seed differences: no t interval over seeds
BOOTSTRAP_REPLICATES = 2000


class Estimate(NamedTuple):
    """A value with its confidence interval; NaN bounds where the interval is undefined."""

    estimate: float
    low: float
    high: float


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
    low, high = bonett_price(variant_only, baseline_only, n, confidence)
    return PairedTest(
        difference=(variant_only - baseline_only) / n,
        low=low,
        high=high,
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


def distinct(values, decimals: int = 9) -> int:
    """How many distinct values, after rounding away float noise (0.1 + 0.2 vs 0.3)."""
    return len(np.unique(np.round(np.asarray(values, dtype=np.float64), decimals)))


# === Evidence: what a comparison of variant a with variant b can tell ===
@dataclass(frozen=True)
class Evidence:
    """a − b as the data show it, and the test that judges it.

    Attributes:
        difference: the estimate of a − b.
        p_value: two-sided, NaN where no test is possible (then it is never a verdict).
        test: which test decided, in words for the report.
        n: test images or seeds, whichever the test counts.
        interval_at: the CI of a − b at a confidence (the corrected level of `judge`).
        mde_at: the smallest |a − b| detected with `power` at a two-sided level α.
    """

    difference: float
    p_value: float
    test: str
    n: int
    interval_at: Callable[[float], tuple[float, float]]
    mde_at: Callable[[float, float], float]


def _no_interval(confidence: float) -> tuple[float, float]:
    return math.nan, math.nan


def _no_mde(alpha: float, power: float) -> float:
    return math.nan


def no_evidence(difference: float, test: str, n: int) -> Evidence:
    """A comparison no test can judge (one seed without per-example results, say)."""
    return Evidence(difference, math.nan, test, n, _no_interval, _no_mde)


def paired_correctness(pairs: Sequence[tuple]) -> Evidence:
    """a − b accuracy from per-example correctness on the same test images, one pair per seed.

    With `MIN_DISTINCT_SEEDS` or more seeds whose differences are distinct: a paired t over
    seeds (`seed_values`), which counts what changes between trained models. Otherwise the
    seeds' paired tests are combined over their test images: McNemar's exact test on the
    pooled discordant pairs (stratified by seed: under no difference each seed's b_s is
    Binomial(b_s + c_s, 1/2), so Σ b_s is Binomial(Σ (b_s + c_s), 1/2)) with the Bonett–Price
    interval of the pooled counts. That combination judges these trained models on these
    images only, and the test named in the report says so.

    Args:
        pairs: per seed, (a's correctness, b's correctness): 1-D boolean arrays of one length.
    """
    if not pairs:
        raise ValueError("Expected at least one (a, b) pair of correctness arrays. Received: none")
    counts = []
    for a, b in pairs:
        a, b = _booleans(a, "a's correctness"), _booleans(b, "b's correctness")
        if a.shape != b.shape:
            raise ValueError(
                "Expected a's and b's correctness on the same test images. "
                f"Received: {a.shape[0]} and {b.shape[0]} examples."
            )
        counts.append((int(np.sum(a & ~b)), int(np.sum(~a & b)), len(a)))
    differences = [(only_a - only_b) / n for only_a, only_b, n in counts]
    if len(pairs) >= MIN_DISTINCT_SEEDS and distinct(differences) >= MIN_DISTINCT_SEEDS:
        return seed_differences(differences, limit=1.0)
    only_a, only_b, n = (sum(c[i] for c in counts) for i in range(3))
    discordant = only_a + only_b
    p_value = stats.binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    if len(pairs) == 1:
        test = f"McNemar exact, {n:,} images"
    else:
        test = f"McNemar exact stratified by seed, {len(pairs)} seeds × {n // len(pairs):,} images"

    def interval_at(confidence: float) -> tuple[float, float]:
        return bonett_price(only_a, only_b, n, confidence)

    def mde_at(alpha: float, power: float) -> float:
        return mcnemar_mde(n, (discordant + 2) / (n + 2), alpha, power)

    return Evidence((only_a - only_b) / n, float(p_value), test, n, interval_at, mde_at)


def bonett_price(only_a: int, only_b: int, n: int, confidence: float = 0.95):
    """The Bonett–Price adjusted Wald interval of a − b from the discordant counts (see
    `paired_test`)."""
    _check_confidence(confidence)
    p_a, p_b = (only_a + 1) / (n + 2), (only_b + 1) / (n + 2)
    adjusted = p_a - p_b
    half = stats.norm.ppf((1 + confidence) / 2) * math.sqrt((p_a + p_b - adjusted**2) / (n + 2))
    return float(max(-1.0, adjusted - half)), float(min(1.0, adjusted + half))


def mcnemar_mde(n: int, discordance: float, alpha: float = 0.05, power: float = POWER) -> float:
    """The smallest accuracy difference δ McNemar's test detects with `power` at level α on
    `n` paired images whose fraction of discordant pairs is `discordance` (Connor 1987:
    n = (z_{α/2} √ψ + z_β √(ψ − δ²))² / δ², solved for δ). A difference larger than the
    discordance makes the pairs at least that discordant, so ψ grows with δ beyond it.

    Reference:
        Connor, "Sample size for testing differences in proportions for the paired-sample
        design", Biometrics 43(1), 1987.
    """
    if not (0 < alpha < 1 and 0 < power < 1 and n > 0 and 0 <= discordance <= 1):
        raise ValueError(
            "Expected 0 < alpha, power < 1, n > 0 and 0 <= discordance <= 1. Received: "
            f"n={n}, discordance={discordance}, alpha={alpha}, power={power}"
        )
    z_alpha, z_beta = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)

    def surplus(delta: float) -> float:
        psi = max(discordance, delta)
        return (
            z_alpha * math.sqrt(psi)
            + z_beta * math.sqrt(max(psi - delta**2, 0.0))
            - (delta * math.sqrt(n))
        )

    if surplus(1.0) > 0:  # too few images for any difference
        return math.nan
    return float(optimize.brentq(surplus, 1e-12, 1.0))


def mcnemar_sample_size(
    effect: float, discordance: float, alpha: float = 0.05, power: float = POWER
) -> int:
    """Paired test images McNemar's test needs to detect an accuracy difference `effect` with
    `power` at level α when a fraction `discordance` of the images is right for only one model
    (Connor 1987, the inverse of `mcnemar_mde`): what sizes an evaluation, e.g. AutoAttack's
    `evaluation.autoattack_examples`, before it runs."""
    if not (0 < effect <= discordance <= 1 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(
            "Expected 0 < effect <= discordance <= 1 and 0 < alpha, power < 1. Received: "
            f"effect={effect}, discordance={discordance}, alpha={alpha}, power={power}"
        )
    z_alpha, z_beta = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    root = z_alpha * math.sqrt(discordance) + z_beta * math.sqrt(discordance - effect**2)
    return math.ceil(root**2 / effect**2)


def seed_values(a_values, b_values) -> Evidence:
    """a − b from one number per seed and variant (paired by seed): a paired t over seeds
    when `MIN_DISTINCT_SEEDS` or more per-seed differences are distinct, else no test."""
    a, b = _numbers(a_values, "a_values"), _numbers(b_values, "b_values")
    if a.shape != b.shape:
        raise ValueError(
            "Expected one b value per a value (the same seeds). "
            f"Received: {len(a)} and {len(b)} values."
        )
    return seed_differences(a - b)


def seed_differences(differences, limit: float | None = None) -> Evidence:
    """A paired t over seeds of the per-seed differences a − b; its minimum detectable effect
    comes from their standard deviation (`statsmodels` TTestPower). `limit` bounds the
    interval where a − b cannot exceed it (1 for a difference of accuracies: with 3 seeds, t's
    2 degrees of freedom easily reach past ±100 points)."""
    d = _numbers(differences, "differences")
    k = len(d)
    if distinct(d) < MIN_DISTINCT_SEEDS:
        return no_evidence(
            float(d.mean()), f"none: {k} seed(s), {distinct(d)} distinct difference(s)", k
        )
    result = stats.ttest_1samp(d, 0.0)
    sd = float(np.std(d, ddof=1))

    def interval_at(confidence: float) -> tuple[float, float]:
        _check_confidence(confidence)
        low, high = result.confidence_interval(confidence)
        if limit is not None:
            low, high = max(low, -limit), min(high, limit)
        return float(low), float(high)

    def mde_at(alpha: float, power: float) -> float:
        return _standardized_t_mde(k, alpha, power) * sd

    return Evidence(
        float(d.mean()), float(result.pvalue), f"paired t over {k} seeds", k, interval_at, mde_at
    )


@functools.lru_cache(maxsize=256)
def _standardized_t_mde(seeds: int, alpha: float, power: float) -> float:
    """The effect in SD units a paired t over `seeds` detects with `power` at level α (a
    noncentral-t root, ~10 ms: cached, a report asks for the same few many times)."""
    return float(TTestPower().solve_power(nobs=seeds, alpha=alpha, power=power))


def paired_bootstrap(
    statistics: Sequence[Callable[[np.ndarray], np.ndarray]],
    sizes: Sequence[int],
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> Evidence:
    """a − b of a statistic that is not a mean of per-example outcomes (CE, mCE), paired by
    resampling the test images: each replicate draws the same images for a, b (and whatever
    reference the statistic divides by).

    Per seed, `statistics[s](weights)` maps image weights [R, n] (each row sums to 1; the
    observed data is the uniform row) to R values of a − b. With `MIN_DISTINCT_SEEDS` or more
    distinct per-seed differences, a paired t over seeds decides; otherwise the replicates are
    averaged over seeds (a bootstrap stratified by seed): percentile interval, the two-sided
    bootstrap p-value, and an MDE of (z_{α/2} + z_β) times the replicates' standard deviation.

    Args:
        statistics: one function per seed.
        sizes: the number of test images of each seed.
        replicates: bootstrap resamples.
        seed: the resampling's seed (a report is reproducible).
    """
    if len(statistics) != len(sizes) or not statistics:
        raise ValueError(
            "Expected one statistic per seed and one size each, at least one. "
            f"Received: {len(statistics)} statistics and {len(sizes)} sizes."
        )
    differences = [
        float(f(np.full((1, n), 1.0 / n))[0]) for f, n in zip(statistics, sizes, strict=True)
    ]
    if len(sizes) >= MIN_DISTINCT_SEEDS and distinct(differences) >= MIN_DISTINCT_SEEDS:
        return seed_differences(differences)
    rng = np.random.default_rng(seed)
    draws = np.zeros(replicates)
    for f, n in zip(statistics, sizes, strict=True):
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=replicates) / n
        draws += np.asarray(f(weights), dtype=np.float64)
    draws /= len(sizes)
    below, above = np.sum(draws <= 0), np.sum(draws >= 0)
    p_value = min(1.0, 2 * (min(below, above) + 1) / (replicates + 1))
    spread = float(np.std(draws, ddof=1))

    def interval_at(confidence: float) -> tuple[float, float]:
        _check_confidence(confidence)
        low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
        return float(low), float(high)

    def mde_at(alpha: float, power: float) -> float:
        return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * spread)

    seeds = f", stratified by seed over {len(sizes)} seeds" if len(sizes) > 1 else ""
    test = f"paired bootstrap over {sizes[0]:,} images ({replicates} resamples{seeds})"
    return Evidence(
        float(np.mean(differences)), p_value, test, int(sum(sizes)), interval_at, mde_at
    )


# === Judging a family of comparisons ===
class Judgement(NamedTuple):
    """One comparison after Holm's correction over its family.

    `low`/`high` are the interval at `confidence`, the level of its Holm step
    (1 − α / (m − rank)); `mde` is the smallest |a − b| detected with `POWER` at the family's
    first-step level α / m (what every comparison of the family is sure to be held to).
    """

    difference: float
    low: float
    high: float
    confidence: float
    p_value: float
    adjusted_p: float
    mde: float
    test: str
    n: int


def judge(evidence: dict, alpha: float = 0.05) -> dict:
    """Holm–Bonferroni over a family of comparisons (a recipe's claims, one metric's column of
    a table): adjusted p-values, each interval at its step's level, each MDE at α / m.
    Comparisons without a test (NaN p) get NaN and are not counted in m.

    Args:
        evidence: {key: Evidence}.
        alpha: the family-wise error rate.

    Returns:
        {key: Judgement}, in the order given.

    Reference:
        Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist.
        6(2), 1979.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"Expected 0 < alpha < 1. Received: alpha={alpha}")
    tested = [key for key, e in evidence.items() if math.isfinite(e.p_value)]
    m = len(tested)
    adjusted, level = {}, {}
    if m:
        p = np.array([evidence[key].p_value for key in tested])
        adjusted = dict(zip(tested, holm(p), strict=True))
        for rank, index in enumerate(np.argsort(p, kind="stable")):
            level[tested[index]] = alpha / (m - rank)
    judged = {}
    for key, e in evidence.items():
        step = level.get(key, alpha)
        low, high = e.interval_at(1 - step) if key in level else (math.nan, math.nan)
        judged[key] = Judgement(
            difference=e.difference,
            low=low,
            high=high,
            confidence=1 - step,
            p_value=e.p_value,
            adjusted_p=float(adjusted.get(key, math.nan)),
            mde=e.mde_at(alpha / max(m, 1), POWER) if key in level else math.nan,
            test=e.test,
            n=e.n,
        )
    return judged


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given: the r-th smallest p times
    (m − r), made non-decreasing along the ranks and capped at 1. (statsmodels'
    `multipletests` gives the same, and the tests check it, but it runs a garbage collection
    per call: 50 ms, which a simulation of thousands of reports cannot afford.)"""
    p = _numbers(p_values, "p_values")
    m, order = len(p), np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def table_verdict(j: Judgement, alpha: float = 0.05) -> str:
    """`BETTER`/`WORSE` when the adjusted p is below α and the step's interval excludes 0 on
    that side, else `NO_DIFFERENCE`: the word never contradicts the numbers beside it."""
    if not j.adjusted_p < alpha:
        return NO_DIFFERENCE
    return verdict(j.low, j.high)


def claim_verdict(j: Judgement, direction: str, effect: float | None, alpha: float = 0.05) -> str:
    """The word for a paper's claim that a − b lies in `direction` ("higher" or "lower"),
    by `effect` if the paper gives one (positive, in a − b's units):

    - `HOLDS` when the adjusted p is below α and the interval lies on the claimed side of 0
      (`HOLDS_SMALLER` if it also lies short of the paper's effect);
    - `DOES_NOT_HOLD` when it lies on the other side; `RULED_OUT` when it contains 0 but
      excludes the paper's effect (the claimed size is ruled out);
    - `UNDECIDED` otherwise (untestable comparisons included).
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"Expected direction 'higher' or 'lower'. Received: {direction!r}")
    if effect is not None and not effect > 0:
        raise ValueError(f"Expected a positive effect or None. Received: effect={effect}")
    if math.isnan(j.low) or math.isnan(j.high):
        return UNDECIDED
    sign = 1.0 if direction == "higher" else -1.0
    low, high = sorted((sign * j.low, sign * j.high))  # on the claimed side when > 0
    significant = j.adjusted_p < alpha
    if significant and low > 0:
        return HOLDS_SMALLER if effect is not None and high < effect else HOLDS
    if significant and high < 0:
        return DOES_NOT_HOLD
    if effect is not None and low <= 0 <= high and high < effect:
        return RULED_OUT
    return UNDECIDED


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
