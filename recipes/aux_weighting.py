"""Do the learned and gradient-combination weightings help the primary classifier (issue 26)?

Every weighting of `tfaux.weighting` against fixed λ, on two pairs of aux tasks trained the same
way: seed 000's Recon + FT (λ = 0.01 each, the paper's λ for FT) and seed 002's coarse labels +
contrastive projection (λ = 1 each, seed 002's), both on seed 000's setup as in
`seed000_weighting` (ResNet-8, 20,000 Fashion-MNIST training images, batch 128, 3 epochs of
one-cycle SGD to 0.2): 470 optimizer steps for every variant. The gradient combinations take one
backward pass per aux task more per step; the budget records them (example passes), and every
variant gets the same optimizer steps. Under FGSM adversarial training (ε = 0.1, seed 000's
Table 2 loop) the Recon + FT pair with the methods made for it: does any keep the classifier's
robust accuracy higher than fixed λ?

Claims: ours, not a paper's — each weighting against fixed λ on the same tasks, on clean
accuracy (and PGD-10 accuracy under FGSM-AT), in the direction its paper argues (better). The
λ search of the fixed baseline (`python recipes/run.py tune aux_weighting`) is not in yet: the
tuned-λ baseline joins these variants once a search that can be trusted (issue 28) has run.
"""

from tfaux.config import Claim, DataConfig, EvalConfig, ModelConfig, Recipe, TrainingConfig

LEARNED = ("uncertainty", "gradnorm", "dwa", "rlw")
COMBINED = (
    "gradcosine",
    "olaux",
    "primary_projection",
    "pcgrad",
    "cagrad",
    "imtl_g",
    "nash_mtl",
    "aligned_mtl",
    "mgda",
    "upgrad",
)
# Under FGSM-AT: the auxiliary-learning combinations, the two best-known multi-task ones, and
# GradNorm (the learned weighting seed 000's weighting recipe measured).
ROBUST = ("gradnorm", "gradcosine", "primary_projection", "pcgrad", "cagrad", "nash_mtl")

RECON_FT, COARSE_PROJECTION = "recon=0.01+fourier=0.01", "coarse=1+projection=1"


def _variants(fixed: str, loop: str = "", methods=(*LEARNED, *COMBINED)) -> list[str]:
    """`fixed` (tasks with their λ) on `loop`, then each method on the same tasks (learned
    weightings take no λ: they replace it)."""
    tasks = "+".join(part.split("=")[0] for part in fixed.split("+"))
    return [
        f"{fixed}{loop}",
        *(f"{tasks if m in LEARNED else fixed}{loop}~{m}" for m in methods),
    ]


CLEAN = {RECON_FT: _variants(RECON_FT), COARSE_PROJECTION: _variants(COARSE_PROJECTION)}
ADVERSARIAL = _variants(RECON_FT, "@fgsm", ROBUST)


def _claims():
    for fixed, (baseline, *methods) in CLEAN.items():
        for variant in methods:
            yield Claim(
                "issue 26 (ours)",
                f"{variant.split('~')[1]} gives a higher clean accuracy than fixed λ ({fixed})",
                a=variant,
                b=baseline,
            )
    baseline, *methods = ADVERSARIAL
    for variant in methods:
        yield Claim(
            "issue 26 (ours)",
            f"under FGSM-AT, {variant.split('~')[1]} gives a higher PGD-10 accuracy than fixed λ",
            a=variant,
            b=baseline,
            metric="pgd",
        )


RECIPE = Recipe(
    name="aux_weighting",
    description="Every loss weighting vs fixed λ on Recon + FT and coarse + contrastive",
    variants=("none", *CLEAN[RECON_FT], *CLEAN[COARSE_PROJECTION], "none@fgsm", *ADVERSARIAL),
    aux_weight=0.01,
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=20000),
    model=ModelConfig(backbone="resnet8", width=1.0, bn_momentum=0.9),
    training=TrainingConfig(epochs=3, learning_rate=0.2, schedule="onecycle"),
    evaluation=EvalConfig.brief(),
    claims=tuple(_claims()),
)
