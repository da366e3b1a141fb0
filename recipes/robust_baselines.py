"""Robust-training baselines side by side: standard, PGD-AT, TRADES, MART, FGSM-RS and Free-AT.

Madry et al. 2018, "Towards deep learning models resistant to adversarial attacks" (PGD-AT, 7
steps, α = 2.5ε/7, random start); Zhang et al. 2019, "Theoretically principled trade-off between
robustness and accuracy" (TRADES: clean CE + β·KL(p(x) ‖ p(x′)), x′ by 7 KL-PGD steps);
Wang et al. 2020, "Improving adversarial robustness requires revisiting misclassified examples"
(MART: boosted CE on PGD-7 examples + β·KL weighted by 1 − p_y(x)); Wong et al. 2020, "Fast is
better than free" (FGSM from a random start, α = 1.25ε); Shafahi et al. 2019, "Adversarial
training for free!" (m = 4 replays, trained epochs ÷ m). β = 6 for TRADES and MART, as both
papers on CIFAR-10.

Scaled for 2 CPU cores: real Fashion-MNIST (10,000 training images, 2,000 test images), a
ResNet-8, ε = 0.1 in training and evaluation, 16 epochs of 79 steps (batch 128): 1,264 optimizer
steps for every variant. The budget per variant in forward-backward passes over a batch (the
runner reports them as `gradient_passes`): standard 1,264, PGD-7-AT 8 × 1,264 = 10,112, TRADES
and MART 9 × 1,264 = 11,376 each (7 attack steps, then the clean and the adversarial pass),
FGSM-RS 2 × 1,264 = 2,528, Free-AT 1,264 (4 epochs of 4 replays). Measured per epoch on 2 busy
cores: standard 10 s, PGD-7-AT 30 s, TRADES 38 s (MART the same passes); the evaluation
(`EvalConfig.brief()`: FGSM and PGD-10 at ε = 0.1, short curves, every sanity check) about 20 s
per variant. About 35–40 min in all on 2 busy cores, less on idle ones.
"""

from tfaux.config import (
    AdversarialConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainingConfig,
)

RECIPE = Recipe(
    name="robust_baselines",
    description="Standard vs PGD-AT vs TRADES vs MART vs FGSM-RS vs Free-AT at ε = 0.1",
    variants=("none", "none@pgd", "none@trades", "none@mart", "none@fgsm_rs", "none@free"),
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=10000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig(epochs=16, learning_rate=0.1, plateau_patience=2),
    adversarial=AdversarialConfig(eps=0.1, pgd_steps=7, beta=6.0, replays=4, guard="log"),
    evaluation=EvalConfig.brief(eps=0.1),
)
