"""Seed 001 analog (Tables 1–4, Fig. 3): standard training vs Auxiliary Training.

"Auxiliary Training: Towards Accurate and Robust Models" (Zhang et al., CVPR 2020): four
train-time corruptions (Gaussian noise, Gaussian blur, rotation, contrast/brightness), one
auxiliary classifier each (attention + bottleneck + FC), Selective BatchNorm, KL self-distillation
and L2 weight merging in the last third of training; α_j = 0.05, λ = 0.05. Reported: clean
accuracy (Tables 1–2), the -C benchmark's CE per corruption and mCE relative to an AlexNet trained
by the same recipe (Tables 3–4, eq. 8), and Fourier heat maps of both models (Fig. 3).
Scaled for 2 CPU cores: real Fashion-MNIST (the -C set from the first 1,000 test images, 19
corruptions × 5 severities), a ResNet-8. `seed001_compare` holds these two variants and claims:
the reproduction runs that one.

Size and schedule: `seed001_compare`'s (20,000 images, 4 epochs, one-cycle SGD to 0.4; why, there
and in docs/decisions.md).
"""

from tfaux.config import (
    AuxTrainingConfig,
    Claim,
    CorruptionConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainingConfig,
)

RECIPE = Recipe(
    name="seed001_aux",
    description="Seed 001: standard training vs Auxiliary Training; accuracy, CE/mCE, heat maps",
    variants=("none", "none@auxiliary"),
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=20000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig(epochs=4, learning_rate=0.4, schedule="onecycle"),
    auxiliary=AuxTrainingConfig(alpha=0.05, penalty=0.05),
    evaluation=EvalConfig.brief(),
    corruption=CorruptionConfig(enabled=True, examples=1000, heatmap_examples=200),
    claims=(
        Claim(
            "seed 001, Table 1",
            "CIFAR10: '1.43% accuracy increment' with auxiliary training (mean over 6 models)",
            a="none@auxiliary",
            b="none",
            effect=1.43,
        ),
        Claim(
            "seed 001, Table 3",
            "'30.15% ... CE improvements on CIFAR10-C' (mean CE points; ResNet18 57.01 vs 85.91)",
            a="none@auxiliary",
            b="none",
            metric="mce",
            direction="lower",
            effect=30.15,
        ),
        Claim(
            "seed 001, §4.2",
            "Snow, not trained on: 'auxiliary training also improves model robustness' (no number)",
            a="none@auxiliary",
            b="none",
            metric="ce:snow",
            direction="lower",
        ),
        Claim(
            "seed 001, §4.2",
            "Fog, not trained on: 'auxiliary training also improves model robustness' (no number)",
            a="none@auxiliary",
            b="none",
            metric="ce:fog",
            direction="lower",
        ),
        Claim(
            "seed 001, §4.2",
            "JPEG, not trained on: 'auxiliary training also improves model robustness' (no number)",
            a="none@auxiliary",
            b="none",
            metric="ce:jpeg_compression",
            direction="lower",
        ),
    ),
)
