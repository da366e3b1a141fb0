"""Typed results read and write results.json exactly: same keys, same order, older files too."""

import json

import pytest

from tests.unit.test_reporting import new_results, old_results, variant_result
from tfaux.results import RunResults, VariantResult


def _runner_variant() -> dict:
    """A variant's entry in the order the runner builds it, every optional part present."""
    r = variant_result(0.8, 0.4)
    ordered = {"tasks": ["fourier"], "loop": "auxiliary_training", "aux_weight": 0.01}
    ordered.update(val_accuracy=0.8, val_pgd_accuracy=0.3)
    for key in ("test_accuracy", "fgsm_accuracy", "pgd_accuracy", "pgd_attack"):
        ordered[key] = r[key]
    ordered.update(robust_accuracy=0.4, robust_attack=r["pgd_attack"], trustworthy=True)
    ordered.update(robustness=r["robustness"], test_examples=200, correct="v.correct.npz")
    ordered.update(selection={"rule": "last", "epoch": 2}, budget={"example_passes": 10})
    ordered.update(train_seconds=1.5, monitor_seconds={}, epochs_run=2, parameters=10)
    ordered.update(deployed_parameters=9, weights="v.weights.h5")
    ordered["merging"] = {"merge": True, "ratio": 0.5}  # the loop's own entry
    ordered.update(corruption={"clean_error": 0.2}, corruption_correct="v.corruption.npz")
    ordered.update(heatmap={"file": "v.heatmap.npy"}, disturbances={"blur": 0.5})
    ordered["augmented"] = {"geometric": {"augmented": 0.6}}
    ordered["denoiser"] = {"noisy_identity": False}  # a task's own report
    ordered["corruption_error"] = {"mCE": 100.0}
    return ordered


def test_a_variant_round_trips_with_its_keys_in_order():
    data = _runner_variant()
    result = VariantResult.from_dict(json.loads(json.dumps(data)))
    assert json.dumps(result.to_dict()) == json.dumps(data)
    assert result.merging == {"merge": True, "ratio": 0.5} and result.loop_results.keys() == {
        "merging"
    }
    assert result.denoiser == {"noisy_identity": False} and result.val_pgd_accuracy == 0.3


def test_a_task_report_without_evaluation_extras_is_still_found():
    data = variant_result(0.8, 0.4)
    data["denoiser"] = {"noisy_identity": True}  # right after the loop's entries: ambiguous
    result = VariantResult.from_dict(data)
    assert result.denoiser == {"noisy_identity": True}
    assert json.dumps(result.to_dict()) == json.dumps(data)


def test_a_run_round_trips_and_an_older_one_keeps_what_it_had(tmp_path):
    data = new_results(tmp_path)
    data.update(backbone="resnet8", variants={"none": _runner_variant(), "aux": _runner_variant()})
    ordered = {k: data[k] for k in ("recipe", "run", "dataset", "backbone", "variants")}
    ordered.update({k: data[k] for k in ("best_variant", "best_by", "baseline", "budget_rule")})
    ordered.update(commit=None, corruption={"reference": "reference_alexnet"}, export="/x")
    ordered.update(comparison={}, table="results.md", plot="accuracy.png", newer_key=1)
    results = RunResults.from_dict(json.loads(json.dumps(ordered)))
    assert json.dumps(results.to_dict()) == json.dumps(ordered)  # null commit kept, extras too
    assert results.variants["aux"].budget["example_passes"] == 10
    older = old_results({"none": variant_result(0.75, 0.4)})
    written = RunResults.from_dict(older).to_dict()
    assert {k: v for k, v in written.items() if v is not None} == older


def test_a_variant_without_its_accuracies_is_an_error():
    with pytest.raises(ValueError, match="Expected a variant result"):
        VariantResult.from_dict({"val_accuracy": 0.5})
