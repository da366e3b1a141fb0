"""Every seed recipe declares its paper's claims as data, each one a test the recipe can run
(issue 23): the variants and metrics exist, and the issue's minimum list is covered."""

from pathlib import Path

import pytest

from tests.helpers import tiny_model
from tfaux.attacks import AttackedModel
from tfaux.cli import discover
from tfaux.config import CLAIM_METRICS, claim_problem
from tfaux.data.sources import dataset_spec
from tfaux.evaluate.disturbances import applicable_disturbances
from tfaux.evaluate.robustness import attack_jobs

FOUND = discover(Path(__file__).resolve().parents[2] / "recipes")
RECIPES = {name: recipe for name, (recipe, _) in FOUND.items()}
SEEDS = sorted(name for name in RECIPES if name.startswith("seed"))
GRAYSCALE = {"fashion_mnist", "mnist", "digits"}  # the datasets with one channel

# The issue's minimum list: (recipe, a, b, metric, direction) each item is declared as.
PGD7 = f"attack:PGD-7 ε={8 / 255:g}"
GEOMETRIC, FGSM_GEOMETRIC = "augmented:geometric", "augmented_fgsm:geometric"
SCHEDULED, FREE = "projection=1@free_scheduled:geometric", "projection=1@free:geometric"
DENOISER = "denoise=10+projection=1@fgsm:geometric"
MINIMUM = {
    # 000: FT vs none on clean accuracy; FT and Recon vs none under FGSM-AT (the paper's ε = 0.3).
    ("seed000_ft", "fourier", "none", "clean", "higher"),
    ("seed000_at", "fourier", "none", "clean", "higher"),
    ("seed000_at", "fourier@fgsm[eps=0.3]", "none@fgsm[eps=0.3]", "fgsm:0.3", "higher"),
    ("seed000_at", "recon@fgsm[eps=0.3]", "none@fgsm[eps=0.3]", "fgsm:0.3", "higher"),
    # 001: Tables 1 and 3, Table 6, Table 8, Table 9.
    ("seed001_aux", "none@auxiliary", "none", "clean", "higher"),
    ("seed001_aux", "none@auxiliary", "none", "mce", "lower"),
    ("seed001_compare", "none@auxiliary", "none@corruption_augment", "clean", "higher"),
    ("seed001_compare", "none@auxiliary", "none@corruption_augment", "mce", "lower"),
    ("seed001_compare", "none@auxiliary_pgd", "none@pgd", "clean", "higher"),
    ("seed001_compare", "none@auxiliary_pgd", "none@pgd", "robust", "higher"),
    *(
        ("seed001_ablation", "none@auxiliary", f"none@auxiliary_no_{part}", metric, direction)
        for part in ("sbn", "distill", "attention", "merge")
        for metric, direction in (("clean", "higher"), ("mce", "lower"))
    ),
    # 002: contrastive vs single-task under PGD-7 (in both recipes), vs coarse, vs λ_c = 0.
    ("seed002_contrastive", "projection", "none", PGD7, "higher"),
    ("seed002_coarse", "projection", "none", PGD7, "higher"),
    ("seed002_coarse", "projection", "coarse", PGD7, "higher"),
    ("seed002_coarse", "projection", "projection=0", PGD7, "higher"),
    # 003: the R-model vs the base model, clean and under every disturbance measured.
    ("seed003_random_sign", "none@random_sign", "none", "clean", "higher"),
    *(
        ("seed003_random_sign", "none@random_sign", "none", f"disturbance:{name}", "higher")
        for name in ("random_crop", "random_flip", "color_jitter", "five_crop")
    ),
    # 004: geometric augmentation, + contrastive, high vs low weight; scheduled > inner FGSM >
    # autoencoder (the paper's text) on the FGSM set; EMA slower; γ's trade-off; scheduled vs plain.
    ("seed004_augment", "none:geometric", "none", GEOMETRIC, "higher"),
    ("seed004_augment", "projection=1:geometric", "none:geometric", GEOMETRIC, "higher"),
    ("seed004_augment", "projection=1:geometric", "projection=0.1:geometric", GEOMETRIC, "higher"),
    ("seed004_augment", SCHEDULED, FREE, FGSM_GEOMETRIC, "higher"),
    ("seed004_augment", DENOISER, FREE, FGSM_GEOMETRIC, "lower"),
    ("seed004_free", "none@free_ema", "none@free", FGSM_GEOMETRIC, "lower"),
    ("seed004_free", "none@free_gamma", "none@free", "clean", "higher"),
    ("seed004_free", "none@free_gamma", "none@free", FGSM_GEOMETRIC, "lower"),
    ("seed004_free", "none@free_scheduled", "none@free", FGSM_GEOMETRIC, "higher"),
}
# The effects the issue names: (recipe, source, a, b, metric) → the paper's number.
EFFECTS = {
    ("seed000_ft", "seed 000, Table 1", "fourier", "none", "clean"): 0.27,
    ("seed001_aux", "seed 001, Table 1", "none@auxiliary", "none", "clean"): 1.43,
    ("seed001_compare", "seed 001, Table 8", "none@auxiliary_pgd", "none@pgd", "clean"): 1.86,
    ("seed001_compare", "seed 001, Table 8", "none@auxiliary_pgd", "none@pgd", "robust"): 3.17,
    ("seed002_contrastive", "seed 002, Table 1", "projection", "none", PGD7): 60.62 - 0.04,
}


def _declared() -> set[tuple]:
    return {(name, c.a, c.b, c.metric, c.direction) for name in SEEDS for c in RECIPES[name].claims}


def test_every_recipe_is_found():
    assert len(SEEDS) == 11 and "robust_baselines" in RECIPES


@pytest.mark.parametrize("name", SEEDS)
def test_every_seed_recipe_declares_claims_it_can_test(name):
    recipe = RECIPES[name]
    assert recipe.claims, f"{name} declares no claim"
    for claim in recipe.claims:
        assert claim_problem(recipe, claim) is None
        assert claim.kind in CLAIM_METRICS
        assert claim.source.startswith(f"seed {name[4:7]}, "), claim.source
        assert len(claim.quote) <= 100, claim.quote  # short, its number included
    keys = [(c.a, c.b, c.metric, c.source) for c in recipe.claims]
    assert len(set(keys)) == len(keys), "a claim declared twice"


@pytest.fixture(scope="module")
def attacked():
    return AttackedModel(tiny_model())  # the report's attacks are listed, never run


@pytest.mark.parametrize("name", SEEDS)
def test_every_claimed_attack_and_disturbance_is_in_the_report(name, attacked):
    # `claim_problem` cannot see report labels and per-dataset disturbances; these can.
    recipe = RECIPES[name]
    jobs, roles = attack_jobs(recipe.evaluation, attacked, surrogate=attacked)
    labels = {job.key for job in jobs} - set(roles.get("curve_only", []))
    channels = 1 if recipe.data.dataset in GRAYSCALE else 3
    flip = dataset_spec(recipe.data.dataset).flip_invariant
    disturbances = applicable_disturbances(channels, flip)
    for claim in recipe.claims:
        if claim.kind == "attack":
            assert claim.argument in labels, (claim.argument, sorted(labels))
        if claim.kind == "disturbance":
            assert claim.argument in disturbances, (claim.argument, disturbances)


def test_the_issues_minimum_list_is_declared():
    assert not MINIMUM - _declared(), sorted(MINIMUM - _declared())


def test_the_issues_effects():
    effects = {
        (name, c.source, c.a, c.b, c.metric): c.effect
        for name in SEEDS
        for c in RECIPES[name].claims
    }
    for key, effect in EFFECTS.items():
        assert effects[key] == pytest.approx(effect), key


def test_overlapping_recipes_declare_the_shared_claims_in_both():
    # seed002_coarse runs seed002_contrastive's variants (and so on): each is runnable alone.
    overlaps = {
        "seed000_ft": "seed000_at",
        "seed001_aux": "seed001_compare",
        "seed002_contrastive": "seed002_coarse",
    }
    for inner, outer in overlaps.items():
        assert set(RECIPES[inner].claims) <= set(RECIPES[outer].claims), (inner, outer)


def test_a_tuned_variant_leaves_its_claims_behind_and_the_claims_round_trip(tmp_path):
    from tfaux.cli import load_recipe_file
    from tfaux.tune import recipe_source, tuned_recipe

    recipe = RECIPES["seed000_ft"]  # tunes "recon", its first aux variant
    tuned = tuned_recipe(recipe, {"lambda_recon": 0.5})
    assert tuned.claims and all("recon" not in (c.a, c.b) for c in tuned.claims)
    path = tmp_path / "recipe.py"
    path.write_text(recipe_source(recipe, "seed000_ft, written back.\n"))
    assert load_recipe_file(path).claims == recipe.claims
