"""Seed 001 analogs of Table 6 (vs plain augmentation) and Table 8 (PGD-trained primary).

Table 6: standard training, plain data augmentation with the same four corruptions (every batch
[clean, T_1(x), …, T_4(x)] through the one classifier: the same images and cost per step as
Auxiliary Training) and Auxiliary Training, on clean accuracy and mCE. Table 8: PGD-7
adversarial training vs Auxiliary Training whose primary classifier trains on the PGD-7 examples
while the auxiliary classifiers see the corruptions; ε = 0.1, PGD-10 and FGSM evaluation with the
sanity checks. Real Fashion-MNIST, 5,000 training images, ResNet-8, 3 epochs.

Schedule: seed 001's own step schedule (SGD 0.1, ÷10 at 1/3, 2/3 and 29/30 of training), per
step, so it anneals within these few epochs as in the paper's 300.
"""

from tfaux.config import (
    AdversarialConfig,
    AuxTrainingConfig,
    CorruptionConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainingConfig,
)

RECIPE = Recipe(
    name="seed001_compare",
    description="Seed 001 Tables 6 and 8: augmentation and PGD-AT vs Auxiliary Training",
    variants=(
        "none",
        "none@corruption_augment",
        "none@auxiliary",
        "none@pgd",
        "none@auxiliary_pgd",
    ),
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=5000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig(epochs=3, learning_rate=0.1, schedule="step"),
    adversarial=AdversarialConfig(eps=0.1, pgd_steps=7),
    auxiliary=AuxTrainingConfig(alpha=0.05, penalty=0.05),
    # Table 8's attacks: BIM and MIM in L∞ and L2 (and PGD in L2) stay on.
    evaluation=EvalConfig.brief(bim_steps=10, mim_steps=10, l2_eps=1.5),
    corruption=CorruptionConfig(enabled=True, examples=1000),
)
