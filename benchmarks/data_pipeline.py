"""Is a streamed image folder as fast as one read into memory? An image folder written from
Fashion-MNIST (PNG files in class subfolders, `train/` and `test/`), loaded through
`tfaux.data.load("folder")`: the first load (decoding every file into the cache) and later
loads (cache hits) in seconds; then the same splits read into memory (`memory_limit=None`) and
streamed from the cache file (`memory_limit="0"`; checked: their notes say so and they yield
the same first batch), side by side in one run: the input pipeline alone (one epoch of
`splits.train`) and training (`fit` of a compiled model for one epoch), each after a warm-up
epoch, the kinds in rotation so the machine's drift hits them alike. A second in-memory copy,
measured the same way, is a control: its ratio to the first is the run's noise band. Goal:
streamed / in memory <= 1.10 in training step time. The process's CPU time per batch is printed
beside the wall time: on a busy machine it is the steadier measure of what streaming adds.

`--size 32 --rgb` writes 32x32 RGB JPEGs instead (CIFAR's pixels per image). The folder and the
cache are written to a temporary directory and removed afterwards.

    python benchmarks/data_pipeline.py [--images 6000] [--size 32 --rgb] [--backbone small_cnn]
        [--batch 128] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from tfaux.console import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # before TensorFlow is imported: no start-up chatter

import keras  # noqa: E402
import numpy as np  # noqa: E402
from aux_overhead import step_times  # noqa: E402
from PIL import Image  # noqa: E402

from tfaux import build, data  # noqa: E402
from tfaux.training import sgd_momentum  # noqa: E402

GOAL = 1.10
PIPELINE_REPEATS = 4  # times --repeats, for the input pipeline alone
# ImageOptions.memory_limit of each kind of splits; "in memory again" is a second copy of the
# in-memory splits, measured the same way: its ratio to "in memory" is the run's noise band.
KINDS = {"in memory": None, "streamed": "0", "in memory again": None}


def write_folder(root: str, images: int, test_images: int, size: int, rgb: bool) -> str:
    """`root/train/<class>/*.png` and `root/test/<class>/*.png` from Fashion-MNIST, the same
    number of images per class (JPEGs for `rgb`); returns the folder."""
    raw = data.load_raw("fashion_mnist")
    folder = os.path.join(root, "images")
    for split, x, y, count in (
        ("train", raw.x_train, raw.y_train, images),
        ("test", raw.x_test, raw.y_test, test_images),
    ):
        for k, name in enumerate(raw.class_names):
            directory = os.path.join(folder, split, f"{k}_{name.replace('/', '_')}")
            os.makedirs(directory)
            for row in np.flatnonzero(y == k)[: max(count // len(raw.class_names), 1)]:
                image = Image.fromarray(x[row][..., 0])
                if size != image.width:
                    image = image.resize((size, size), Image.BILINEAR)
                if rgb:
                    image.convert("RGB").save(os.path.join(directory, f"{row:05d}.jpg"), quality=90)
                else:
                    image.save(os.path.join(directory, f"{row:05d}.png"))
    return folder


def timed_load(folder: str, cache: str, memory_limit: str | None, args) -> tuple[float, object]:
    start = time.perf_counter()
    options = data.ImageOptions(path=folder, memory_limit=memory_limit, cache_dir=cache)
    splits = data.load("folder", batch_size=args.batch, seed=0, options=options)
    return time.perf_counter() - start, splits


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of the whole process: every thread, `fn()`'s value). On a
    shared machine the CPU time varies less than the wall time: it counts the work, not the
    waiting."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def one_epoch(dataset) -> None:
    """One pass over `dataset` (a new iterator, as every Keras epoch makes)."""
    for _ in dataset:
        pass


def compiled_model(splits, backbone: str):
    """`backbone` compiled as the runner compiles it, traced and warmed up by one epoch."""
    info = splits.info
    keras.utils.set_random_seed(0)
    model = build(backbone, input_shape=info.image_shape, num_classes=info.num_classes,
                  mean=info.mean, std=info.std)  # fmt: skip
    model.compile(optimizer=sgd_momentum(), jit_compile=False)
    model.fit(splits.train, epochs=1, verbose=0, shuffle=False)
    return model


def round_robin(repeats: int, measure) -> dict[str, list]:
    """`measure(kind)` for every kind, `repeats` times, the order rotated every repeat."""
    results, kinds = {kind: [] for kind in KINDS}, list(KINDS)
    for repeat in range(repeats):
        shift = repeat % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            results[kind].append(measure(kind))
    return results


def same_first_batch(first, second) -> bool:
    (x1, y1), (x2, y2) = (next(iter(s.train)) for s in (first, second))
    return bool(np.array_equal(x1, x2) and np.array_equal(y1, y2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000, help="training images written")
    parser.add_argument("--test-images", type=int, default=None, help="default: images / 5")
    parser.add_argument("--size", type=int, default=28, help="pixels per side of the files")
    parser.add_argument("--rgb", action="store_true", help="RGB JPEGs instead of gray PNGs")
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 500 images, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats = 500, 1
    test_images = args.test_images or max(args.images // 5, 10)

    with tempfile.TemporaryDirectory(prefix="tfaux-bench-") as root:
        start = time.perf_counter()
        folder = write_folder(root, args.images, test_images, args.size, args.rgb)
        written = time.perf_counter() - start
        cache = os.path.join(root, "cache")
        loads, splits = {}, {}
        loads["first load: decode into the cache (in memory)"], splits["in memory"] = timed_load(
            folder, cache, KINDS["in memory"], args
        )
        loads["second load: cache hit (in memory)"], splits["in memory"] = timed_load(
            folder, cache, KINDS["in memory"], args
        )
        loads["third load: cache hit (streamed)"], splits["streamed"] = timed_load(
            folder, cache, KINDS["streamed"], args
        )
        _, splits["in memory again"] = timed_load(folder, cache, KINDS["in memory again"], args)
        for kind, s in splits.items():
            streamed = any("streamed from the cache" in note for note in s.info.notes)
            if streamed != (kind == "streamed"):
                raise RuntimeError(f"Expected {kind} images. Received: notes {s.info.notes}")
        if not same_first_batch(splits["in memory"], splits["streamed"]):
            raise RuntimeError("Expected the same first training batch in memory and streamed")

        steps = int(splits["in memory"].train.cardinality())
        for s in splits.values():
            one_epoch(s.train)  # warm-up epoch
        # An epoch of the pipeline alone is short (tens of ms): more repeats steady its median.
        pipeline = round_robin(
            PIPELINE_REPEATS * args.repeats,
            lambda kind: timed(lambda: one_epoch(splits[kind].train)),
        )

        models = {kind: compiled_model(s, args.backbone) for kind, s in splits.items()}

        def train(kind):
            wall, cpu, timer = timed(lambda: step_times(models[kind], splits[kind].train))
            return wall, cpu, timer.steps

        training = round_robin(args.repeats, train)

    info = splits["in memory"].info
    h, w, c = info.image_shape
    files = "RGB JPEG" if args.rgb else "grayscale PNG"
    print(
        f"image folder of {info.num_train + info.num_val} train / {info.num_test} test "
        f"{h}x{w} {files} files from Fashion-MNIST (written in {written:.1f} s), "
        f"{info.num_train} training images, batch {args.batch}"
    )
    print("| load | seconds |\n|---|---|")
    for name, seconds in loads.items():
        print(f"| {name} | {seconds:.2f} |")

    def per_batch(runs, index):
        return 1000 * statistics.median(run[index] for run in runs) / steps

    rows = {}  # row: {kind: (wall ms, CPU ms or None)}
    for kind in KINDS:
        rows.setdefault("input pipeline alone, epoch / batches", {})[kind] = (
            per_batch(pipeline[kind], 0),
            per_batch(pipeline[kind], 1),
        )
        step = statistics.median(t for _, _, times in training[kind] for t in times)
        rows.setdefault(f"training ({args.backbone}), median step", {})[kind] = (1000 * step, None)
        rows.setdefault(f"training ({args.backbone}), epoch / steps", {})[kind] = (
            per_batch(training[kind], 0),
            per_batch(training[kind], 1),
        )
    print(
        f"\none epoch of splits.train ({steps} batches) after a warm-up epoch, median of "
        f"{PIPELINE_REPEATS * args.repeats} (pipeline alone) or {args.repeats} (training) "
        "repeats, in memory, streamed and in memory again (a control) in rotation; CPU: the "
        "process's, all threads"
    )
    print(
        "| measurement | in memory ms/batch | streamed ms/batch | streamed / in memory "
        f"| within {GOAL:.2f} | control: in memory again / in memory "
        "| CPU ms/batch in memory / streamed | CPU ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row, kinds in rows.items():
        (memory, memory_cpu), (streamed, streamed_cpu) = kinds["in memory"], kinds["streamed"]
        ratio, control = streamed / memory, kinds["in memory again"][0] / memory
        verdict = "yes" if ratio <= GOAL else "**no**"
        cpu = "–", "–"
        if memory_cpu is not None:
            cpu = f"{memory_cpu:.1f} / {streamed_cpu:.1f}", f"{streamed_cpu / memory_cpu:.2f}"
        print(f"| {row} | {memory:.1f} | {streamed:.1f} | {ratio:.2f} | {verdict} | {control:.2f} "
              f"| {cpu[0]} | {cpu[1]} |")  # fmt: skip


if __name__ == "__main__":
    main()
