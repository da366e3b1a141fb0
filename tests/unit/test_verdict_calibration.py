"""The verdict protocol under simulation: how often it declares a difference that is not there,
and whether it finds one of the size its minimum detectable effect (MDE) promises.

Each scenario draws paired test outcomes with a known truth and runs the report's own path
(`paired_correctness`/`paired_bootstrap` → `judge` → the verdict words). Rates are compared
with their nominal value plus three Monte-Carlo standard errors, so a seeded run that passes is
not luck, and a protocol that overclaims (zero-spread verdicts gave 6.6–8.7 % instead of 5 %)
fails.
"""

import math

import numpy as np
import pytest
from statsmodels.stats.power import TTestPower

from tfaux.statistics import (
    DOES_NOT_HOLD,
    HOLDS,
    HOLDS_SMALLER,
    NO_DIFFERENCE,
    POWER,
    RULED_OUT,
    claim_verdict,
    judge,
    mcnemar_mde,
    paired_bootstrap,
    paired_correctness,
    seed_differences,
    table_verdict,
)

ALPHA = 0.05


def _slack(rate: float, trials: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / trials)


def _pair(rng, n: int, discordance: float, effect: float, accuracy: float = 0.8):
    """Correctness of a and b on n images: a fraction `discordance` of the images is right for
    only one of them, split so that a − b = `effect` in expectation."""
    u = rng.random(n)
    only_a = u < (discordance + effect) / 2
    only_b = (u >= (discordance + effect) / 2) & (u < discordance)
    both = (u >= discordance) & (u < discordance + (1 - discordance) * accuracy)
    return only_a | both, only_b | both


def _rate(trials: int, verdict_of) -> float:
    return sum(verdict_of(i) for i in range(trials)) / trials


# === False verdicts under a true null ===
@pytest.mark.parametrize("seeds", [1, 2])
def test_test_set_noise_alone_gives_at_most_5_percent_false_verdicts(seeds):
    # One or two seeds of 200 paired images: the per-seed differences cannot give a t interval,
    # so the seeds' McNemar tests are combined (the zero-spread t gave 6.6–8.7 % here).
    rng, trials = np.random.default_rng(seeds), 2000

    def false_verdict(_):
        pairs = [_pair(rng, 200, 0.12, 0.0) for _ in range(seeds)]
        judged = judge({"a": paired_correctness(pairs)}, ALPHA)["a"]
        return table_verdict(judged, ALPHA) != NO_DIFFERENCE

    rate = _rate(trials, false_verdict)
    assert rate <= ALPHA + _slack(ALPHA, trials)


@pytest.mark.parametrize("seeds", [3, 5])
def test_seed_noise_and_test_noise_give_at_most_5_percent_false_verdicts(seeds):
    # Each seed's models differ by a training-noise term (SD 1 point) on top of the test set's
    # noise; with 3+ distinct differences the t over seeds decides and must absorb both.
    rng, trials = np.random.default_rng(10 + seeds), 2000

    def false_verdict(_):
        pairs = [_pair(rng, 200, 0.12, float(rng.normal(0, 0.01))) for _ in range(seeds)]
        judged = judge({"a": paired_correctness(pairs)}, ALPHA)["a"]
        return table_verdict(judged, ALPHA) != NO_DIFFERENCE

    rate = _rate(trials, false_verdict)
    assert rate <= ALPHA + _slack(ALPHA, trials)


def test_holm_keeps_the_family_wise_rate_over_four_null_claims():
    rng, trials = np.random.default_rng(7), 1500

    def any_false_verdict(_):
        evidence = {k: paired_correctness([_pair(rng, 300, 0.15, 0.0)]) for k in range(4)}
        judged = judge(evidence, ALPHA)
        return any(
            claim_verdict(j, "higher", None, ALPHA) != "undecided at this budget"
            for j in judged.values()
        )

    rate = _rate(trials, any_false_verdict)
    assert rate <= ALPHA + _slack(ALPHA, trials)
    # Without the correction four tests at 5 % each would overclaim: about 1 − 0.95⁴ = 18.5 %.
    uncorrected = _rate(
        trials // 4,
        lambda _: any(
            table_verdict(judge({0: paired_correctness([_pair(rng, 300, 0.15, 0.0)])})[0])
            != NO_DIFFERENCE
            for _ in range(4)
        ),
    )
    assert uncorrected > 2 * ALPHA


def test_a_claim_of_the_true_size_is_rarely_called_ruled_out():
    # The true effect is exactly the paper's: "does not hold" would be a false verdict.
    rng, trials, effect = np.random.default_rng(3), 2000, 0.03

    def false_refusal(_):
        judged = judge({"a": paired_correctness([_pair(rng, 1000, 0.1, effect)])}, ALPHA)["a"]
        return claim_verdict(judged, "higher", effect, ALPHA) in (DOES_NOT_HOLD, RULED_OUT)

    assert _rate(trials, false_refusal) <= ALPHA + _slack(ALPHA, trials)


def test_the_paired_bootstrap_of_a_ratio_gives_at_most_5_percent_false_verdicts():
    # A CE-like statistic: a's errors over a reference's minus b's over the same reference,
    # on the same resampled images; a and b exchangeable.
    rng, trials, n = np.random.default_rng(5), 300, 300

    def false_verdict(_):
        a_right, b_right = _pair(rng, n, 0.2, 0.0, accuracy=0.6)
        reference = rng.random(n) < 0.5
        errors = np.stack([~a_right, ~b_right, reference]).astype(float)  # [3, n]

        def ce_difference(weights):
            totals = weights @ errors.T  # [R, 3]: weighted error rates
            return 100 * (totals[:, 0] - totals[:, 1]) / totals[:, 2]

        evidence = paired_bootstrap(
            [ce_difference], [n], replicates=500, seed=int(rng.integers(1e9))
        )
        return table_verdict(judge({"a": evidence}, ALPHA)["a"], ALPHA) != NO_DIFFERENCE

    rate = _rate(trials, false_verdict)
    assert rate <= ALPHA + _slack(ALPHA, trials)


# === Power at the minimum detectable effect ===
def test_mcnemar_finds_an_effect_of_its_mde_with_the_promised_power():
    n, discordance = 400, 0.15
    effect = mcnemar_mde(n, discordance, ALPHA, POWER)
    rng, trials = np.random.default_rng(11), 2000

    def found(_):
        judged = judge({"a": paired_correctness([_pair(rng, n, discordance, effect)])}, ALPHA)
        return claim_verdict(judged["a"], "higher", None, ALPHA) == HOLDS

    power = _rate(trials, found)
    # The exact test is a little conservative next to Connor's normal approximation.
    assert POWER - 0.06 <= power <= POWER + _slack(POWER, trials)


def test_the_t_over_seeds_finds_an_effect_of_its_mde_with_the_promised_power():
    seeds, sd = 5, 0.02
    # The MDE the report quotes for 5 seeds whose differences have this SD ...
    spread = np.array([-2, -1, 0, 1, 2], float)
    quoted = seed_differences(sd * spread / spread.std(ddof=1)).mde_at(ALPHA, POWER)
    assert quoted == pytest.approx(
        TTestPower().solve_power(nobs=seeds, alpha=ALPHA, power=POWER) * sd
    )
    # ... is found 80 % of the time when it is the true effect.
    rng, trials = np.random.default_rng(13), 2000

    def found(_):
        evidence = seed_differences(rng.normal(quoted, sd, seeds))
        return claim_verdict(judge({"a": evidence}, ALPHA)["a"], "higher", None, ALPHA) == HOLDS

    power = _rate(trials, found)
    assert abs(power - POWER) <= _slack(POWER, trials)


def test_an_effect_far_below_the_mde_is_undecided_not_absent():
    rng = np.random.default_rng(17)
    evidence = paired_correctness([_pair(rng, 200, 0.1, 0.002)])
    judged = judge({"a": evidence}, ALPHA)["a"]
    assert judged.mde > 0.04  # 200 images cannot see 0.2 points
    assert claim_verdict(judged, "higher", 0.003, ALPHA) not in (HOLDS, HOLDS_SMALLER)
