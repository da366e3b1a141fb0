"""Seed 002 analog, Table 2: single-task vs supervised (coarse-label) vs contrastive multitask.

"Multitask Learning With Self-Supervision to Improve Robustness" (Wang & Wang, 2021) §4.3: does
the contrastive task add robustness beyond "just another task"? The supervised multitask model
adds a head for coarse labels (CIFAR-100's 20 superclasses in the paper; here Fashion-MNIST's
five garment groups of `tfaux.aux.coarse.COARSE_GROUPS`: tops, bottoms, dresses and coats,
footwear, bags). Same schedule and attacks as `seed002_contrastive` (Adam 3e-4, wd 1e-4, cosine
after a constant warm-up; FGSM and PGD-7/20/50 at ε = 8/255 with α = 2/255 and at 0.1 with the
same α/ε, on the fine logits, with the sanity checks; the paper's "8/225" read as 8/255). Scaled
for 2 CPU cores: real Fashion-MNIST (10,000 training images, 2,000 test images), a ResNet-8,
6 epochs with 2 warm-up epochs, batch 128 (the paper's 256 would halve the optimizer steps; see
`seed002_contrastive`). On CIFAR-100 (TFDS, offline once prepared) the same recipe uses the
dataset's own superclasses: `--set data.dataset=cifar100`.

`projection=0` is the augmentation control: the same two SimCLR views as `projection` with the
NT-Xent term weighted λ_c = 0 (the classifier sees both views with repeated labels, the
projection head gets no gradient), so projection − projection=0 is what NT-Xent itself adds.
"""

from tfaux.config import DataConfig, EvalConfig, ModelConfig, Recipe, TrainingConfig

RECIPE = Recipe(
    name="seed002_coarse",
    description="Seed 002 Table 2: single-task vs coarse-label multitask vs contrastive multitask",
    variants=("none", "coarse", "projection", "projection=0"),
    aux_weight=1.0,
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=10000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig.seed002(),
    evaluation=EvalConfig.seed002(),
)
