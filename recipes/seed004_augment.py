"""Seed 004 analog, Table 1: augmentation, contrastive loss, scheduled Free-AT, denoiser.

"Improving Free Adversarial Training Using Scheduling, Augmentations, and Denoising"
(Volkovskyi, Hyder & Zhu), each row adding to the last:
- baseline: no in-graph augmentation;
- + geometric augmentation (hue, saturation, rotation, flip; on grayscale Fashion-MNIST hue and
  saturation are the identity, so rotation and flip remain; `tfaux.data.augment`);
- + a contrastive loss between two augmentations of each image, with a low (λ = 0.1) and a high
  (λ = 1) weight (NT-Xent on a projection head; the paper names only a "Siamese" loss);
- + scheduled Free-AT (m and ε growing over training, their final model);
- + the denoising autoencoder front end, trained jointly on geometric + FGSM inputs to give back
  the original image with λ = 10 (at λ = 1 the classifier's gradient, which reaches the front
  end too, outweighed reconstruction in our short runs); the report says whether it learns a
  noisy identity, as they found.
Their two validation sets: geometrically augmented, and FGSM from the *baseline* model plus
geometric noise (a transfer attack; white-box attacks and sanity checks are reported too).
Scaled for 2 CPU cores: real Fashion-MNIST (10,000 training images, 2,000 test images), a
ResNet-8 (the paper: a pretrained ResNet-18 on Tiny ImageNet), 4 epochs, ε = 0.1.

Schedule: one-cycle SGD (warm-up to 0.2 over 20 % of the steps, cosine to 0), which anneals
within these few epochs; the plateau schedule these recipes used before (seed 000's) is
`--set training.schedule=plateau --set training.learning_rate=0.1`.
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
    name="seed004_augment",
    description="Seed 004 Table 1: +geometric aug, +contrastive (low/high), +scheduled Free-AT, "
    "+denoiser",
    variants=(
        "none",
        "none:geometric",
        "projection=0.1:geometric",
        "projection=1:geometric",
        "projection=1@free_scheduled:geometric",
        "denoise=10+projection=1@fgsm:geometric",
    ),
    aux_weight=1.0,
    data=DataConfig(dataset="fashion_mnist", batch_size=128, train_size=10000, test_size=2000),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig(epochs=4, learning_rate=0.2, schedule="onecycle"),
    adversarial=AdversarialConfig(eps=0.1, replays=4, ramp_epochs=2),
    evaluation=EvalConfig.brief(augmented=("geometric",)),
)
