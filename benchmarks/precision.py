"""Does mixed precision pay on this CPU? One training step of every registered backbone at
28x28x1 and 32x32x3, in float32 and mixed_bfloat16 (and mixed_float16), measured side by side
(round robin, median step after a warm-up epoch) and printed as speed-ups over float32.

    python benchmarks/precision.py [--backbones resnet8,resnet18|all] [--batch 32] [--steps 4]
                                   [--repeats 1] [--precisions float32,mixed_bfloat16,...]
    python benchmarks/precision.py --quick   # small_cnn and resnet8, all three precisions

The default run takes about 10 minutes on 2 cores (11 with another job on them): batch 32
(`--batch 128`, the recipes' batch, takes about 4x as long), float32 and mixed_bfloat16
(mixed_float16 has no fast CPU kernels: TensorFlow falls back to Eigen and a step takes 4-10x as
long as in float32), and every backbone but those in SLOW (ResNeXt-29), which `--backbones all`
(or its name) adds.
"""

from __future__ import annotations

import argparse
import time

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402
from aux_overhead import median_step_times, warmed_up  # noqa: E402

from tfaux import build, list_backbones  # noqa: E402
from tfaux.config import PRECISIONS  # noqa: E402

SHAPES = ((28, 28, 1), (32, 32, 3))
QUICK_BACKBONES = ("small_cnn", "resnet8")
# A float32 step takes about a minute at batch 32 on 2 cores (TensorFlow's grouped convolutions
# are slow on CPU; WRN-28-10 takes 2 s): not in the default run.
SLOW = ("resnext29",)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbones", default="", help=f"comma-separated, or all (default: all but {SLOW})"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--steps", type=int, default=4, help="steps per epoch; the first of each is not timed"
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed epochs per model")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument(
        "--quick", action="store_true", help=f"{', '.join(QUICK_BACKBONES)}, all precisions"
    )
    args = parser.parse_args()
    if args.quick:
        args.backbones, args.steps, args.repeats = ",".join(QUICK_BACKBONES), 3, 1
        args.precisions = ",".join(PRECISIONS)
    named = [b for b in args.backbones.split(",") if b and b != "all"]
    args.skipped = [] if named or args.backbones == "all" else list(SLOW)
    args.backbones = named or [b for b in list_backbones() if b not in args.skipped]
    args.precisions = [p for p in args.precisions.split(",") if p]
    if args.steps < 2 or "float32" not in args.precisions:
        parser.error(
            "--steps must be >= 2 (the first step of an epoch is not timed) and "
            "--precisions must include float32 (the reference)"
        )
    return args


def step_times(backbone: str, shape, precisions, batch: int, steps: int, repeats: int) -> dict:
    """Median training step time (s) of `backbone` per precision, measured round robin."""
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch, *shape), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    models = {}
    for precision in precisions:
        keras.utils.set_random_seed(0)
        model = build(backbone, input_shape=shape, num_classes=10, precision=precision)
        models[precision] = warmed_up(model, x, y, batch, steps)  # mixed_float16: loss-scaled
    times = median_step_times(models, repeats)
    keras.utils.clear_session(free_memory=True)
    return times


def main() -> None:
    args = arguments()
    others = [p for p in args.precisions if p != "float32"]
    print(
        f"one training step (SGD, no aux heads), batch {args.batch}, median of "
        f"{args.repeats} x {args.steps - 1} steps after a warm-up epoch; speed-up = float32 "
        "time / mixed time"
    )
    header = ["backbone", "input", "float32 ms", *(f"{p} ms" for p in others)]
    header += [f"speed-up {p.removeprefix('mixed_')}" for p in others]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    start = time.perf_counter()
    for backbone in args.backbones:
        for shape in SHAPES:
            t = step_times(backbone, shape, args.precisions, args.batch, args.steps, args.repeats)
            cells = [backbone, "x".join(map(str, shape))]
            cells += [f"{1000 * t[p]:.0f}" for p in ["float32", *others]]
            cells += [f"{t['float32'] / t[p]:.2f}" for p in others]
            print("| " + " | ".join(cells) + " |", flush=True)
    if args.skipped:
        print(f"\nnot measured (slow; --backbones all adds them): {', '.join(args.skipped)}")
    print(f"{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
