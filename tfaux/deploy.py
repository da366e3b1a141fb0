"""Use an export: load it, read images the way it expects, predict, convert it to TensorFlow Lite.

An export is what `tfaux.export.saved_model` writes: a SavedModel whose `serving_default`
signature maps `images` (float32 [N, H, W, C] in [0, 1]) to `logits` and `probabilities`, with
`metadata.json` beside it. Everything here goes through that signature and the metadata, never
through tfaux's model code, so it sees the export as TensorFlow Serving and a phone will.

Example:
    export = tfaux.deploy.load("savedmodels/seed000_ft-20261130-120000")
    names, images = tfaux.deploy.load_images(["shoe.png"], export.input_shape)
    for row in tfaux.deploy.predict(export, images, top_k=3, names=names):
        print(row.image, row.rank, row.name, row.probability)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfaux.export import METADATA

TFLITE_FILES = {"float32": "model_float32.tflite", "int8": "model_int8.tflite"}
"""The TensorFlow Lite variants `tflite` writes: plain float32, and dynamic-range int8."""

_BATCH = 256  # images per call when computing logits, to bound memory
_LATENCY_IMAGES = 100  # single-image calls timed per model


@dataclasses.dataclass(frozen=True, eq=False)
class Export:
    """A loaded tfaux export.

    Attributes:
        directory: the SavedModel directory.
        metadata: its metadata.json.
        signature: the serving signature: `signature(images=...)` → {"logits", "probabilities"}.
        input_shape: (H, W, C) of one image, from the signature.
        class_names: one name per logit.
        root: the loaded SavedModel; the signature reads its variables, so it must stay alive.
    """

    directory: Path
    metadata: dict
    signature: Callable
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    root: object


class Prediction(NamedTuple):
    """One of an image's top-k classes."""

    image: str
    rank: int
    index: int
    name: str
    probability: float


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A deployed model measured against the SavedModel on the same images.

    Attributes:
        model: "SavedModel" or a key of `TFLITE_FILES`.
        path: the SavedModel directory or the .tflite file.
        size_bytes: bytes on disk (the SavedModel's graph and variables, without metadata).
        latency_ms: median milliseconds of one call on one image.
        max_logit_diff: max |logit − the SavedModel's logit| over the images.
        accuracy: top-1 accuracy on the labels, or None without labels.
    """

    model: str
    path: Path
    size_bytes: int
    latency_ms: float
    max_logit_diff: float
    accuracy: float | None


def load(directory: str | os.PathLike) -> Export:
    """Loads a tfaux export and checks that it is one.

    Args:
        directory: a SavedModel directory written by `tfaux.export.saved_model`.

    Returns:
        The `Export`.

    Raises:
        ValueError: the directory is missing, not a SavedModel, or not a tfaux export (no
            metadata.json, another format, no serving signature taking `images`).
    """
    directory = Path(directory)
    if not (directory / "saved_model.pb").is_file():
        state = "does not exist" if not directory.exists() else "has no saved_model.pb"
        raise ValueError(f"Expected a SavedModel directory. Received: {directory} {state}")
    if not (directory / METADATA).is_file():
        raise ValueError(
            f"Expected a tfaux export (a SavedModel with {METADATA}, as `python recipes/run.py` "
            f"writes to savedmodels/). Received: {directory} has no {METADATA}"
        )
    try:
        metadata = json.loads((directory / METADATA).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Expected {METADATA} to be JSON. Received: {directory / METADATA}: {error}"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != "tf_saved_model":
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ValueError(
            f"Expected {METADATA} with format 'tf_saved_model'. Received: {found!r} in "
            f"{directory / METADATA}"
        )
    try:
        root = tf.saved_model.load(str(directory))
    except Exception as error:  # a damaged file raises anything from DecodeError to OpError
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(
            f"Expected a loadable SavedModel. Received: {directory}: {type(error).__name__}: "
            f"{first_line}"
        ) from None

    name = metadata.get("signature", "serving_default")
    if name not in root.signatures:
        raise ValueError(
            f"Expected a {name!r} signature. Received: signatures {sorted(root.signatures)} "
            f"in {directory}"
        )
    signature = root.signatures[name]
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    spec = inputs.get("images")
    if spec is None or spec.shape.rank != 4 or not spec.shape[1:].is_fully_defined():
        raise ValueError(
            f"Expected signature {name!r} to take images [None, H, W, C]. Received: {inputs}"
        )
    if not {"logits", "probabilities"} <= set(outputs):
        raise ValueError(
            f"Expected signature {name!r} to return logits and probabilities. Received: "
            f"{sorted(outputs)}"
        )
    num_classes = int(outputs["logits"].shape[-1])
    # "classes": exports written before the metadata called it class_names.
    class_names = metadata.get("class_names") or metadata.get("classes")
    class_names = tuple(class_names or (str(i) for i in range(num_classes)))
    if len(class_names) != num_classes:
        raise ValueError(
            f"Expected one class name per logit ({num_classes}) in {METADATA}. Received: "
            f"{len(class_names)} names in {directory / METADATA}"
        )
    return Export(
        directory=directory,
        metadata=metadata,
        signature=signature,
        input_shape=tuple(int(d) for d in spec.shape[1:]),
        class_names=class_names,
        root=root,
    )


def load_images(
    paths: Sequence[str | os.PathLike], input_shape: Sequence[int]
) -> tuple[list[str], np.ndarray]:
    """Reads image files and .npy batches into one float32 batch of the export's shape.

    Image files (PNG, JPEG; GIF and BMP too: whatever `tf.io.decode_image` reads) are scaled
    to [0, 1], converted between grayscale and RGB when the export expects the other
    (`tf.image.rgb_to_grayscale`, the ITU-R 601 luma, or `tf.image.grayscale_to_rgb`, the gray
    value in all three channels: neither is a guess) and resized to the export's H x W
    (bilinear, antialiased, as `tfaux.data` resizes with `image_size`; the aspect ratio is not
    kept). Any other channel count, e.g. an alpha channel, is refused: what lies behind a
    transparent pixel would be a guess.

    An .npy file is a batch [N, H, W, C] already in the export's shape, uint8 (0–255) or float
    in [0, 1]; it is used as it is, so its shape must match exactly.

    Args:
        paths: image and .npy files, in order.
        input_shape: (H, W, C) the export takes (`Export.input_shape`).

    Returns:
        (names, images): one name per image (the path; `path[i]` for row i of an .npy batch)
        and float32 images [N, H, W, C] in [0, 1].
    """
    if not paths:
        raise ValueError("Expected at least one image or .npy file. Received: none")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(f"Expected input_shape (H, W, 1 or 3). Received: {input_shape}")
    names, batches = [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"Expected an existing image or .npy file. Received: {path}")
        if path.suffix.lower() == ".npy":
            batch = _read_npy(path, shape)
            names += [f"{path}[{i}]" for i in range(len(batch))]
        else:
            batch = _read_image(path, shape)[None]
            names.append(str(path))
        batches.append(batch)
    return names, np.concatenate(batches)


def serve(export: Export, images: np.ndarray) -> dict[str, np.ndarray]:
    """The export's outputs {"logits", "probabilities"} for float32 images [N, H, W, C]."""
    images = _check_batch(export, images)
    outputs = {"logits": [], "probabilities": []}
    for start in range(0, len(images), _BATCH):
        out = export.signature(images=tf.constant(images[start : start + _BATCH]))
        for key, values in outputs.items():
            values.append(out[key].numpy())
    return {key: np.concatenate(values) for key, values in outputs.items()}


def predict(
    export: Export, images: np.ndarray, top_k: int = 3, *, names: Sequence[str] | None = None
) -> list[Prediction]:
    """The top-k classes of every image, most probable first (ties: the lower class index).

    Args:
        export: a loaded export.
        images: float32 [N, H, W, C] in [0, 1], e.g. from `load_images`.
        top_k: classes per image, 1 to the number of classes.
        names: one name per image (default "0", "1", ...).

    Returns:
        N * top_k `Prediction(image, rank, index, name, probability)` rows, image by image.
    """
    num_classes = len(export.class_names)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= num_classes:
        raise ValueError(
            f"Expected 1 <= top_k <= {num_classes} (the number of classes). Received: top_k={top_k}"
        )
    probabilities = serve(export, images)["probabilities"]
    names = [str(i) for i in range(len(probabilities))] if names is None else list(names)
    if len(names) != len(probabilities):
        raise ValueError(
            f"Expected one name per image ({len(probabilities)}). Received: {len(names)} names"
        )
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    return [
        Prediction(name, rank + 1, int(k), export.class_names[k], float(row[k]))
        for name, row, ks in zip(names, probabilities, order, strict=True)
        for rank, k in enumerate(ks)
    ]


def dataset_images(export: Export, dataset: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` test images of `dataset` as the export takes them, and their labels.

    Images of the export's own dataset are resized to its size the way `tfaux.data` does it
    (`image_size`), e.g. 8x8 digits for a 16x16 export; another dataset's must fit as they are.
    """
    from tfaux.data import load_raw
    from tfaux.data.pipeline import resize_images, to_float

    if count <= 0:
        raise ValueError(f"Expected count > 0. Received: count={count}")
    own = dataset == export.metadata.get("dataset")  # its recipe may have resized it
    raw = load_raw(dataset, **_data_settings(export, dataset, own))
    if len(raw.class_names) != len(export.class_names):
        raise ValueError(
            f"Expected a dataset with the export's {len(export.class_names)} classes. "
            f"Received: {dataset!r} with {len(raw.class_names)}"
        )
    images = raw.x_test[:count]
    height, width, _ = export.input_shape
    if own and images.shape[1:3] != (height, width) and height == width:
        images = resize_images(images, height)
    if images.shape[1:] != export.input_shape:
        raise ValueError(
            f"Expected {dataset!r} test images of the export's shape {export.input_shape} "
            f"(only the export's own dataset, {export.metadata.get('dataset')!r}, is resized). "
            f"Received: {images.shape[1:]}"
        )
    return to_float(images), raw.y_test[:count]


def _data_settings(export: Export, dataset: str, own: bool) -> dict:
    """`load_raw` arguments for `dataset`: an image folder or `tfds:<name>` is read the way the
    export's recipe read it (its `data` settings are in the metadata)."""
    from tfaux.data import ImageOptions, dataset_spec

    if dataset_spec(dataset).num_classes is not None:
        return {}
    if not own:
        raise ValueError(
            f"Expected the export's own dataset ({export.metadata.get('dataset')!r}) for data "
            f"that brings its own classes. Received: {dataset!r}"
        )
    settings = export.metadata.get("recipe", {}).get("data", {})
    return {"data_dir": settings.get("data_dir"), "options": ImageOptions.from_settings(settings)}


def tflite(export: Export | str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Converts an export to TensorFlow Lite: float32, and dynamic-range int8.

    Dynamic-range quantization stores the weights as int8 (about 4x smaller) and quantizes
    activations on the fly, so it needs no calibration data; the float32 model is the same
    graph in float. Both keep the serving signature (`images` → logits, probabilities).

    Args:
        export: a loaded export or its directory.
        out_dir: where `model_float32.tflite` and `model_int8.tflite` go (created).

    Returns:
        {"float32": path, "int8": path}.
    """
    export = export if isinstance(export, Export) else load(export)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    signature_key = export.metadata.get("signature", "serving_default")
    paths = {}
    for variant, optimizations in (("float32", []), ("int8", [tf.lite.Optimize.DEFAULT])):
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(export.directory), signature_keys=[signature_key]
        )
        converter.optimizations = optimizations
        path = out_dir / TFLITE_FILES[variant]
        partial = path.with_name(f".{path.name}.partial")  # no half file after an interrupt
        partial.write_bytes(converter.convert())
        partial.replace(path)
        paths[variant] = path
    return paths


def measure(
    export: Export,
    tflite_paths: dict[str, Path],
    images: np.ndarray,
    labels: np.ndarray | None = None,
) -> list[Measurement]:
    """Measures the SavedModel and its TensorFlow Lite conversions on the same images.

    Logits are computed in batches (the TFLite signature runner resizes the input tensor,
    `resize_tensor_input`, to each batch); latency is the median of single-image calls on up
    to 100 images after a warm-up, TFLite on one thread as on a phone core.

    Args:
        export: the loaded export.
        tflite_paths: from `tflite`.
        images: float32 [N, H, W, C] in [0, 1].
        labels: int labels [N] for the accuracy, or None.

    Returns:
        One `Measurement` for the SavedModel, then one per TFLite model.
    """
    images = _check_batch(export, images)
    if labels is not None and len(labels) != len(images):
        raise ValueError(
            f"Expected one label per image ({len(images)}). Received: {len(labels)} labels"
        )
    reference = serve(export, images)["logits"]
    graph = [export.directory / "saved_model.pb", *(export.directory / "variables").iterdir()]

    rows = [
        Measurement(
            model="SavedModel",
            path=export.directory,
            size_bytes=sum(p.stat().st_size for p in graph),
            latency_ms=_latency_ms(functools.partial(_call_by_keyword, export.signature), images),
            max_logit_diff=0.0,
            accuracy=_accuracy(reference, labels),
        )
    ]
    signature_key = export.metadata.get("signature", "serving_default")
    for variant, path in tflite_paths.items():
        with warnings.catch_warnings():
            # TF 2.21 announces the Interpreter's move to the ai_edge_litert package (same
            # API); it still ships with TensorFlow, which is all a tfaux export needs.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter")
            interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
        runner = interpreter.get_signature_runner(signature_key)
        logits = np.concatenate(
            [
                np.array(runner(images=images[start : start + _BATCH])["logits"])
                for start in range(0, len(images), _BATCH)
            ]
        )
        rows.append(
            Measurement(
                model=variant,
                path=Path(path),
                size_bytes=Path(path).stat().st_size,
                latency_ms=_latency_ms(functools.partial(_call_by_keyword, runner), images),
                max_logit_diff=float(np.max(np.abs(logits - reference))),
                accuracy=_accuracy(logits, labels),
            )
        )
    return rows


def _read_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    height, width, channels = shape
    try:
        image = tf.io.decode_image(
            tf.io.read_file(str(path)), dtype=tf.float32, expand_animations=False
        )
    except tf.errors.InvalidArgumentError:
        raise ValueError(
            f"Expected a PNG or JPEG image (or GIF, BMP) or an .npy batch. Received: {path}, "
            "which TensorFlow cannot decode"
        ) from None
    found = int(image.shape[-1])
    if (found, channels) == (3, 1):
        image = tf.image.rgb_to_grayscale(image)
    elif (found, channels) == (1, 3):
        image = tf.image.grayscale_to_rgb(image)
    elif found != channels:
        raise ValueError(
            f"Expected an image with 1 (grayscale) or 3 (RGB) channels for an export taking "
            f"{channels}. Received: {path} with {found} channels (an alpha channel?)"
        )
    if tuple(image.shape[:2]) != (height, width):
        image = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
    return np.clip(image.numpy(), 0.0, 1.0)


def _read_npy(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    try:
        batch = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"Expected a numpy .npy array. Received: {path}: {error}") from None
    if batch.ndim != 4 or batch.shape[1:] != shape or len(batch) == 0:
        raise ValueError(
            f"Expected an .npy batch of shape [N, {', '.join(map(str, shape))}] (the export's "
            f"input). Received: {path} of shape {list(batch.shape)}"
        )
    if batch.dtype == np.uint8:
        return batch.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(batch.dtype, np.floating):
        raise ValueError(
            f"Expected an .npy batch of uint8 (0-255) or float pixels in [0, 1]. Received: "
            f"{path} of dtype {batch.dtype}"
        )
    if not (np.isfinite(batch).all() and batch.min() >= 0.0 and batch.max() <= 1.0):
        raise ValueError(
            f"Expected float pixels in [0, 1]. Received: {path} with values in "
            f"[{np.nanmin(batch):g}, {np.nanmax(batch):g}]"
        )
    return batch.astype(np.float32)


def _check_batch(export: Export, images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != export.input_shape or len(images) == 0:
        raise ValueError(
            f"Expected images [N, {', '.join(map(str, export.input_shape))}]. Received: shape "
            f"{list(images.shape)}"
        )
    return images


def _latency_ms(call: Callable[[np.ndarray], object], images: np.ndarray) -> float:
    call(images[:1])  # warm-up: tracing, tensor allocation
    times = []
    for image in images[:_LATENCY_IMAGES]:
        start = time.perf_counter()
        call(image[None])
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def _call_by_keyword(signature: Callable, images: np.ndarray):
    return signature(images=images)


def _accuracy(logits: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None:
        return None
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))
