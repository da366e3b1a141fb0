"""tfaux.statistics against scipy and hand computations on hand-made tables."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tfaux.statistics import (
    BETTER,
    DOES_NOT_HOLD,
    HOLDS,
    HOLDS_SMALLER,
    NO_DIFFERENCE,
    RULED_OUT,
    UNDECIDED,
    WORSE,
    Judgement,
    accuracy_ci,
    bonett_price,
    claim_verdict,
    holm,
    judge,
    mcnemar_mde,
    mcnemar_sample_size,
    mean_ci,
    paired_correctness,
    paired_test,
    proportion_ci,
    seed_differences,
    seed_values,
    table_verdict,
    verdict,
)


def correctness(n: int, both: int, variant_only: int, baseline_only: int):
    """Two models' per-example correctness on n test images: `both` right by both, then the
    ones only the variant gets right, then the ones only the baseline gets right."""
    variant, baseline = np.zeros(n, bool), np.zeros(n, bool)
    variant[:both] = baseline[:both] = True
    variant[both : both + variant_only] = True
    baseline[both + variant_only : both + variant_only + baseline_only] = True
    return variant, baseline


# === Over test examples, one seed ===


def test_a_variant_that_fixes_30_and_breaks_5_of_200_is_better():
    variant, baseline = correctness(200, both=120, variant_only=30, baseline_only=5)
    result = paired_test(variant, baseline)
    assert (result.variant_only, result.baseline_only, result.n) == (30, 5, 200)
    assert result.difference == pytest.approx(variant.mean() - baseline.mean()) == 25 / 200
    # McNemar exact: twice the binomial tail P(X <= 5 | 35, 1/2), by hand.
    tail = sum(math.comb(35, k) for k in range(6)) / 2**35
    assert result.p_value == pytest.approx(2 * tail) and result.p_value < 1e-4
    assert 0 < result.low < result.difference < result.high
    assert verdict(result.low, result.high) == BETTER


def test_bonett_price_interval_matches_its_closed_form():
    # Bonett & Price (2012) eq. for b=30, c=5, n=200, with z from the normal quantile.
    variant, baseline = correctness(200, both=120, variant_only=30, baseline_only=5)
    p_b, p_c = 31 / 202, 6 / 202
    half = stats.norm.ppf(0.975) * math.sqrt((p_b + p_c - (p_b - p_c) ** 2) / 202)
    result = paired_test(variant, baseline)
    assert (result.low, result.high) == pytest.approx((p_b - p_c - half, p_b - p_c + half))
    wider = paired_test(variant, baseline, confidence=0.99)
    assert wider.low < result.low and wider.high > result.high


def test_equal_fixes_and_breaks_are_no_detectable_difference():
    variant, baseline = correctness(200, both=120, variant_only=10, baseline_only=10)
    result = paired_test(variant, baseline)
    assert result.difference == 0 and result.p_value == 1.0
    assert result.low < 0 < result.high
    assert verdict(result.low, result.high) == NO_DIFFERENCE


def test_identical_predictions_are_no_detectable_difference():
    variant, _ = correctness(50, both=30, variant_only=0, baseline_only=0)
    result = paired_test(variant, variant.copy())
    assert result.p_value == 1.0 and result.low < 0 < result.high
    assert verdict(result.low, result.high) == NO_DIFFERENCE


def test_a_variant_that_breaks_more_than_it_fixes_is_worse():
    variant, baseline = correctness(500, both=300, variant_only=4, baseline_only=25)
    result = paired_test(variant, baseline)
    assert result.p_value == pytest.approx(stats.binomtest(4, 29, 0.5).pvalue)
    assert result.p_value < 0.001
    assert result.low < result.high < 0
    assert verdict(result.low, result.high) == WORSE


@pytest.mark.parametrize("n", [200, 10_000])
def test_the_interval_agrees_with_mcnemar_away_from_the_margin(n):
    # Where McNemar's exact p is clearly below or above 0.05 the CI says the same; in between
    # (0.04 to 0.07) the exact test is known to be conservative and the two may differ.
    for b in range(0, 41, 3):
        for c in range(0, 41, 2):
            variant, baseline = correctness(n, both=100, variant_only=b, baseline_only=c)
            r = paired_test(variant, baseline)
            if 0.04 < r.p_value < 0.07:
                continue
            excludes_zero = verdict(r.low, r.high) != NO_DIFFERENCE
            assert excludes_zero == (r.p_value < 0.05), (b, c, r)


def test_few_fixes_and_no_breaks_are_not_a_verdict():
    # A bootstrap interval called this "better"; McNemar's p is 0.25.
    variant, baseline = correctness(200, both=100, variant_only=3, baseline_only=0)
    result = paired_test(variant, baseline)
    assert result.p_value == pytest.approx(0.25)
    assert verdict(result.low, result.high) == NO_DIFFERENCE


def test_paired_test_rejects_arrays_of_other_examples():
    with pytest.raises(ValueError, match="same test examples"):
        paired_test(np.ones(5, bool), np.ones(6, bool))
    with pytest.raises(ValueError, match="boolean"):
        paired_test(np.ones(5), np.ones(5))


# === One accuracy: Wilson interval ===


def test_accuracy_ci_is_the_wilson_interval():
    correct = np.arange(200) < 150  # 75 %
    accuracy, low, high = accuracy_ci(correct)
    # Wilson by hand: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z, p, n = stats.norm.ppf(0.975), 0.75, 200
    centre, spread = p + z**2 / (2 * n), z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert accuracy == 0.75
    assert (low, high) == pytest.approx(
        ((centre - spread) / (1 + z**2 / n), (centre + spread) / (1 + z**2 / n))
    )
    assert proportion_ci(150, 200) == (accuracy, low, high)


def test_wilson_interval_of_zero_accuracy_stays_inside_0_and_1():
    accuracy, low, high = accuracy_ci(np.zeros(40, bool))
    assert accuracy == 0 and low == pytest.approx(0, abs=1e-12) and 0 < high < 0.1


# === Over seeds: Student t ===


def test_mean_ci_is_the_t_interval_by_hand():
    values = [0.90, 0.92, 0.97]
    mean, low, high = mean_ci(values)
    sd = math.sqrt(sum((v - np.mean(values)) ** 2 for v in values) / 2)
    half = stats.t.ppf(0.975, df=2) * sd / math.sqrt(3)
    assert mean == pytest.approx(0.93)
    assert (low, high) == pytest.approx((0.93 - half, 0.93 + half))


def test_mean_ci_of_one_seed_is_the_value_with_an_undefined_interval():
    mean, low, high = mean_ci([0.8])
    assert mean == 0.8 and math.isnan(low) and math.isnan(high)


def test_mean_ci_of_identical_seeds_has_no_width():
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)


def test_seed_values_is_scipys_paired_t_test():
    variant, baseline = [0.91, 0.93, 0.92, 0.95], [0.90, 0.90, 0.91, 0.90]
    result = seed_values(variant, baseline)
    reference = stats.ttest_rel(variant, baseline)
    ci = reference.confidence_interval(0.95)
    assert result.difference == pytest.approx(np.mean(np.subtract(variant, baseline)))
    assert result.interval_at(0.95) == pytest.approx((ci.low, ci.high))
    assert result.p_value == pytest.approx(reference.pvalue) and result.n == 4
    assert "paired t over 4 seeds" in result.test


def test_pairing_detects_what_two_independent_intervals_do_not():
    # Seeds move both models together; their own intervals overlap, the differences do not.
    baseline = np.array([0.80, 0.90, 0.85, 0.95])
    variant = baseline + [0.010, 0.012, 0.011, 0.009]
    assert mean_ci(variant).low < mean_ci(baseline).high
    judged = judge({"v": seed_values(variant, baseline)})["v"]
    assert table_verdict(judged) == BETTER


@pytest.mark.parametrize(
    "differences",
    [[0.01, 0.01, 0.01], [0.1 + 0.2 - 0.3, 0.0, 0.0], [0.01, 0.02, 0.01], [0.02], [0.01, 0.03]],
)
def test_too_few_distinct_seed_differences_give_no_test(differences):
    # Identical seeds used to give [d, d] with p = 0: a verdict from no spread at all.
    result = seed_differences(differences)
    assert math.isnan(result.p_value) and all(map(math.isnan, result.interval_at(0.95)))
    assert table_verdict(judge({"v": result})["v"]) == NO_DIFFERENCE


def test_two_seeds_combine_their_mcnemar_tests_over_the_same_images():
    first = correctness(200, both=120, variant_only=12, baseline_only=4)
    second = correctness(200, both=120, variant_only=10, baseline_only=3)
    result = paired_correctness([first, second])
    # Stratified by seed: Σb = 22 of Σ(b + c) = 29 discordant pairs, Binomial(29, 1/2).
    assert result.p_value == pytest.approx(stats.binomtest(22, 29, 0.5).pvalue)
    assert result.difference == pytest.approx(15 / 400) and result.n == 400
    assert "stratified by seed" in result.test
    assert result.interval_at(0.95) == pytest.approx(bonett_price(22, 7, 400, 0.95))


def test_bonett_price_matches_a_published_worked_example():
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017),
    # ch. 8, complete response before/after consolidation therapy (Cavo et al. 2012):
    # n11=59, n12=6, n21=16, n22=80; Wald with Bonett–Price adjustment: −0.0621
    # (95 % CI −0.1195 to −0.0032), as their R package contingencytables prints it.
    variant, baseline = correctness(161, both=59, variant_only=6, baseline_only=16)
    result = paired_test(variant, baseline)
    assert round(result.difference, 4) == -0.0621
    assert (round(result.low, 4), round(result.high, 4)) == (-0.1195, -0.0032)


def test_holm_equals_statsmodels():
    # A few cases: statsmodels runs a garbage collection per call (seconds with TF loaded).
    rng = np.random.default_rng(0)
    for _ in range(4):
        p = rng.random(rng.integers(2, 9)) ** 3
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    # By hand: sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → kept non-decreasing.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_turns_the_two_marginal_robust_baselines_verdicts_into_no_difference():
    # The numbers: 7 comparisons per table at 5 %; p = 0.024 and 0.0215 pass alone.
    p = [0.024, 0.0215, 0.3, 0.5, 0.7, 0.8, 0.9]
    assert all(q > 0.05 for q in holm(p)[:2])


def _judgement(low, high, adjusted_p):
    return Judgement((low + high) / 2, low, high, 0.95, adjusted_p, adjusted_p, 0.01, "t", 3)


@pytest.mark.parametrize(
    "low, high, p, direction, effect, word",
    [
        (0.01, 0.03, 0.01, "higher", None, HOLDS),
        (0.01, 0.03, 0.01, "higher", 0.05, HOLDS_SMALLER),
        (0.01, 0.06, 0.01, "higher", 0.05, HOLDS),
        (-0.03, -0.01, 0.01, "lower", None, HOLDS),
        (-0.03, -0.01, 0.01, "higher", 0.02, DOES_NOT_HOLD),
        (-0.01, 0.01, 0.4, "higher", 0.05, RULED_OUT),
        (-0.01, 0.06, 0.4, "higher", 0.05, UNDECIDED),
        (0.01, 0.03, 0.07, "higher", None, UNDECIDED),  # the interval alone is not a verdict
        (math.nan, math.nan, math.nan, "higher", 0.05, UNDECIDED),
    ],
)
def test_claim_verdict_words(low, high, p, direction, effect, word):
    assert claim_verdict(_judgement(low, high, p), direction, effect) == word


def test_judge_holds_each_interval_to_its_holm_step():
    evidence = {
        k: seed_values(np.add(base, 0.9), np.full(4, 0.9))
        for k, base in {"small": [0.01, 0.02, 0.03, 0.02], "big": [0.1, 0.12, 0.11, 0.13]}.items()
    }
    judged = judge(evidence)
    assert judged["big"].confidence == pytest.approx(1 - 0.05 / 2)  # the smallest p: α / m
    assert judged["small"].confidence == pytest.approx(0.95)
    assert (judged["big"].low, judged["big"].high) == pytest.approx(
        evidence["big"].interval_at(0.975)
    )
    assert judged["small"].adjusted_p == pytest.approx(
        max(evidence["small"].p_value, 2 * evidence["big"].p_value)
    )


def test_verdict_words():
    assert verdict(0.01, 0.05) == BETTER == "better"
    assert verdict(-0.05, -0.01) == WORSE == "worse"
    assert verdict(-0.01, 0.01) == NO_DIFFERENCE == "no detectable difference at this budget"
    assert verdict(math.nan, math.nan) == NO_DIFFERENCE


@pytest.mark.parametrize("effect, discordance", [(0.02, 0.1), (0.005, 0.05), (0.05, 0.3)])
def test_mcnemar_sample_size_is_the_inverse_of_the_mde(effect, discordance):
    n = mcnemar_sample_size(effect, discordance, alpha=0.01)
    assert mcnemar_mde(n, discordance, alpha=0.01) <= effect < mcnemar_mde(n - 1, discordance, 0.01)
    # The closed form by hand: δ = 0.02 at ψ = 0.1, two-sided 5 %, 80 % power.
    assert mcnemar_sample_size(0.02, 0.1) == math.ceil(
        (stats.norm.ppf(0.975) * math.sqrt(0.1) + stats.norm.ppf(0.8) * math.sqrt(0.1 - 0.0004))
        ** 2
        / 0.0004
    )


def test_a_t_interval_of_accuracy_differences_stays_within_100_points():
    pairs = []
    for only_a, only_b in ((60, 0), (0, 55), (30, 2)):  # wildly different seeds
        pairs.append(correctness(100, both=10, variant_only=only_a, baseline_only=only_b))
    evidence = paired_correctness(pairs)
    low, high = evidence.interval_at(0.999)
    assert evidence.test == "paired t over 3 seeds" and (low, high) == (-1.0, 1.0)
