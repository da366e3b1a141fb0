"""Seed 001 analog (Table 9): Auxiliary Training without each of its four techniques.

Full Auxiliary Training vs without Selective BatchNorm (plain BN over all chunks), without the KL
self-distillation, without the attention modules, and without weight merging (γ stays 0).
Reported: clean accuracy and mCE relative to an AlexNet trained by the same recipe. Like
`seed001_aux` but 5,000 training images and 3 epochs, since every variant costs t + 1 = 5
backbone passes per step.

Schedule: seed 001's own step schedule (SGD 0.1, ÷10 at 1/3, 2/3 and 29/30 of training), per
step, so it anneals within these few epochs as in the paper's 300.
"""

from tfaux.config import (
    AuxTrainingConfig,
    CorruptionConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainingConfig,
)

RECIPE = Recipe(
    name="seed001_ablation",
    description="Seed 001 Table 9: Auxiliary Training w/o SBN, distillation, attention, merging",
    variants=(
        "none@auxiliary",
        "none@auxiliary_no_sbn",
        "none@auxiliary_no_distill",
        "none@auxiliary_no_attention",
        "none@auxiliary_no_merge",
    ),
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=5000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig(epochs=3, learning_rate=0.1, schedule="step"),
    auxiliary=AuxTrainingConfig(alpha=0.05, penalty=0.05),
    evaluation=EvalConfig.brief(),
    corruption=CorruptionConfig(enabled=True, examples=1000),
)
