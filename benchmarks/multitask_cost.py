"""What do seeds 002–004's methods cost per training step? Standard training vs random-sign
training (seed 003 claims "no extra computational burden", unlike FGSM training), FGSM training,
geometric augmentation, the two-view contrastive multitask model (about 2 backbone passes:
seed 002 and 004), and the denoising front end with FGSM (seed 004) — side by side in one run,
printed as ratios to standard training, with the deployed sizes.

    python benchmarks/multitask_cost.py [--backbone resnet8] [--steps 20] [--batch 128] [--quick]
"""

from __future__ import annotations

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

from aux_overhead import (  # noqa: E402
    median_step_times,
    random_data_info,
    random_images,
    step_time_arguments,
    warmed_up,
)

from tfaux.config import DataConfig, ModelConfig, RandomSignConfig, Recipe  # noqa: E402
from tfaux.experiment import build_model  # noqa: E402
from tfaux.models import primary_classifier  # noqa: E402

VARIANTS = {
    "standard": "none",
    "random sign (input + 2 stages)": "none@random_sign",
    "FGSM training": "none@fgsm",
    "geometric augmentation": "none:geometric",
    "contrastive, two views": "projection",
    "denoiser + FGSM + geometric": "denoise@fgsm:geometric",
}
RANDOM_SIGN = RandomSignConfig(after=("input", "stage1_block1_out", "stage2_block1_out"))


def compiled_model(backbone: str, variant: str, x, y, batch: int, steps: int):
    """The runner's model of `variant` (every λ = 1), warmed up on the cached batches."""
    recipe = Recipe(
        "multitask_cost",
        variants=(variant,),
        aux_weight=1.0,
        data=DataConfig(batch_size=batch),
        model=ModelConfig(backbone=backbone),
        random_sign=RANDOM_SIGN,
    )
    model, _ = build_model(recipe, variant, random_data_info(x), compile=False)
    return warmed_up(model, x, y, batch, steps)


def main(variants: dict[str, str] = VARIANTS, doc: str = __doc__) -> None:
    """Prints the step time of each of `variants` (name → recipe variant) relative to the
    first, which must be "standard"."""
    args = step_time_arguments(doc)
    x, y = random_images(args.steps, args.batch)
    models = {
        name: compiled_model(args.backbone, variant, x, y, args.batch, args.steps)
        for name, variant in variants.items()
    }
    median = median_step_times(models, args.repeats)
    print(
        f"training step time, {args.backbone} on 28x28x1, batch {args.batch} images, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    print("| variant | recipe variant | ms/step | ratio to standard | params (deployed) |")
    print("|---|---|---|---|---|")
    for name, variant in variants.items():
        deployed = primary_classifier(models[name][0]).count_params()
        print(
            f"| {name} | `{variant}` | {1000 * median[name]:.0f} "
            f"| {median[name] / median['standard']:.2f} | {deployed:,} |"
        )


if __name__ == "__main__":
    main()
