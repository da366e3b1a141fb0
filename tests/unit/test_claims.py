"""A recipe's claims judged on hand-made runs: the metric each claim names is the number the
report shows, CE and mCE get paired intervals that agree with `corruption_error`, claims are
corrected together, and the report leads with them."""

import json
import math

import numpy as np
import pytest

from tests.unit.test_reporting import PGD, old_results, variant_result
from tfaux import reporting
from tfaux.claims import judge_claims
from tfaux.config import Claim
from tfaux.evaluate.corruption import corruption_error, save_corruption_correct
from tfaux.evidence import RunRecord, column, metric_evidence
from tfaux.statistics import (
    DOES_NOT_HOLD,
    HOLDS,
    HOLDS_SMALLER,
    RULED_OUT,
    UNDECIDED,
    paired_test,
)

N = 400
CORRUPTIONS = ("gaussian_noise", "fog")


def _claim(a="aux", b="none", metric="clean", direction="higher", effect=None):
    return Claim("toy paper, Table 1", "aux beats none", a, b, metric, direction, effect)


def _run(tmp_path, correct: dict, corrupted: dict | None = None) -> RunRecord:
    """A run directory holding per-example records and the results they give."""
    variants_dir = tmp_path / "variants"
    variants_dir.mkdir(parents=True, exist_ok=True)
    variants = {}
    for name, arrays in correct.items():
        result = variant_result(float(arrays["clean"].mean()), float(arrays["robust"].mean()))
        result["robustness"]["attacks"][PGD] = float(arrays["robust"].mean())
        np.savez(variants_dir / f"{name}.correct.npz", **arrays, **{PGD: arrays["robust"]})
        result["correct"] = f"{name}.correct.npz"
        variants[name] = result
    results = old_results(variants)
    if corrupted is not None:
        errors = {}
        for name, table in corrupted.items():
            path = variants_dir / f"{name}.corruption.npz"
            save_corruption_correct(path, table)
            errors[name] = {
                "clean_error": 1 - float(table["clean"].mean()),
                "errors": {
                    c: {s: 1 - float(x.mean()) for s, x in by.items()}
                    for c, by in table["corrupted"].items()
                },
            }
        reference = {"name": "reference_alexnet", **errors["reference"]}
        reference["correct"] = "reference.corruption.npz"
        for name in correct:
            variants[name]["corruption_correct"] = f"{name}.corruption.npz"
            variants[name]["corruption_error"] = corruption_error(
                errors[name], reference, corruptions=CORRUPTIONS
            )
        results["corruption"] = {"reference_errors": reference}
    return RunRecord(tmp_path, results)


def _correct(rng, clean_rate, robust_rate):
    return {"clean": rng.random(N) < clean_rate, "robust": rng.random(N) < robust_rate}


def _corrupted(rng, error_rate):
    return {
        "clean": rng.random(N) > error_rate / 2,
        "corrupted": {c: {s: rng.random(N) > error_rate for s in (1, 2, 3)} for c in CORRUPTIONS},
    }


def test_a_clean_claim_is_mcnemar_on_the_reported_accuracies(tmp_path):
    rng = np.random.default_rng(0)
    base = _correct(rng, 0.7, 0.3)
    aux = {"clean": base["clean"] | (rng.random(N) < 0.2), "robust": base["robust"]}
    record = _run(tmp_path, {"none": base, "aux": aux})
    evidence = metric_evidence("clean", "aux", "none", [record])
    reference = paired_test(aux["clean"], base["clean"])
    shown = record.results["variants"]
    assert evidence.difference == pytest.approx(
        shown["aux"]["test_accuracy"] - shown["none"]["test_accuracy"]
    )
    assert evidence.p_value == pytest.approx(reference.p_value)
    (row,) = judge_claims((_claim(effect=1.0),), [record])
    assert row["verdict"] == HOLDS  # a gain of several points, beyond the claimed 1
    assert row["difference"] == pytest.approx(100 * evidence.difference)


def test_claim_words_follow_the_corrected_evidence(tmp_path):
    rng = np.random.default_rng(1)
    base = _correct(rng, 0.7, 0.3)
    aux = {"clean": base["clean"] | (rng.random(N) < 0.2), "robust": base["robust"].copy()}
    record = _run(tmp_path, {"none": base, "aux": aux})
    claims = (
        _claim(effect=5.0),  # aux gains ~6 points: holds
        _claim(effect=50.0),  # holds, but far smaller than a 50-point claim
        _claim(direction="lower"),  # the paper said aux is worse: does not hold
        _claim(metric="pgd", effect=10.0),  # identical robust answers: a 10-point gain is ruled out
        _claim(metric="attack:CW-L2 ε=1.5"),  # the run never measured it
    )
    words = [row["verdict"] for row in judge_claims(claims, [record])]
    assert words == [HOLDS, HOLDS_SMALLER, DOES_NOT_HOLD, RULED_OUT, UNDECIDED]
    rows = judge_claims(claims, [record])
    assert rows[-1]["test"] == "not measured in this run" and rows[-1]["p_value"] is None
    # Holm over the 4 tested claims: the smallest p is multiplied by 4.
    tested = [r for r in rows if r["p_value"] is not None]
    smallest = min(tested, key=lambda r: r["p_value"])
    assert smallest["adjusted_p"] == pytest.approx(min(1.0, 4 * smallest["p_value"]))
    assert all(r["mde"] == tested[0]["mde"] or r["mde"] > 0 for r in tested)


def test_mce_evidence_is_the_reported_mce_difference_with_a_paired_interval(tmp_path):
    rng = np.random.default_rng(2)
    correct = {"none": _correct(rng, 0.7, 0.3), "aux": _correct(rng, 0.7, 0.3)}
    corrupted = {
        "none": _corrupted(rng, 0.4),
        "aux": _corrupted(rng, 0.3),
        "reference": _corrupted(rng, 0.5),
    }
    record = _run(tmp_path, correct, corrupted)
    shown = {n: record.results["variants"][n]["corruption_error"] for n in ("aux", "none")}
    evidence = metric_evidence("mce", "aux", "none", [record])
    assert evidence.difference == pytest.approx(shown["aux"]["mCE"] - shown["none"]["mCE"])
    ce = metric_evidence("ce:fog", "aux", "none", [record])
    assert ce.difference == pytest.approx(shown["aux"]["ce"]["fog"] - shown["none"]["ce"]["fog"])
    low, high = evidence.interval_at(0.95)
    assert low < evidence.difference < high < 0  # 10 points less error, 400 images: clearly
    (row,) = judge_claims((_claim(metric="mce", direction="lower"),), [record])
    assert row["verdict"] == HOLDS and "bootstrap" in row["test"]


def test_identical_models_give_no_ce_verdict(tmp_path):
    rng = np.random.default_rng(3)
    same = _corrupted(rng, 0.4)
    correct = {"none": _correct(rng, 0.7, 0.3), "aux": _correct(rng, 0.7, 0.3)}
    record = _run(tmp_path, correct, {"none": same, "aux": same, "reference": _corrupted(rng, 0.5)})
    (row,) = judge_claims((_claim(metric="mce", direction="lower", effect=5.0),), [record])
    assert row["difference"] == 0 and row["verdict"] == RULED_OUT


def test_two_seeds_combine_their_images_and_three_use_the_t(tmp_path):
    rng = np.random.default_rng(4)
    records = []
    for seed in range(3):
        base = _correct(rng, 0.7, 0.3)
        aux = {
            "clean": base["clean"] | (rng.random(N) < 0.1 + 0.02 * seed),
            "robust": base["robust"],
        }
        records.append(_run(tmp_path / str(seed), {"none": base, "aux": aux}))
    two = judge_claims((_claim(),), records[:2])[0]
    three = judge_claims((_claim(),), records)[0]
    assert "stratified by seed" in two["test"] and two["n"] == 2 * N
    assert three["test"] == "paired t over 3 seeds" and three["n"] == 3


def test_the_report_leads_with_the_claims(tmp_path):
    rng = np.random.default_rng(5)
    base = _correct(rng, 0.7, 0.3)
    aux = {"clean": base["clean"] | (rng.random(N) < 0.2), "robust": base["robust"]}
    record = _run(tmp_path, {"none": base, "aux": aux})
    results = record.results
    results["baseline"] = "none"
    reporting.write_report(tmp_path, results, (_claim(effect=0.3),))
    report = (tmp_path / "results.md").read_text()
    assert report.index("## Claims") < report.index("| variant | val acc")
    claims_line = next(line for line in report.splitlines() if line.startswith("| 1 |"))
    assert "aux vs none" in claims_line and "**holds**" in claims_line
    saved = json.loads((tmp_path / "results.json").read_text(), parse_constant=pytest.fail)
    assert saved["claims"][0]["verdict"] == HOLDS and math.isfinite(saved["claims"][0]["mde"])


def test_an_fgsm_claim_at_8_255_finds_the_column_the_report_rounded():
    result = variant_result(0.8, 0.3)
    result["fgsm_accuracy"] = {"0.0313725": 0.5, "0.1": 0.2}
    assert column(f"fgsm:{8 / 255}", result) == "FGSM ε=0.0313725"
    assert column("fgsm:0.1", result) == "FGSM ε=0.1" and column("fgsm:0.2", result) is None
