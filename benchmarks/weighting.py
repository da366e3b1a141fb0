"""What does each loss weighting cost per training step? Every registered weighting on 1, 2 and
3 aux tasks (FT; Recon + FT; Recon + FT + coarse labels), as ratios to fixed λ on the same
tasks, measured side by side (round robin within each task set), with the backward passes per
step each records in the budget beyond the loss's own.

    python benchmarks/weighting.py [--backbone resnet8] [--steps 20] [--batch 128] [--quick]
        [--weightings pcgrad,cagrad]
"""

from __future__ import annotations

import gc

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

from aux_overhead import median_step_times, random_images, step_time_parser  # noqa: E402
from multitask_cost import compiled_model  # noqa: E402

from tfaux.weighting import list_weightings, weighting_class  # noqa: E402

TASK_SETS = {1: "fourier", 2: "recon+fourier", 3: "recon+fourier+coarse"}


def main() -> None:
    parser = step_time_parser(__doc__)
    parser.add_argument("--weightings", default=",".join(list_weightings()))
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 3, 1
    names = ["fixed", *(n for n in args.weightings.split(",") if n != "fixed")]
    x, y = random_images(args.steps, args.batch)
    ratios, milliseconds = {}, {}
    for count, tasks in TASK_SETS.items():
        models = {
            name: compiled_model(args.backbone, f"{tasks}~{name}", x, y, args.batch, args.steps)
            for name in names
        }
        median = median_step_times(models, args.repeats)
        for name in names:
            ratios[name, count] = median[name] / median["fixed"]
            milliseconds[name, count] = 1000 * median[name]
        del models
        gc.collect()
    print(
        f"training step time, {args.backbone} on 28x28x1, batch {args.batch} images, median of "
        f"{args.repeats} x {args.steps} steps; ratio to fixed λ on the same aux tasks"
    )
    header = " | ".join(f"{c} aux: ratio (ms)" for c in TASK_SETS)
    print(f"| weighting | {header} | extra backward passes (1/2/3 aux) |")
    print("|---|" + "---|" * (len(TASK_SETS) + 1))
    for name in names:
        cells = " | ".join(
            f"{ratios[name, c]:.2f} ({milliseconds[name, c]:.0f})" for c in TASK_SETS
        )
        passes = "/".join(str(weighting_class(name).extra_backward_passes(c)) for c in TASK_SETS)
        print(f"| {name} | {cells} | {passes} |")


if __name__ == "__main__":
    main()
