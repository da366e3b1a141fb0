"""The seed 001 recipes end to end in quick mode: train, -C benchmark, CE/mCE, heat maps, export."""

import json

import pytest

from tests.helpers import QUICK, run_cli


def _quick_corruption(tmp_path, heatmap: int = 0) -> list[str]:
    settings = {
        "data.train_size": 256,
        "data.test_size": 128,
        "corruption.examples": 16,
        "corruption.corruptions": "gaussian_noise,contrast,pixelate",
        "corruption.severities": "1,5",
        "corruption.cache_dir": tmp_path / "corruptions",
        "corruption.heatmap_examples": heatmap,
    }
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


@pytest.mark.slow
def test_seed001_aux_quick_mode_end_to_end(tmp_path, capsys):
    # One run covers the three recipes' code paths (they differ in variants and sizes; each
    # ablation loop, and the PGD-trained primary, trains in test_auxiliary_training): the
    # method beside standard training.
    variants = ["none", "none@auxiliary"]
    code = run_cli(
        "seed001_aux",
        *QUICK,
        *_quick_corruption(tmp_path, heatmap=8),
        *("--set", f"variants={','.join(variants)}"),
        # The attacks' sanity checks run in the default recipe's end-to-end test.
        *("--set", "evaluation.sanity=false", "--set", "evaluation.curve_eps=0.1"),
        tmp_path=tmp_path,
    )
    assert code == 0
    assert "Corruption benchmark: CE relative to reference_alexnet" in capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs").iterdir()
    for name in ("corruption_ce.png", "fourier_heatmap.png", "accuracy.png", "results.md"):
        assert (run_dir / name).stat().st_size > 1000, name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["corruption"]["reference"] == "reference_alexnet"
    assert list(results["variants"]) == variants
    for r in results["variants"].values():
        assert set(r["corruption_error"]["ce"]) == {"gaussian_noise", "contrast", "pixelate"}
        assert r["corruption_error"]["mCE"] > 0 and 0 <= r["heatmap"]["mean_accuracy"] <= 1
        assert 0 <= r["corruption"]["clean_error"] <= 1  # fractions; CE tables in percent
    # The auxiliary classifiers are trained, then dropped: same deployed size as standard.
    aux, standard = results["variants"]["none@auxiliary"], results["variants"]["none"]
    assert aux["parameters"] > standard["parameters"]
    assert aux["deployed_parameters"] == standard["deployed_parameters"]
    reference = json.loads((run_dir / "variants" / "reference_alexnet.corruption.json").read_text())
    assert 0 <= reference["clean_error"] <= 1
    # The denominator model trains 3× the variants' epochs, and the table says so.
    assert results["corruption"]["reference_epochs"] == 3 and results["corruption"]["epochs"] == 1
    trained = json.loads((run_dir / "variants" / "reference_alexnet.train.json").read_text())
    assert trained["epochs_run"] == 3
    assert "The reference trained 3 epochs, the variants 1" in (run_dir / "results.md").read_text()
