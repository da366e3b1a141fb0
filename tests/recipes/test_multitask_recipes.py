"""Seeds 002–004's new recipes end to end in quick mode (in-process: one TensorFlow start-up).

Each test runs its recipe with the variants that exercise new code (the others are the same
loops with other weights), on 256 training images, with the attacks whose code other end-to-end
tests cover (BIM, MIM, C&W) switched off.
"""

import json

import numpy as np
import pytest

from tests.helpers import QUICK, run_cli

# Smaller still than QUICK: 300 validation images instead of 3,000, 128 test images.
TINY = [
    "--set",
    "model.backbone=small_cnn",  # a third less time than ResNet-8; no assertion reads it
    "--set",
    "training.warmup_epochs=0",  # before QUICK's epochs=1 (warm-up < epochs)
    *QUICK,
    "--set",
    "data.train_size=256",
    "--set",
    "data.test_size=128",
    "--set",
    "data.val_fraction=0.005",
    *("--set", "evaluation.bim_steps=0", "--set", "evaluation.mim_steps=0"),
    *("--set", "evaluation.l2_eps=0"),
    # TensorBoard's robust accuracy and images run in the default recipe's end-to-end test;
    # without the validation PGD accuracy, the robust loops keep their last epoch.
    *("--set", "monitor.robust_examples=0", "--set", "monitor.images_every=0"),
    *("--set", "training.select=last"),
]

NO_SANITY = ("evaluation.sanity=false", "evaluation.curve_eps=0.1")


def _run(recipe: str, tmp_path, *settings: str) -> tuple[int, dict, object]:
    args = [arg for s in settings for arg in ("--set", s)]
    code = run_cli(recipe, *TINY, *args, tmp_path=tmp_path)
    (run_dir,) = (tmp_path / "runs").iterdir()
    return code, json.loads((run_dir / "results.json").read_text()), run_dir


@pytest.mark.slow
def test_seed002_contrastive_quick_mode(tmp_path):
    # PGD-k at the paper's ε = 8/255 and at ε = 0.1, on the single-task and contrastive models.
    code, results, run_dir = _run("seed002_contrastive", tmp_path, "evaluation.pgd_steps=2")
    assert code == 0
    assert list(results["variants"]) == ["none", "projection"]
    for r in results["variants"].values():
        assert {"PGD-2 ε=0.0313725", "PGD-2 ε=0.1", "FGSM ε=0.1"} <= set(r["robustness"]["attacks"])
        assert r["robustness"]["sanity"]  # the checks ran
    history = json.loads((run_dir / "variants" / "projection.train.json").read_text())["history"]
    assert history["projection_loss"][0] > 0 and "val_projection_loss" in history
    # The projection head is trained, then dropped from the deployed classifier.
    sizes = {name: r["deployed_parameters"] for name, r in results["variants"].items()}
    assert sizes["none"] == sizes["projection"]


@pytest.mark.slow
def test_seed002_coarse_quick_mode(tmp_path):
    code, results, run_dir = _run(
        "seed002_coarse", tmp_path, "variants=coarse", "evaluation.pgd_steps=2"
    )
    assert code == 0
    coarse = json.loads((run_dir / "variants" / "coarse.train.json").read_text())["history"]
    assert coarse["coarse_loss"][0] > 0 and "val_coarse_loss" in coarse
    r = results["variants"]["coarse"]
    head = r["parameters"] - r["deployed_parameters"]  # a dense layer to 5 garment groups
    assert head > 0 and head % 5 == 0


@pytest.mark.slow
def test_seed003_random_sign_quick_mode_over_two_seeds(tmp_path):
    # The R-model alone, attacks without the sanity checks (the seed-002 test runs them); on the
    # recipe's ResNet-8, whose layers the random-sign layers follow.
    settings = "seeds=0,1", "variants=none@random_sign", "model.backbone=resnet8", *NO_SANITY
    code, summary, run_dir = _run("seed003_random_sign", tmp_path, *settings)
    assert code == 0
    assert summary["seeds"] == [0, 1]
    table = (run_dir / "results.md").read_text()
    assert "seeds 0, 1\n" in table and "Mean ± 95 % CI (Student t) over seeds" in table
    assert " ± " in table
    assert (run_dir / "seeds.png").stat().st_size > 1000
    for name in ("none@random_sign",):
        metrics = summary["variants"][name]
        assert {"clean", "random_crop", "random_flip", "color_jitter", "five_crop"} <= set(metrics)
        assert "random_grayscale" not in metrics  # identity on grayscale images
        values = metrics["clean"]["values"]
        assert len(values) == 2 and metrics["clean"]["std"] == pytest.approx(np.std(values, ddof=1))
    # Each seed is a complete run of its own, and only the first one exports.
    for seed, path in summary["seed_runs"].items():
        seed_results = json.loads((run_dir / "seeds" / path / "results.json").read_text())
        assert seed_results["recipe"] == f"seed003_random_sign-seed{seed}"
        assert ("export" in seed_results) == (seed == "0")


@pytest.mark.slow
def test_seed004_augment_quick_mode(tmp_path):
    variants = (
        "none",
        "projection=1@free_scheduled:geometric",
        "denoise=10+projection=1@fgsm:geometric",
    )
    code, results, run_dir = _run(
        "seed004_augment",
        tmp_path,
        "adversarial.replays=2",
        # 3 natural epochs: scheduled Free-AT then runs 2 (m = 1.5 → 2, then 2), enough for its
        # ε/m ramp of 2 epochs (a shorter run is refused: it would never reach ε).
        "training.epochs=3",
        f"variants={','.join(variants)}",
        *NO_SANITY,
    )
    assert code == 0
    variants = results["variants"]
    assert len(variants) == 3
    for name, r in variants.items():
        geometric = r["augmented"]["geometric"]
        assert 0 <= geometric["augmented"] <= 1 and 0 <= geometric["fgsm_augmented"] <= 1, name
    denoiser = variants["denoise=10+projection=1@fgsm:geometric"]["denoiser"]
    assert denoiser["examples"] == 128 and isinstance(denoiser["noisy_identity"], bool)
    report = (run_dir / "results.md").read_text()
    assert "## Denoiser" in report and "FGSM(baseline) + geometric" in report
    # The denoiser is part of the deployed classifier; the projection head is not.
    assert (
        variants["denoise=10+projection=1@fgsm:geometric"]["deployed_parameters"]
        > (variants["none"]["deployed_parameters"])
    )
