"""A recipe's claims judged on its runs: each claim's evidence, Holm's correction over the
recipe's claims, the verdict words, and the Claims table every report leads with."""

from __future__ import annotations

import math

from tfaux import statistics
from tfaux.cells import finite, p_pair, signed
from tfaux.config import Claim
from tfaux.evidence import RunRecord, metric_evidence, scale

ALPHA = 0.05


def judge_claims(
    claims: tuple[Claim, ...], records: list[RunRecord], alpha: float = ALPHA
) -> list[dict]:
    """Every claim of a recipe against its runs (one `RunRecord` per seed), corrected together.

    Returns:
        One row per claim, in the recipe's order: the claim's fields, then "difference", "low",
        "high" (a − b in the metric's units: accuracy or CE points; the interval at the
        claim's Holm step), "confidence", "p_value", "adjusted_p", "mde" (points, at 80 %
        power and α / m), "test", "n" and "verdict"; JSON-ready (NaN as None).
    """
    evidence, units = {}, {}
    for index, claim in enumerate(claims):
        found = metric_evidence(claim.metric, claim.a, claim.b, records)
        evidence[index] = found or statistics.no_evidence(math.nan, "not measured in this run", 0)
        units[index] = scale(claim.metric)
    judged = statistics.judge(evidence, alpha)
    rows = []
    for index, claim in enumerate(claims):
        j, unit = judged[index], units[index]
        effect = None if claim.effect is None else claim.effect / unit
        rows.append(
            {
                "source": claim.source,
                "quote": claim.quote,
                "a": claim.a,
                "b": claim.b,
                "metric": claim.metric,
                "direction": claim.direction,
                "effect": claim.effect,
                "difference": finite(unit * j.difference),
                "low": finite(unit * j.low),
                "high": finite(unit * j.high),
                "confidence": j.confidence,
                "p_value": finite(j.p_value),
                "adjusted_p": finite(j.adjusted_p),
                "mde": finite(unit * j.mde),
                "test": j.test,
                "n": j.n,
                "verdict": statistics.claim_verdict(j, claim.direction, effect, alpha),
            }
        )
    return rows


def claims_table(rows: list[dict], alpha: float = ALPHA) -> str:
    """Markdown: the Claims section of a report (empty without claims)."""
    if not rows:
        return ""
    tally = {}
    for row in rows:
        word = row["verdict"].split(":")[0].split(",")[0]
        tally[word] = tally.get(word, 0) + 1
    lines = [
        "## Claims",
        "",
        f"{len(rows)} claims of the paper, each a − b on its metric; "
        + ", ".join(f"{n} {word}" for word, n in tally.items())
        + f". Holm's correction over the claims (family-wise α = {alpha:g}): the interval is at "
        "its claim's Holm step, p is raw and Holm-adjusted, and the word reads the adjusted p. "
        '"Detectable" is the smallest |a − b| this budget finds with 80 % power at α / m.',
        "",
        "| # | claim | a vs b | metric | paper | ours: a − b [CI] | p (adj.) | detectable | "
        "test | verdict |",
        "|" + "---|" * 10,
    ]
    for number, row in enumerate(rows, 1):
        paper = "–" if row["effect"] is None else signed(_sign(row) * row["effect"])
        cells = [
            str(number),
            f"{row['source']}: {row['quote']}",
            f"{row['a']} vs {row['b']}",
            row["metric"],
            paper,
            _ours(row),
            p_pair(row["p_value"], row["adjusted_p"]),
            _detectable(row),
            row["test"],
            f"**{row['verdict']}**",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _detectable(row: dict) -> str:
    """The MDE cell; beyond the largest possible accuracy difference, nothing is detectable."""
    if row["mde"] is None:
        return "–"
    if scale(row["metric"]) == 100.0 and row["mde"] >= 100:
        return "none (> 100)"
    return f"≥ {row['mde']:.2f}"


def _sign(row: dict) -> float:
    return 1.0 if row["direction"] == "higher" else -1.0


def _ours(row: dict) -> str:
    if row["difference"] is None:
        return "–"
    if row["low"] is None:
        return signed(row["difference"])
    confidence = f"{100 * row['confidence']:.4g} %"
    return (
        f"{signed(row['difference'])} [{signed(row['low'])}, {signed(row['high'])}] ({confidence})"
    )
