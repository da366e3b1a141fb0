"""The seed 001 recipes end to end in quick mode: train, -C benchmark, CE/mCE, heat maps, export."""

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import QUICK, quick_eval, run_cli
from tfaux import runner
from tfaux.config import (
    AuxTrainingConfig,
    DataConfig,
    ModelConfig,
    MonitorConfig,
    Recipe,
    TrainingConfig,
)


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
        # The attacks' sanity checks and TensorBoard's image panels run in the default recipe's
        # end-to-end test.
        *("--set", "evaluation.sanity=false", "--set", "evaluation.curve_eps=0.1"),
        *("--set", "monitor.images_every=0"),
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
    report = (run_dir / "results.md").read_text()
    assert "The reference trained 3 epochs, the variants 1" in report
    # The table says what ran: 16 images, 3 of the 15 common corruptions, severities 1 and 5.
    assert "16 test images × corruptions × severities" in report
    assert "mean over the 3 common corruptions run (of 15)" in report
    assert "severities 1, 5" in report


def test_merging_is_recorded_from_the_history_and_closes_the_distance(tmp_path):
    # Issue 24: a tiny run with stage 2 in its last epoch and a strong penalty; the results'
    # "merging" entry is the history's distance, and merging closes it where the ablation does not.
    recipe = Recipe(
        name="merging",
        variants=("none@auxiliary", "none@auxiliary_no_merge"),
        data=DataConfig("digits", batch_size=16, train_size=256, test_size=32),
        model=ModelConfig(backbone="small_cnn", width=0.25),
        training=TrainingConfig(epochs=3, learning_rate=0.05),
        auxiliary=AuxTrainingConfig(corruptions=("rotation",), penalty=1.0, merge_epoch=2),
        monitor=MonitorConfig(robust_examples=0, images_every=0),
        evaluation=quick_eval(sanity=False, curve_eps=(0.1,)),
        export=False,
    )
    result = runner.run(recipe, runs_dir=tmp_path, savedmodels_dir=tmp_path, progress=False)
    ratios = {}
    for variant, merge in (("none@auxiliary", True), ("none@auxiliary_no_merge", False)):
        merging = result.results["variants"][variant]["merging"]
        train = json.loads((result.run_dir / "variants" / f"{variant}.train.json").read_text())
        distances = train["history"]["merge_distance"]
        assert merging["merge"] is merge and merging["penalty"] == 1.0
        assert (
            merging["distance_before"] == distances[1] and merging["distance_after"] == distances[2]
        )
        assert merging["ratio"] == pytest.approx(distances[2] / distances[1])
        assert (merging["stage_two_epoch"], merging["epochs"]) == (3, 3)
        # 256 images in batches of 16: the last epoch's 16 steps, at the constant rate.
        assert merging["stage_two_steps"] == 16 == train["budget"]["optimizer_steps"] - 32
        assert merging["stage_two_learning_rates"] == [[0.05, 16]]
        assert train["history"]["merge_gamma"] == [0.0, 0.0, 1.0 if merge else 0.0]
        # The TensorBoard scalar is the history's number.
        events = EventAccumulator(str(result.run_dir / "tensorboard" / variant / "train"))
        events.Reload()
        scalars = [tf.make_ndarray(e.tensor_proto) for e in events.Tensors("epoch_merge_distance")]
        np.testing.assert_allclose(scalars, distances, rtol=1e-6)
        ratios[variant] = merging["ratio"]
        assert (
            f"{variant} merging: {json.dumps(merging)}" in (result.run_dir / "log.txt").read_text()
        )
    assert ratios["none@auxiliary"] < 0.5 < ratios["none@auxiliary_no_merge"], ratios
    report = (result.run_dir / "results.md").read_text()
    section = report.split("## Weight merging: distance before/after stage 2")[1]
    row = next(line for line in section.splitlines() if line.startswith("| none@auxiliary |"))
    assert f"{ratios['none@auxiliary']:.3f} |" in row and "| 3/3 | 16 | 0.05 (16) |" in row
