"""Seed 002 analog, Table 1: single-task vs contrastive multitask, under single-task attacks.

"Multitask Learning With Self-Supervision to Improve Robustness" (Wang & Wang, 2021): a shared
encoder with a classification head and a SimCLR projection head (128-d, NT-Xent with τ = 0.5 on
two augmented views; the classifier predicts both views' labels, eq. 5, λ_c = λ_s = 1), Adam
3e-4 with weight decay 1e-4, cosine annealing after a constant warm-up. The paper reports 60 %
PGD accuracy *without* adversarial training: the sanity checks decide whether ours survives them.
Attacks on the primary logits only (single-task, eq. 6): FGSM, PGD-7/20/50 at ε = 8/255 (α =
2.5ε/k) and at ε = 0.1. Scaled for 2 CPU cores: real Fashion-MNIST (10,000 training images, 2,000
test images), a ResNet-8 (the paper: ResNet-18 on CIFAR-10), 6 epochs with 2 warm-up epochs
(the paper: 100 with 10).
"""

from tfaux.config import DataConfig, EvalConfig, ModelConfig, Recipe, TrainingConfig

RECIPE = Recipe(
    name="seed002_contrastive",
    description="Seed 002 Table 1: single-task vs contrastive multitask (SimCLR head), PGD-7/20/50",
    variants=("none", "projection"),
    aux_weight=1.0,
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=10000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig.seed002(),
    evaluation=EvalConfig.seed002(),
)
