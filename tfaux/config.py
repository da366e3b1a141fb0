"""Recipes as typed, frozen dataclasses: the schema alone (`tfaux.overrides` parses `--set`).

Every field is validated in `__post_init__`, so a bad value fails before any work starts, with
the house message: what was expected, then what was received.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field

from tfaux.names import require, unknown_name

STRATEGIES = ("default", "mirrored", "multi_worker")  # tfaux.distribute reads them here
OPTIMIZERS = ("sgd", "adamw")
# Which epoch a trained variant is evaluated at (see `TrainingConfig.select`).
SELECTIONS = ("auto", "last", "best_clean", "best_robust")
# What a recipe's variants must spend equally (see `Recipe.budget`).
BUDGETS = ("optimizer_steps", "example_passes", "none")
# What picks a recipe's best variant, the one exported (see `Recipe.objective`).
OBJECTIVES = ("clean", "robust")
SCHEDULES = ("plateau", "cosine", "onecycle", "step")
# Keras dtype policies a model trains under (see `tfaux.precision`); evaluation is float32.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# The -C benchmark's corruptions (imagecorruptions' names; the last four are its validation set).
C_CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "speckle_noise",
    "gaussian_blur",
    "spatter",
    "saturate",
)
# Which constants make the -C set (see `tfaux.data.corrupted_set`): CIFAR-10-C's generator at the
# images' own size, or ImageNet-C's (imagecorruptions) on images upsampled to 32 px.
C_CONSTANTS = ("cifar10_c", "imagenet_c")
TRAIN_CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "rotation", "contrast_brightness")
GUARD_ACTIONS = ("off", "log", "stop", "rollback")
# What aux targets are computed from in training (see `AdversarialConfig.aux_targets`).
AUX_TARGETS = ("clean", "perturbed")
# KerasTuner search of a variant's λ (see `TuningConfig`, `tfaux.tune`).
TUNERS = ("bayesian", "hyperband")
TUNING_OBJECTIVES = ("val_accuracy", "val_pgd_accuracy", "val_clean_pgd_accuracy")


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """An unknown choice fails like an unknown name: the closest choices, then all of them."""
    if value not in choices:
        raise unknown_name(key, value, choices)


@dataclass(frozen=True)
class DataConfig:
    """Which data and how it is split, subset and batched (see `tfaux.data.load`).

    `dataset="folder"` reads your own images from `path` (one subfolder per class, optionally
    under `train/` and `test/`), `dataset="tfds:<name>"` any TFDS image-classification dataset
    prepared in `data_dir`. For those, `image_size` defaults to the most common size, `channels`
    to what the images hold, `test_fraction` of each class is the test split when there is none,
    `skip_bad_images` skips undecodable images instead of failing, and decoded images above
    `memory_limit` ("4GiB"; default a quarter of the memory) are streamed from `cache_dir`.
    `flip` says whether a left-right mirror keeps every label (random flips in training, the
    flip test in evaluation); None: the dataset's rule (your own images: no).
    """

    dataset: str = "fashion_mnist"
    batch_size: int = 128
    val_fraction: float = 0.05
    train_size: int | None = None
    test_size: int | None = None
    augment: bool | None = None
    image_size: int | None = None
    download: bool = False
    data_dir: str | None = None
    path: str | None = None
    channels: int | None = None
    test_fraction: float = 0.2
    skip_bad_images: bool = False
    memory_limit: str | None = None
    cache_dir: str = "~/.cache/tfaux/images"
    flip: bool | None = None

    def __post_init__(self):
        require(self.batch_size > 0, "batch_size > 0", batch_size=self.batch_size)
        require(0 < self.val_fraction < 1, "0 < val_fraction < 1", val_fraction=self.val_fraction)
        for key in ("train_size", "test_size", "image_size"):
            value = getattr(self, key)
            require(value is None or value > 0, f"{key} > 0 or None", **{key: value})
        require(self.channels in (None, 1, 3), "channels 1, 3 or None", channels=self.channels)
        require(
            0 < self.test_fraction < 1, "0 < test_fraction < 1", test_fraction=self.test_fraction
        )
        require(
            self.dataset != "folder" or bool(self.path),
            "data.path=DIR (a folder with one subfolder per class) with dataset 'folder'",
            path=self.path,
        )


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and heads (see `tfaux.models.build`)."""

    backbone: str = "resnet8"
    width: float = 1.0
    bn_momentum: float = 0.9
    dropout: float = 0.0

    def __post_init__(self):
        require(self.width > 0, "width > 0", width=self.width)
        require(0 <= self.bn_momentum < 1, "0 <= bn_momentum < 1", bn_momentum=self.bn_momentum)
        require(0 <= self.dropout < 1, "0 <= dropout < 1", dropout=self.dropout)


@dataclass(frozen=True)
class TrainingConfig:
    """Optimizer and schedule.

    Seed 000's: `optimizer="sgd"` (momentum, decoupled weight decay), `schedule="plateau"` (LR
    ×0.2 when validation accuracy plateaus), early stopping (which only stops). Seed 002's:
    `optimizer="adamw"` (Adam with decoupled weight decay), `schedule="cosine"`: the learning rate
    stays constant for `warmup_epochs`, then follows a cosine to 0 over the remaining epochs.
    `schedule="onecycle"` converges within a few epochs: per optimizer step a linear warm-up to
    `learning_rate` over the first `warmup_fraction` of training, then a cosine to 0 (Smith &
    Topin). `schedule="step"` is seed 001's: ÷10 at 1/3, 2/3 and 29/30 of training.

    `select` is the epoch a variant is evaluated (and exported) at: "last", "best_clean" (the
    best `val_accuracy`), "best_robust" (the best `val_pgd_accuracy` on `monitor.robust_examples`
    validation images: Rice et al. 2020's early stopping against robust overfitting), or "auto",
    the rule each loop declares (standard training: best_clean; adversarial loops: best_robust;
    Auxiliary Training: last, its stage-2 model). Early stopping (`stop_patience`) only stops,
    watching the same metric; it never restores, and a loop whose rule is "last" trains its full
    schedule.

    `precision` is the Keras dtype policy training computes in: "float32", "mixed_bfloat16" or
    "mixed_float16" (with loss scaling); variables, logits and losses stay float32, and the
    evaluation, attacks and export always run on a float32 rebuild (see `tfaux.precision`).
    """

    epochs: int = 5
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    plateau_patience: int = 2
    stop_patience: int = 10
    seed: int = 0
    strategy: str = "default"
    optimizer: str = "sgd"
    schedule: str = "plateau"
    warmup_epochs: int = 0
    precision: str = "float32"
    select: str = "auto"
    warmup_fraction: float = 0.2

    def __post_init__(self):
        require(self.epochs > 0, "epochs > 0", epochs=self.epochs)
        require(self.learning_rate > 0, "learning_rate > 0", learning_rate=self.learning_rate)
        require(0 <= self.momentum < 1, "0 <= momentum < 1", momentum=self.momentum)
        require(self.weight_decay >= 0, "weight_decay >= 0", weight_decay=self.weight_decay)
        require(
            self.plateau_patience > 0,
            "plateau_patience > 0",
            plateau_patience=self.plateau_patience,
        )
        require(self.stop_patience > 0, "stop_patience > 0", stop_patience=self.stop_patience)
        _choice("training.strategy", self.strategy, STRATEGIES)
        _choice("training.optimizer", self.optimizer, OPTIMIZERS)
        _choice("training.schedule", self.schedule, SCHEDULES)
        _choice("training.precision", self.precision, PRECISIONS)
        _choice("training.select", self.select, SELECTIONS)
        require(
            0 <= self.warmup_fraction < 1,
            "0 <= warmup_fraction < 1",
            warmup_fraction=self.warmup_fraction,
        )
        require(
            0 <= self.warmup_epochs < self.epochs,
            "0 <= warmup_epochs < epochs",
            warmup_epochs=self.warmup_epochs,
            epochs=self.epochs,
        )

    @classmethod
    def seed002(cls, **overrides) -> TrainingConfig:
        """Seed 002's schedule: Adam 3e-4, weight decay 1e-4, constant for the warm-up epochs,
        then cosine annealing (the paper: 100 epochs, 10 of warm-up; here 6 and 2)."""
        settings = {
            "epochs": 6,
            "optimizer": "adamw",
            "schedule": "cosine",
            "learning_rate": 3e-4,
            "weight_decay": 1e-4,
            "warmup_epochs": 2,
        }
        return cls(**{**settings, **overrides})


@dataclass(frozen=True)
class MonitorConfig:
    """What TensorBoard shows during training (`tensorboard --logdir runs/<run>/tensorboard`).

    Every epoch: each head's loss, accuracy, the learning rate, the ε/m schedules and learned
    loss weights. `val_pgd_accuracy` (PGD-`adversarial.pgd_steps` at `evaluation.eps` on the
    first `robust_examples` validation images; 0 turns it off) beside the clean `val_accuracy`:
    every epoch for a variant whose epoch is selected by it (adversarial loops) and in a recipe
    whose objective is "robust"; elsewhere every `robust_every` epochs and after the last (0:
    never; NaN in the epochs between). Every `images_every` epochs (0: never) pictures of
    `images` validation images: inputs, reconstruction vs input, predicted vs target Fourier
    maps, adversarial examples and their perturbation.

    Monitoring is not free: each monitor's seconds are in the results ("monitor_seconds") and
    the report. The defaults keep a natural run's monitoring to a few percent of its training
    (`docs/decisions.md`, "Monitoring costs"); `robust_every=1` and `images_every=1` are the
    per-epoch monitoring of before.
    """

    robust_examples: int = 256
    robust_every: int = 0
    images_every: int = 1
    images: int = 8

    def __post_init__(self):
        for key in ("robust_examples", "robust_every", "images_every"):
            require(getattr(self, key) >= 0, f"{key} >= 0", **{key: getattr(self, key)})
        require(self.images > 0, "images > 0", images=self.images)


@dataclass(frozen=True)
class AdversarialConfig:
    """Settings of the robust-training loops a variant selects with "@<loop>" (`list_loops()`).

    `eps` is the L∞ training budget of every loop that trains at ε; `pgd_steps` the steps of
    multi-step attacks (α = 2.5ε/steps); `clean_fraction` of each batch stays clean in FGSM/PGD
    training; `beta` weighs the robust regularizer of TRADES and MART (6 in both papers on
    CIFAR-10, 1 for TRADES on MNIST). Free adversarial training replays each batch `replays`
    times (m); its seed 004 variants grow m and ε over `ramp_epochs`, average δ with β = `ema`,
    or use δ in a fraction `gamma` of the replays; δ ascends `free_delta_loss`, the classifier's
    cross-entropy ("classifier", as FGSM/PGD-AT) or the total loss with the aux terms ("total").
    Single-step loops run the catastrophic-overfitting guard on `guard_examples` training images
    (`guard` action). `aux_targets` is what aux targets are computed from: the clean images
    ("clean") or the perturbed ones the weights train on ("perturbed"; under FGSM-AT a Recon
    target of the clean image makes Recon a denoiser). A variant overrides any of these for
    itself in brackets after its loop: "fourier@fgsm[eps=0.3]" (see `tfaux.variant.Variant.recipe`).
    """

    eps: float = 0.1
    pgd_steps: int = 7
    clean_fraction: float = 0.0
    replays: int = 4
    ramp_epochs: int = 2
    gamma: float = 0.5
    ema: float = 0.9
    free_delta_loss: str = "classifier"
    guard: str = "log"
    guard_examples: int = 256
    beta: float = 6.0
    aux_targets: str = "clean"

    def __post_init__(self):
        require(0 <= self.eps <= 1, "0 <= eps <= 1 (pixels are in [0, 1])", eps=self.eps)
        for key in ("pgd_steps", "replays", "ramp_epochs", "guard_examples"):
            require(getattr(self, key) > 0, f"{key} > 0", **{key: getattr(self, key)})
        require(
            0 <= self.clean_fraction < 1,
            "0 <= clean_fraction < 1",
            clean_fraction=self.clean_fraction,
        )
        require(0 < self.gamma <= 1, "0 < gamma <= 1", gamma=self.gamma)
        require(0 <= self.ema < 1, "0 <= ema < 1", ema=self.ema)
        _choice("free_delta_loss", self.free_delta_loss, ("classifier", "total"))
        require(self.guard in GUARD_ACTIONS, f"guard in {GUARD_ACTIONS}", guard=self.guard)
        require(self.beta >= 0, "beta >= 0", beta=self.beta)
        _choice("adversarial.aux_targets", self.aux_targets, AUX_TARGETS)


@dataclass(frozen=True)
class RandomSignConfig:
    """Seed 003's random-sign layers, g(x) = x + ε·x⊙l(x) with l = ±sgn(x) (+ w.p. `probability`),
    in training only, for variants on the random-sign loop (the paper's "R-" models).

    `after` names where: "input" (the standardized input) and/or backbone layers, e.g.
    "stage1_block1_out" (the names of `create_backbone(...).layers`).
    """

    after: tuple[str, ...] = ("input",)
    eps: float = 0.1
    probability: float = 0.5

    def __post_init__(self):
        require(
            bool(self.after),
            'at least one place in random_sign.after ("input" or backbone layer names)',
            after=self.after,
        )
        require(self.eps >= 0, "eps >= 0", eps=self.eps)
        require(0 <= self.probability <= 1, "0 <= probability <= 1", probability=self.probability)


@dataclass(frozen=True)
class AuxTrainingConfig:
    """Auxiliary Training (Zhang et al., CVPR 2020), its ablations and its plain-augmentation
    baseline (the loops of `tfaux.training.loops.auxiliary_training`).

    Eq. (7): CE(primary) + Σ_j α_j·CE(aux_j) + λ·Σ_j [KL(primary ‖ aux_j) + γ·‖θ_0 − θ_j‖²]
    with α_j = `alpha`, λ = `penalty`, γ = 0 before epoch `merge_epoch` and 1 from it on (None:
    the last third of training). One auxiliary classifier per train-time corruption in
    `corruptions`; the PGD-trained variant (Table 8) uses `adversarial.eps` and `pgd_steps`.
    `distillation` is "mutual" (the KL trains both classifiers: the paper's "student ⇄
    student") or "teacher" (the primary's distribution is a fixed target within each step).
    """

    corruptions: tuple[str, ...] = TRAIN_CORRUPTIONS
    alpha: float = 0.05
    penalty: float = 0.05
    merge_epoch: int | None = None
    distillation: str = "mutual"

    def __post_init__(self):
        require(bool(self.corruptions), "at least one corruption", corruptions=self.corruptions)
        for name in self.corruptions:
            if name not in TRAIN_CORRUPTIONS:
                raise unknown_name("train-time corruption", name, TRAIN_CORRUPTIONS)
        require(
            len(set(self.corruptions)) == len(self.corruptions),
            "distinct corruptions",
            corruptions=self.corruptions,
        )
        require(self.alpha >= 0, "alpha >= 0", alpha=self.alpha)
        require(self.penalty >= 0, "penalty (λ) >= 0", penalty=self.penalty)
        _choice("auxiliary.distillation", self.distillation, ("mutual", "teacher"))
        require(
            self.merge_epoch is None or self.merge_epoch >= 0,
            "merge_epoch >= 0 or None",
            merge_epoch=self.merge_epoch,
        )

    @property
    def chunks(self) -> int:
        """Chunks of a training batch: the clean images and one corrupted copy per corruption."""
        return len(self.corruptions) + 1

    def stage_two_epoch(self, epochs: int) -> int:
        """The first epoch of stage 2 (γ = 1)."""
        return epochs - max(1, epochs // 3) if self.merge_epoch is None else self.merge_epoch


@dataclass(frozen=True)
class CorruptionConfig:
    """The corruption benchmark (Hendrycks & Dietterich; seed 001 eq. 8) and the Fourier heat map.

    With `enabled`, the first `examples` test images get a "-C" version (`corruptions` ×
    `severities`, generated once and cached under `cache_dir`; `constants` "cifar10_c", the
    default, uses CIFAR-10-C's generator at the images' own size, as the -C set seed 001 reports,
    and "imagenet_c" the imagecorruptions package's ImageNet-C constants), every
    variant's error is measured on it, and CE = Σ_s E / Σ_s E_reference per corruption is taken
    against a `reference` backbone (AlexNet, as in the paper) trained by the same recipe with the
    standard loop for `reference_epochs` (None: 3 × `training.epochs`, on the recipe's schedule
    stretched to them): its clean error is every CE's denominator, so it is trained past the
    variants' short budget, and every CE table says for how long; mCE averages the 15 common
    corruptions. `heatmap_examples` > 0 adds a Fourier
    heat map (Yin et al.) per variant on that many test images, with L2 norm `heatmap_eps` per
    basis image (None: Yin et al.'s CIFAR setting scaled to the image size).
    """

    enabled: bool = False
    examples: int = 1000
    corruptions: tuple[str, ...] = C_CORRUPTIONS
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    constants: str = "cifar10_c"
    reference: str = "alexnet"
    cache_dir: str = "~/.cache/tfaux/corruptions"
    heatmap_examples: int = 0
    heatmap_eps: float | None = None
    reference_epochs: int | None = None

    def __post_init__(self):
        require(self.examples > 0, "examples > 0", examples=self.examples)
        require(
            self.reference_epochs is None or self.reference_epochs > 0,
            "reference_epochs > 0 or None",
            reference_epochs=self.reference_epochs,
        )
        for name in self.corruptions:
            if name not in C_CORRUPTIONS:
                raise unknown_name("-C corruption", name, C_CORRUPTIONS)
        _choice("corruption.constants", self.constants, C_CONSTANTS)
        require(bool(self.corruptions), "at least one corruption", corruptions=self.corruptions)
        require(
            bool(self.severities) and set(self.severities) <= {1, 2, 3, 4, 5},
            "severities within 1..5",
            severities=self.severities,
        )
        require(
            self.heatmap_examples >= 0,
            "heatmap_examples >= 0",
            heatmap_examples=self.heatmap_examples,
        )
        require(
            self.heatmap_eps is None or self.heatmap_eps >= 0,
            "heatmap_eps >= 0 or None",
            heatmap_eps=self.heatmap_eps,
        )


@dataclass(frozen=True)
class EvalConfig:
    """The robustness report: attacks on the primary logits with the true labels, ε curves and
    the sanity checks against gradient masking (see `tfaux.evaluate.robustness`).

    `eps` is the main L∞ budget (0.1 is the Fashion-MNIST convention); FGSM also runs at every
    `fgsm_eps`; PGD-k for each k in `pgd_steps` (the last is the one the checks use). Expensive
    parts run on a prefix of the test set: the ε curves on `curve_examples`, the sanity attacks on
    `sanity_examples`, SPSA and C&W-L2 on `blackbox_examples`, and PGD-k on `pgd_examples` (None:
    every test image; a natural model's PGD accuracy is 0 on any prefix, and PGD on all of them is
    most of its evaluation). A step count or `l2_eps` of 0
    skips that attack. FGSM and every PGD-k also run at each `extra_eps` on the whole test set.
    `pgd_step_size` is the L∞ PGD step α at `eps` for every k (None: 2.5ε/k, Madry et al.); at
    the other budgets (`extra_eps`, the curves) α scales with the budget, keeping α/ε.

    `autoattack` runs AutoAttack (`autoattack_version`: standard, plus or rand; its attacks with
    `autoattack_steps` iterations and `autoattack_queries` Square queries) at `eps` on the first
    `autoattack_examples` test images, and its worst case becomes the headline robust accuracy
    (PGD stays, as the cheap number and the curves). Its own checks join the sanity checks.

    Beyond attacks: `disturbances` adds seed 003's test-time disturbances (random crop, flip,
    grayscale, color jitter, five-crop); `augmented` adds seed 004's accuracy under each named
    augmentation and under FGSM transferred from the standard "none" variant followed by that
    augmentation; a variant with the denoiser front end gets a noise report on
    `denoiser_examples` test images.
    """

    eps: float = 0.1
    fgsm_eps: tuple[float, ...] = (0.1, 0.3)
    pgd_steps: tuple[int, ...] = (20,)
    pgd_step_size: float | None = None
    restarts: int = 1
    pgd_examples: int | None = None
    bim_steps: int = 10
    mim_steps: int = 10
    l2_eps: float = 1.5
    curve_eps: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    curve_examples: int = 500
    sanity: bool = True
    sanity_examples: int = 200
    blackbox_examples: int = 32
    spsa_steps: int = 20
    spsa_samples: int = 128
    cw_steps: int = 200
    tolerance: float = 0.02
    extra_eps: tuple[float, ...] = ()
    autoattack: bool = False
    autoattack_version: str = "standard"
    autoattack_examples: int = 200
    autoattack_steps: int = 100
    autoattack_queries: int = 5000
    disturbances: bool = False
    augmented: tuple[str, ...] = ()
    denoiser_examples: int = 500

    def __post_init__(self):
        require(
            self.denoiser_examples > 0,
            "denoiser_examples > 0",
            denoiser_examples=self.denoiser_examples,
        )
        for eps in (self.eps, *self.fgsm_eps, *self.curve_eps, *self.extra_eps):
            require(0 <= eps <= 1, "0 <= eps <= 1 (pixels are in [0, 1])", eps=eps)
        require(self.l2_eps >= 0, "l2_eps >= 0", l2_eps=self.l2_eps)
        require(
            bool(self.pgd_steps) and min(self.pgd_steps) > 0,
            "at least one PGD step count, each > 0",
            pgd_steps=self.pgd_steps,
        )
        require(
            self.pgd_step_size is None or 0 < self.pgd_step_size <= self.eps,
            "pgd_step_size in (0, eps] or None (2.5·eps/k)",
            pgd_step_size=self.pgd_step_size,
            eps=self.eps,
        )
        require(  # the ε curve at `eps` is read from the PGD column's first images
            self.pgd_examples is None or self.pgd_examples >= self.curve_examples,
            "pgd_examples >= curve_examples, or None (every test image)",
            pgd_examples=self.pgd_examples,
            curve_examples=self.curve_examples,
        )
        for key in ("bim_steps", "mim_steps"):
            require(getattr(self, key) >= 0, f"{key} >= 0", **{key: getattr(self, key)})
        for key in (
            "restarts",
            "curve_examples",
            "sanity_examples",
            "blackbox_examples",
            "spsa_steps",
            "cw_steps",
            "autoattack_examples",
            "autoattack_steps",
            "autoattack_queries",
        ):
            require(getattr(self, key) > 0, f"{key} > 0", **{key: getattr(self, key)})
        require(
            self.spsa_samples > 0 and self.spsa_samples % 2 == 0,
            "an even spsa_samples > 0",
            spsa_samples=self.spsa_samples,
        )
        require(0 <= self.tolerance < 1, "0 <= tolerance < 1", tolerance=self.tolerance)

    @classmethod
    def seed002(cls, **overrides) -> EvalConfig:
        """Seed 002's single-task attacks: FGSM and PGD-7/20/50 at ε = 8/255 with the paper's
        α = 2/255 (its "ε = 8/225, α = 2/225" read as 8/255 and 2/255, the CIFAR-10 convention)
        and at ε = 0.1 (α = 0.025, the same α/ε), curves up to 0.3, every sanity check."""
        settings = {
            "eps": 8 / 255,
            "fgsm_eps": (8 / 255, 0.1),
            "pgd_steps": (7, 20, 50),
            "pgd_step_size": 2 / 255,
            "extra_eps": (0.1,),
            "curve_eps": (0.01, 8 / 255, 0.05, 0.1, 0.2, 0.3),
        }
        return cls(**{**settings, **overrides})

    @classmethod
    def brief(cls, **overrides) -> EvalConfig:
        """A short report for recipes whose subject is not adversarial robustness: FGSM and
        PGD-10 at ε = 0.1, short curves, every sanity check (about a minute per ResNet-8)."""
        settings = {
            "fgsm_eps": (0.1,),
            "pgd_steps": (10,),
            "bim_steps": 0,
            "mim_steps": 0,
            "l2_eps": 0.0,
            "curve_eps": (0.05, 0.1, 0.3),
            "curve_examples": 200,
            "sanity_examples": 200,
            "blackbox_examples": 16,
            "spsa_steps": 10,
            "spsa_samples": 64,
        }
        return cls(**{**settings, **overrides})


@dataclass(frozen=True)
class TuningConfig:
    """`python recipes/run.py tune`: a KerasTuner search of one variant's aux-loss weights λ.

    One hyperparameter `lambda_<task>` per aux task of `variant` ("": the recipe's first variant
    with aux tasks), sampled on a log scale in [`weight_min`, `weight_max`]. `eps` and `replays`
    are optional search ranges (min, max) for the training ε (linear) and Free-AT's m (integers),
    allowed only for a variant whose loop uses them. `tuner` is "bayesian" (Gaussian-process
    Bayesian optimization, `max_trials` trials) or "hyperband" (successive halving with
    `hyperband_factor`, at most `epochs` per trial, capped at `max_trials` trials). Each trial
    trains `epochs` epochs (None: `training.epochs`) and is scored by `objective`: "val_accuracy",
    "val_pgd_accuracy" (PGD-`pgd_steps` at `evaluation.eps` on the first `robust_examples`
    validation images) or "val_clean_pgd_accuracy" (the mean of both).
    """

    variant: str = ""
    tuner: str = "bayesian"
    max_trials: int = 10
    objective: str = "val_accuracy"
    weight_min: float = 1e-4
    weight_max: float = 1.0
    eps: tuple[float, float] | None = None
    replays: tuple[int, int] | None = None
    robust_examples: int = 256
    pgd_steps: int = 10
    epochs: int | None = None
    hyperband_factor: int = 3

    def __post_init__(self):
        _choice("tuning.tuner", self.tuner, TUNERS)
        _choice("tuning.objective", self.objective, TUNING_OBJECTIVES)
        require(
            0 < self.weight_min < self.weight_max,
            "0 < weight_min < weight_max (λ is sampled on a log scale)",
            weight_min=self.weight_min,
            weight_max=self.weight_max,
        )
        if self.eps is not None:
            require(
                len(self.eps) == 2 and 0 <= self.eps[0] < self.eps[1] <= 1,
                "eps = (min, max) with 0 <= min < max <= 1, e.g. --set tuning.eps=0.05,0.2",
                eps=self.eps,
            )
        if self.replays is not None:
            require(
                len(self.replays) == 2 and 1 <= self.replays[0] < self.replays[1],
                "replays = (min, max) with 1 <= min < max, e.g. --set tuning.replays=2,8",
                replays=self.replays,
            )
        for key in ("max_trials", "robust_examples", "pgd_steps"):
            require(getattr(self, key) > 0, f"{key} > 0", **{key: getattr(self, key)})
        require(self.epochs is None or self.epochs > 0, "epochs > 0 or None", epochs=self.epochs)
        require(
            self.hyperband_factor >= 2,
            "hyperband_factor >= 2",
            hyperband_factor=self.hyperband_factor,
        )


# MGDA's normalizations of the gradients (LibMTL's `mgda_gn`): none, ‖g‖, L, L·‖g‖.
MGDA_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@dataclass(frozen=True)
class WeightingConfig:
    """Settings of the loss weightings a variant selects with "~<name>" (see `tfaux.weighting`;
    each weighting takes the fields named after it).

    GradNorm (Chen et al., ICML 2018): `gradnorm_alpha` is α, the pull toward equal training
    rates (0: equal gradient norms; the paper's 1.5), `gradnorm_learning_rate` the step size of
    the weights' own gradient descent. CAGrad: `cagrad_c` the radius c relative to the mean
    gradient's norm, `cagrad_rescale` 0/1/2 (divide by 1, 1 + c², 1 + c; LibMTL's 0.5 and 1).
    MGDA: `mgda_normalization` of each gradient before the min-norm point. Nash-MTL:
    `nash_max_norm` the norm the update is clipped to (0: none). OL-AUX: `olaux_learning_rate`
    β and `olaux_horizon` N, the steps between two updates of its weights. DWA:
    `dwa_temperature` τ.
    """

    gradnorm_alpha: float = 1.5
    gradnorm_learning_rate: float = 0.025
    cagrad_c: float = 0.5
    cagrad_rescale: int = 1
    mgda_normalization: str = "none"
    nash_max_norm: float = 1.0
    olaux_learning_rate: float = 5.0
    olaux_horizon: int = 5
    dwa_temperature: float = 2.0

    def __post_init__(self):
        require(self.gradnorm_alpha >= 0, "gradnorm_alpha >= 0", gradnorm_alpha=self.gradnorm_alpha)
        for key in ("gradnorm_learning_rate", "olaux_learning_rate", "dwa_temperature"):
            require(getattr(self, key) > 0, f"{key} > 0", **{key: getattr(self, key)})
        for key in ("cagrad_c", "nash_max_norm"):
            require(getattr(self, key) >= 0, f"{key} >= 0", **{key: getattr(self, key)})
        require(
            self.cagrad_rescale in (0, 1, 2),
            "cagrad_rescale in (0, 1, 2)",
            cagrad_rescale=self.cagrad_rescale,
        )
        require(
            self.mgda_normalization in MGDA_NORMALIZATIONS,
            f"mgda_normalization in {MGDA_NORMALIZATIONS}",
            mgda_normalization=self.mgda_normalization,
        )
        require(self.olaux_horizon >= 1, "olaux_horizon >= 1", olaux_horizon=self.olaux_horizon)


# What a claim compares (see `Claim.metric`): accuracies are higher-is-better, CE lower-is-better.
CLAIM_METRICS = {
    "clean": "clean test accuracy",
    "robust": "the headline robust accuracy (AutoAttack's worst case where it ran, else PGD-k)",
    "pgd": "PGD-k accuracy on the whole test set (the last of evaluation.pgd_steps)",
    "fgsm": "FGSM accuracy at an ε of evaluation.fgsm_eps, e.g. 'fgsm:0.1'",
    "attack": "the accuracy under any attack of the report, by its label, e.g. 'attack:BIM-10'",
    "disturbance": "accuracy under one of seed 003's disturbances, e.g. 'disturbance:random_crop'",
    "augmented": "accuracy on an augmented test set, e.g. 'augmented:geometric'",
    "augmented_fgsm": "accuracy under FGSM (from 'none') then an augmentation, "
    "e.g. 'augmented_fgsm:geometric'",
    "mce": "mCE over the common corruptions (%, relative to the CE reference)",
    "val_mce": "mCE over the 4 validation corruptions",
    "ce": "the CE of one corruption, e.g. 'ce:gaussian_noise'",
}
CLAIM_METRICS_WITH_ARGUMENT = ("fgsm", "attack", "disturbance", "augmented", "augmented_fgsm", "ce")
CLAIM_DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, as a test this recipe can run: variant `a` against variant `b`.

    The report marks it **holds** (the corrected interval of a − b lies on the claimed side of
    0), **does not hold** (on the other side, or it rules out the paper's `effect`) or
    **undecided at this budget**, with the smallest effect the budget could detect (see
    `tfaux.statistics.claim_verdict`).

    Args:
        source: where the paper makes it ("seed 000, Table 1").
        quote: the claim in the paper's words, with its number.
        a: the variant the paper says is better (or worse, see `direction`).
        b: the variant it is compared with.
        metric: what is compared (`CLAIM_METRICS`; "kind" or "kind:argument").
        direction: "higher" if the paper claims a's metric is higher than b's, else "lower"
            (a lower mCE is the usual claim).
        effect: the paper's effect size in the metric's units (accuracy or CE points), a
            positive number, or None where the paper gives none.
    """

    source: str
    quote: str
    a: str
    b: str
    metric: str = "clean"
    direction: str = "higher"
    effect: float | None = None

    def __post_init__(self):
        require(bool(self.source and self.quote), "a source and a quote", source=self.source)
        require(self.a != self.b, "two different variants a and b", a=self.a, b=self.b)
        kind, _, argument = self.metric.partition(":")
        _choice("claim metric", kind, tuple(CLAIM_METRICS))
        takes_argument = kind in CLAIM_METRICS_WITH_ARGUMENT
        require(
            bool(argument) == takes_argument,
            f"metric {kind!r} {'with' if takes_argument else 'without'} an ':argument' "
            f"({CLAIM_METRICS[kind]})",
            metric=self.metric,
        )
        _choice("claim direction", self.direction, CLAIM_DIRECTIONS)
        require(
            self.effect is None or self.effect > 0,
            "effect > 0 (its sign is the direction) or None",
            effect=self.effect,
        )

    @property
    def kind(self) -> str:
        return self.metric.partition(":")[0]

    @property
    def argument(self) -> str:
        return self.metric.partition(":")[2]


def check_claim(recipe: Recipe, claim: Claim) -> None:
    """Raises if `claim` cannot be tested by `recipe` (see `claim_problem`)."""
    problem = claim_problem(recipe, claim)
    if problem is not None:
        raise ValueError(f"Expected a claim the recipe can test. Received: {problem}")


def claim_problem(recipe: Recipe, claim: Claim) -> str | None:
    """Why `recipe` cannot test `claim` (a variant it does not run, a metric it does not
    measure), or None when it can."""
    where = f"the claim of {claim.source!r} ({claim.a} vs {claim.b}, {claim.metric})"
    for variant in (claim.a, claim.b):
        if variant not in recipe.variants:
            close = difflib.get_close_matches(variant, recipe.variants, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"{where} names variant {variant!r}, which the recipe does not run{hint}"
    e, corruption, kind, argument = recipe.evaluation, recipe.corruption, claim.kind, claim.argument
    if kind == "fgsm" and not any(_same_eps(argument, eps) for eps in e.fgsm_eps):
        return f"{where} needs FGSM at ε={argument}, not in evaluation.fgsm_eps={e.fgsm_eps}"
    if kind == "disturbance" and not e.disturbances:
        return f"{where} needs evaluation.disturbances=true"
    if kind in ("augmented", "augmented_fgsm") and argument not in e.augmented:
        return f"{where} needs {argument!r} in evaluation.augmented={e.augmented}"
    if kind in ("mce", "val_mce", "ce") and not corruption.enabled:
        return f"{where} needs corruption.enabled=true"
    if kind == "ce" and argument not in corruption.corruptions:
        return f"{where} needs {argument!r} in corruption.corruptions"
    return None


def with_testable_claims(recipe: Recipe, claims: tuple[Claim, ...]) -> Recipe:
    """`recipe` (built without claims) with those of `claims` it can test: a recipe derived
    from another (narrowed by --set, or with a tuned λ) keeps the claims that still apply."""
    kept = tuple(c for c in claims if claim_problem(recipe, c) is None)
    return dataclasses.replace(recipe, claims=kept) if kept else recipe


def _same_eps(text: str, eps: float) -> bool:
    try:
        return abs(float(text) - eps) < 1e-9
    except ValueError:
        return False


@dataclass(frozen=True)
class Recipe:
    """One experiment: data, model, training, and the variants compared side by side.

    A variant is "<tasks>[@<loop>][:<augmentation>][~<weighting>]", the loop optionally followed
    by "[<settings>]":
    - tasks: "none" or aux-task names joined by "+" ("recon", "recon+fourier"); each gets the
      weight λ = `aux_weight` unless it names its own ("projection=0.5+coarse"). λ = 0 is
      refused except for a two-view task (see `tfaux.experiment.check_weights`).
    - loop: a training loop of `list_loops()` ("fourier@fgsm", "none@free_scheduled"; their
      settings are in `AdversarialConfig`, `AuxTrainingConfig`, `RandomSignConfig`); default
      "standard". Settings in square brackets after the loop override `AdversarialConfig`
      fields for this variant alone ("fourier@fgsm[eps=0.3]", "none@pgd[eps=0.2;pgd_steps=3]";
      see `tfaux.variant.Variant.recipe`).
    - augmentation: an in-graph augmentation of every training batch ("none:geometric");
      two-view tasks ("projection") use it for both views (default "simclr").
    - weighting: how the loss terms are weighted, after everything else ("fourier~uncertainty",
      "recon+fourier@fgsm~gradnorm"): "fixed" λ (default), or learned weights that replace every
      λ and the primary's 1, "uncertainty" or "gradnorm" (see `WeightingConfig`). Not with a
      loop whose objective fixes its weights (Auxiliary Training's eq. (7)) nor with a task's
      own λ; "gradnorm"
      needs an aux task (with the primary alone its weight stays 1).
    `seeds` (e.g. (0, 1, 2)) repeats the whole run once per seed, on the same per-seed data order
    and initialization for every variant, and reports mean ± 95 % CI over seeds. `backbones`
    (e.g. ("resnet8", "resnext8")) repeats it once per backbone instead of `model.backbone`
    (seed 000 compares five architectures) and reports every backbone's comparison; with both,
    each backbone's seeds, and the backbones compared on their means over seeds.

    Comparisons: every variant is compared with `baseline` ("": the first variant), with a
    verdict per difference. `budget` is what the variants must spend equally
    ("optimizer_steps", "example_passes": forward-backward passes over training examples,
    attack steps and replays counted; "none"); a variant off the baseline's by more than 2 % is
    marked. `objective` picks the best variant, the one exported: "clean" (validation accuracy)
    or "robust" (validation PGD accuracy) for recipes about robustness. `claims` are the
    paper's (`Claim`): every report leads with their verdicts.
    """

    name: str
    description: str = ""
    variants: tuple[str, ...] = ("none",)
    aux_weight: float = 0.01
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    auxiliary: AuxTrainingConfig = field(default_factory=AuxTrainingConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    random_sign: RandomSignConfig = field(default_factory=RandomSignConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    seeds: tuple[int, ...] = ()
    export: bool = True
    baseline: str = ""
    budget: str = "optimizer_steps"
    objective: str = "clean"
    backbones: tuple[str, ...] = ()
    claims: tuple[Claim, ...] = ()

    def __post_init__(self):
        require(bool(self.variants), "at least one variant", variants=self.variants)
        require(
            len(set(self.variants)) == len(self.variants),
            "distinct variants",
            variants=self.variants,
        )
        require(self.aux_weight >= 0, "aux_weight (λ) >= 0", aux_weight=self.aux_weight)
        if self.baseline and self.baseline not in self.variants:
            raise unknown_name("baseline variant", self.baseline, self.variants)
        require(
            len(set(self.backbones)) == len(self.backbones),
            "distinct backbones",
            backbones=self.backbones,
        )
        _choice("budget", self.budget, BUDGETS)
        _choice("objective", self.objective, OBJECTIVES)
        if self.objective == "robust":
            require(
                self.monitor.robust_examples > 0,
                "monitor.robust_examples > 0 for objective='robust' (it picks by validation PGD)",
                robust_examples=self.monitor.robust_examples,
            )
        require(
            len(set(self.seeds)) == len(self.seeds) and all(s >= 0 for s in self.seeds),
            "distinct seeds >= 0",
            seeds=self.seeds,
        )
        for claim in self.claims:
            require(isinstance(claim, Claim), "claims as Claim values", claim=claim)
            check_claim(self, claim)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def selection_rule(recipe: Recipe, loop: type) -> str:
    """The epoch rule a variant on `loop` (a `Loop` class) is evaluated at: `training.select`,
    or the loop's own."""
    return loop.selection if recipe.training.select == "auto" else recipe.training.select


def comparison_baseline(recipe: Recipe) -> str:
    """The variant every other is compared with: `baseline`, or the first variant."""
    return recipe.baseline or recipe.variants[0]
