"""What does Auxiliary Training (seed 001) cost? Training step time of standard training vs
plain corruption augmentation vs Auxiliary Training with t = 1, 2, 4 corruptions (expected about
t + 1 backbone passes), and the latency and size of the exported models (the auxiliary
classifiers are dropped, so the target is a ratio ≤ 1.02 to a standard model) — side by side in
one run, printed as ratios.

    python benchmarks/aux_training.py [--backbone resnet8] [--steps 20] [--batch 128] [--quick]
"""

from __future__ import annotations

import tempfile

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from aux_overhead import (  # noqa: E402
    inference_latency,
    median_step_times,
    random_data_info,
    random_images,
    step_time_arguments,
    warmed_up,
)

from tfaux.config import (  # noqa: E402
    TRAIN_CORRUPTIONS,
    AuxTrainingConfig,
    DataConfig,
    ModelConfig,
    Recipe,
)
from tfaux.experiment import build_model  # noqa: E402
from tfaux.export import saved_model  # noqa: E402

# name → (loop, corruptions)
VARIANTS = {
    "standard": ("standard", TRAIN_CORRUPTIONS),
    "augment t=4 (no heads)": ("corruption_augment", TRAIN_CORRUPTIONS),
    "auxiliary t=1": ("auxiliary", TRAIN_CORRUPTIONS[:1]),
    "auxiliary t=2": ("auxiliary", TRAIN_CORRUPTIONS[:2]),
    "auxiliary t=4": ("auxiliary", TRAIN_CORRUPTIONS),
}


def compiled_model(backbone: str, loop: str, corruptions, x, y, batch: int, steps: int):
    """The runner's model of "none@`loop`" with `corruptions`, warmed up on the batches."""
    recipe = Recipe(
        "aux_training",
        data=DataConfig(batch_size=batch),
        model=ModelConfig(backbone=backbone),
        auxiliary=AuxTrainingConfig(corruptions=corruptions),
    )
    model, _ = build_model(recipe, f"none@{loop}", random_data_info(x), compile=False)
    return warmed_up(model, x, y, batch, steps)


def main() -> None:
    args = step_time_arguments(__doc__)
    x, y = random_images(args.steps, args.batch)
    models = {
        name: compiled_model(args.backbone, loop, corruptions, x, y, args.batch, args.steps)
        for name, (loop, corruptions) in VARIANTS.items()
    }
    median = median_step_times(models, args.repeats)
    print(
        f"training step time, {args.backbone} on 28x28x1, batch {args.batch} clean images, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    print("| variant | images per step | ms/step | ratio to standard | expected (t+1) |")
    print("|---|---|---|---|---|")
    for name, (loop, corruptions) in VARIANTS.items():
        t = 0 if loop == "standard" else len(corruptions)
        print(
            f"| {name} | {(t + 1) * args.batch} | {1000 * median[name]:.0f} "
            f"| {median[name] / median['standard']:.2f} | {t + 1} |"
        )

    standard, auxiliary = models["standard"][0], models["auxiliary t=4"][0]
    with tempfile.TemporaryDirectory() as tmp:
        loaded = {
            name: tf.saved_model.load(str(saved_model(model, f"{tmp}/{i}")))
            for i, (name, model) in enumerate([("standard", standard), ("auxiliary", auxiliary)])
        }
        print("\nexported SavedModels (primary classifier only), latency median of 100 calls")
        print("| model | variables | parameters | ms, batch 1 | ms, batch 128 |")
        print("|---|---|---|---|---|")
        latency = {}
        for name, module in loaded.items():
            serve = module.signatures["serving_default"]
            fn = lambda images, serve=serve: serve(images=images)["logits"]  # noqa: E731
            latency[name] = [
                inference_latency(fn, tf.constant(x[:n]), 100) for n in (1, args.batch)
            ]
            size = sum(int(np.prod(v.shape)) for v in module.variables)
            print(
                f"| {name} | {len(module.variables)} | {size:,} "
                f"| {1000 * latency[name][0]:.2f} | {1000 * latency[name][1]:.1f} |"
            )
        ratios = [a / s for a, s in zip(latency["auxiliary"], latency["standard"], strict=True)]
        print(
            f"\nexported latency auxiliary / standard: batch 1 {ratios[0]:.3f}, "
            f"batch {args.batch} {ratios[1]:.3f} (target <= 1.02)"
        )


if __name__ == "__main__":
    main()
