"""Seed 004 analog, Table 1: augmentation, contrastive loss, Free-AT (plain, scheduled), denoiser.

"Improving Free Adversarial Training Using Scheduling, Augmentations, and Denoising"
(Volkovskyi, Hyder & Zhu). The data pipeline adds no augmentation (`data.augment=False`: not
even the default crop and flip), so each variant's only augmentation is what its ":geometric"
adds. The variants and the rows of the paper's Table 1 they stand for:
- `none`: "Fine-Tuned ResNet18", their baseline "without any data augmentation";
- `none:geometric`: "ResNet18 w/ Data Aug", geometric augmentation (hue, saturation, rotation,
  flip; on grayscale Fashion-MNIST hue and saturation are the identity, so rotation and flip
  remain; `tfaux.data.augment`);
- `projection=0.1:geometric`: the low contrastive weight (Figure 1's "Contrastive Aug.", not in
  Table 1), λ = 0.1;
- `projection=1:geometric`: "Data Aug + Contrastive Loss" (Figure 1's "High CL Loss Aug."), a
  contrastive loss between two augmentations of each image with λ = 1 (NT-Xent on a projection
  head; the paper names only a "Siamese" loss);
- `projection=1@free:geometric`: "Data Aug + CL + Inner FGSM", unscheduled Free-AT;
- `projection=1@free_scheduled:geometric`: "Data Aug + CL + Scheduled FGSM", m and ε growing
  over training (their final model);
- `projection=1@fgsm:geometric`: not a row of theirs, the denoiser's control: the same loop
  (FGSM-AT, their autoencoder's training perturbation: "FGSM attacks from the classifier
  currently being trained") and augmentation without the denoiser;
- `denoise=10+projection=1@fgsm:geometric`: "Data Aug + CL + Autoencoder", the denoising
  autoencoder front end, trained jointly on geometric + FGSM inputs to give back the original
  image with λ = 10 (at λ = 1 the classifier's gradient, which reaches the front end too,
  outweighed reconstruction in our short runs); the report says whether it learns a noisy
  identity, as they found, the FGSM and the geometric part apart.
Their two validation sets: geometrically augmented, and FGSM from the *baseline* model plus
geometric noise (a transfer attack; white-box attacks and sanity checks are reported too).
Scaled for 2 CPU cores: real Fashion-MNIST (10,000 training images, 2,000 test images), a
ResNet-8 (the paper: a pretrained ResNet-18 on Tiny ImageNet), 8 epochs, ε = 0.1. The Free
rows take natural training's optimizer steps, 8 ÷ m = 2 passes over the data, so the scheduled
row's 2-epoch ramp (half of m and ε in the first pass) trains its second pass at full m and ε
(at 4 epochs, the size before the reproduction, the schedule never completed).

Schedule: one-cycle SGD (warm-up to 0.2 over 20 % of the steps, cosine to 0), which anneals
within these few epochs; the plateau schedule these recipes used before (seed 000's) is
`--set training.schedule=plateau --set training.learning_rate=0.1`.
"""

from tfaux.config import (
    AdversarialConfig,
    Claim,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainingConfig,
)

RECIPE = Recipe(
    name="seed004_augment",
    description="Seed 004 Table 1: +geometric aug, +contrastive (low/high), +Free-AT (plain, "
    "scheduled), +denoiser and its control",
    variants=(
        "none",
        "none:geometric",
        "projection=0.1:geometric",
        "projection=1:geometric",
        "projection=1@free:geometric",
        "projection=1@free_scheduled:geometric",
        "projection=1@fgsm:geometric",
        "denoise=10+projection=1@fgsm:geometric",
    ),
    aux_weight=1.0,
    data=DataConfig(
        dataset="fashion_mnist", batch_size=128, train_size=10000, test_size=2000, augment=False
    ),
    model=ModelConfig(backbone="resnet8"),
    training=TrainingConfig(epochs=8, learning_rate=0.2, schedule="onecycle"),
    adversarial=AdversarialConfig(eps=0.1, replays=4, ramp_epochs=2),
    evaluation=EvalConfig.brief(augmented=("geometric",)),
    # Table 1's two columns: the geometrically augmented set ("augmented:geometric") and FGSM from
    # the baseline plus geometric noise ("augmented_fgsm:geometric"); the paper's rows all use
    # Data Aug + CL (λ = 1 here) under the adversarial loops.
    claims=(
        Claim(
            "seed 004, §4.1 and Table 1",
            "Geometric augmentation 'significantly improved' accuracy: 35 vs 32 % (geometric set)",
            a="none:geometric",
            b="none",
            metric="augmented:geometric",
            effect=3.0,
        ),
        Claim(
            "seed 004, §5.1 and Table 1",
            "Contrastive loss 'can significantly increase' robustness: 48 vs 35 % (geometric set)",
            a="projection=1:geometric",
            b="none:geometric",
            metric="augmented:geometric",
            effect=13.0,
        ),
        Claim(
            "seed 004, §5.1 and Table 1",
            "The high-CL model 'performed the best': 48 vs baseline 32 % (geometric set)",
            a="projection=1:geometric",
            b="none",
            metric="augmented:geometric",
            effect=16.0,
        ),
        Claim(
            "seed 004, §5.1 and Figure 1",
            "High contrastive loss 'performed the best', above low CL (Figure 1; no number)",
            a="projection=1:geometric",
            b="projection=0.1:geometric",
            metric="augmented:geometric",
        ),
        Claim(
            "seed 004, §5.2 and Table 1",
            "Scheduled FGSM 'performed the best': 42 vs unscheduled (inner) FGSM 16 %",
            a="projection=1@free_scheduled:geometric",
            b="projection=1@free:geometric",
            metric="augmented_fgsm:geometric",
            effect=26.0,
        ),
        Claim(
            "seed 004, §5.2 and Table 1",
            "Scheduled FGSM 'performed the best': 42 vs the denoising autoencoder 24 %",
            a="projection=1@free_scheduled:geometric",
            b="denoise=10+projection=1@fgsm:geometric",
            metric="augmented_fgsm:geometric",
            effect=18.0,
        ),
        Claim(
            "seed 004, Table 1",
            "FGSM set: Data Aug + CL + Scheduled FGSM 42 vs Data Aug + CL 28 %",
            a="projection=1@free_scheduled:geometric",
            b="projection=1:geometric",
            metric="augmented_fgsm:geometric",
            effect=14.0,
        ),
        Claim(
            "seed 004, §5.2",
            "Autoencoder 'performed so poorly compared to the FGSM inner loop' (Table 1: 24 vs 16)",
            a="denoise=10+projection=1@fgsm:geometric",
            b="projection=1@free:geometric",
            metric="augmented_fgsm:geometric",
            direction="lower",
        ),
    ),
)
