"""Export the primary classifier as a SavedModel: raw [0, 1] pixels in, logits out.

Auxiliary heads are dropped (they only shape training); the standardization layer stays inside,
so a deployment needs no preprocessing code. The export is written to a temporary sibling
directory and renamed when complete, so an interrupted export never leaves a half model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux.models.build import primary_classifier

METADATA = "metadata.json"


def weights_sha256(model: keras.Model) -> str:
    """sha256 over the model's weights (names, shapes and values), in model order."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(weight.path.encode())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def saved_model(
    model: keras.Model,
    directory: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    metadata: dict | None = None,
):
    """Writes the primary classifier of `model` to `directory` as a TF SavedModel.

    Signature `serving_default(images: float32[None, H, W, C] in [0, 1])` returns
    {"logits", "probabilities"}. `metadata.json` beside it holds the input spec, the
    normalization, the weights' sha256, the class names and whatever `metadata` adds (dataset,
    metrics, recipe). `tfaux.deploy` reads it back to check inputs and name the predictions.

    Args:
        model: an `AuxModel` (dict outputs) or a plain classifier.
        directory: final location; replaced if it exists.
        class_names: one name per logit (default "0", "1", ...).
        metadata: extra JSON-serializable entries.

    Returns:
        The `Path` of the export.
    """
    directory = Path(directory)
    classifier = primary_classifier(model) if isinstance(model.output, dict) else model
    input_shape = tuple(classifier.input_shape[1:])
    num_classes = int(classifier.output_shape[-1])
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    elif len(class_names) != num_classes:
        raise ValueError(
            f"Expected one class name per logit ({num_classes}). Received: "
            f"{len(class_names)} class_names"
        )
    info = {
        "format": "tf_saved_model",
        "signature": "serving_default",
        "input": {
            "name": "images",
            "shape": [None, *input_shape],
            "dtype": "float32",
            "range": [0.0, 1.0],
        },
        "outputs": ["logits", "probabilities"],
        "class_names": [str(name) for name in class_names],
        "normalization": _normalization(classifier),
        "num_parameters": int(classifier.count_params()),
        "weights_sha256": weights_sha256(classifier),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        **(metadata or {}),
    }

    @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32, name="images")])
    def serve(images):
        logits = classifier(images, training=False)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.add_endpoint("serving_default", serve)

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        archive.write_out(str(staging), verbose=False)
        (staging / METADATA).write_text(json.dumps(info, indent=2, default=_json_default))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _normalization(classifier: keras.Model) -> dict:
    try:
        layer = classifier.get_layer("standardize")
    except ValueError:
        return {"inside_model": False}
    return {
        "inside_model": True,
        "mean": np.ravel(keras.ops.convert_to_numpy(layer.mean)).tolist(),
        "std": np.sqrt(np.ravel(keras.ops.convert_to_numpy(layer.variance))).tolist(),
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
