"""A recipe's `backbones` sweep: one complete run per backbone (each a seed sweep when the recipe
has seeds), one table (seed 000 compares five architectures)."""

import json

import pytest

from tests.helpers import quick_eval
from tfaux import runner
from tfaux.config import DataConfig, ModelConfig, MonitorConfig, Recipe, TrainingConfig


def _recipe(**overrides):
    settings = {
        "name": "sweep",
        "variants": ("none", "fourier"),
        "data": DataConfig("digits", batch_size=64, train_size=256, test_size=128),
        "model": ModelConfig(width=0.25),
        "training": TrainingConfig(epochs=1),
        "monitor": MonitorConfig(robust_examples=0, images_every=0),
        "evaluation": quick_eval(sanity=False, curve_eps=(0.1,)),
        "backbones": ("small_cnn", "resnet8"),
        "export": False,
    }
    return Recipe(**{**settings, **overrides})


def test_a_sweep_names_real_backbones():
    with pytest.raises(ValueError, match="Unknown backbone 'resnet9'"):
        from tfaux.experiment import check_recipe

        check_recipe(_recipe(backbones=("small_cnn", "resnet9")))


def test_backbones_and_seeds_run_every_backbone_seed_pair_and_compare_the_means(tmp_path):
    recipe = _recipe(seeds=(0, 1), backbones=("small_cnn", "alexnet"))  # the two quickest
    result = runner.run(recipe, runs_dir=tmp_path, savedmodels_dir=tmp_path, progress=False)
    backbones = sorted((result.run_dir / "backbones").iterdir())
    assert [p.name.rsplit("-", 2)[0] for p in backbones] == ["sweep-alexnet", "sweep-small_cnn"]
    for backbone_dir in backbones:  # each backbone: a seed sweep with its own summary
        seeds = sorted(p.name.rsplit("-", 2)[0] for p in (backbone_dir / "seeds").iterdir())
        backbone = backbone_dir.name.split("-")[1]
        assert seeds == [f"sweep-{backbone}-seed0", f"sweep-{backbone}-seed1"]
        summary = json.loads((backbone_dir / "results.json").read_text())
        assert summary["seeds"] == [0, 1] and "fourier" in summary["comparison"]
        assert "seeds 0, 1" in (backbone_dir / "results.md").read_text()
    summary = json.loads((result.run_dir / "results.json").read_text())
    assert summary["seeds"] == [0, 1] and set(summary["backbones"]) == {"small_cnn", "alexnet"}
    table = (result.run_dir / "results.md").read_text()
    assert "one seed sweep per backbone, seeds 0, 1" in table
    rows = [line for line in table.splitlines() if line.startswith(("| small_cnn", "| alexnet"))]
    assert len(rows) == 4 and sum("(baseline)" in row for row in rows) == 2
    for backbone, entry in summary["backbones"].items():  # the table shows the seed means
        seed_summary = json.loads(
            (result.run_dir / "backbones" / entry["run"] / "results.json").read_text()
        )
        clean = seed_summary["variants"]["fourier"]["clean"]["mean"]
        assert entry["variants"]["fourier"]["test_accuracy"] == clean
        assert f"| {backbone} | fourier | {100 * clean:.2f} |" in table
    for backbone_dir in backbones:  # each backbone's seed runs are built on that backbone
        for seed_dir in (backbone_dir / "seeds").iterdir():
            config = json.loads((seed_dir / "config.json").read_text())
            assert config["model"]["backbone"] == backbone_dir.name.split("-")[1]
            assert config["backbones"] == [] and config["seeds"] == []
    fourier = [line for line in rows if "| fourier |" in line]
    assert all(any(word in row for word in ("better", "worse", "no detectable")) for row in fourier)
    # A sweep stopped after its backbones finished (no summary yet): the same command reads
    # them back instead of training them again.
    (result.run_dir / "results.json").unlink()
    again = runner.run(recipe, runs_dir=tmp_path, savedmodels_dir=tmp_path, progress=False)
    assert again.run_dir == result.run_dir
    assert sorted((again.run_dir / "backbones").iterdir()) == backbones
    assert json.loads((again.run_dir / "results.json").read_text()) == summary
