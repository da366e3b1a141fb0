"""Using an export: predict from files, the serving signature as TF Serving sees it, TFLite."""

import json
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import RECIPES, ROOT, tiny_model
from tfaux import data, deploy
from tfaux.cli import main
from tfaux.export import saved_model
from tfaux.training import sgd_momentum

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


@pytest.fixture(scope="module")
def digits():
    """The 360 test digits at 16x16, float32 in [0, 1] (exactly k/255: PNGs keep them)."""
    return data.load_arrays("digits", image_size=16)


@pytest.fixture(scope="module")
def classifier(digits):
    """A tiny CNN after three epochs on the training digits (5 s, about 80 % test accuracy):
    far above chance, so accuracies mean something."""
    info = digits.info
    model = tiny_model(num_classes=10, mean=info.mean, std=info.std)
    model.compile(optimizer=sgd_momentum(learning_rate=0.1), jit_compile=False)
    model.fit(digits.x_train, digits.y_train, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return keras.Model(model.input, model.output["logits"])


@pytest.fixture(scope="module")
def export_dir(classifier, digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "digits"
    return saved_model(
        classifier, path, class_names=digits.info.class_names, metadata={"dataset": "digits"}
    )


def keras_logits(classifier, images):
    return keras.ops.convert_to_numpy(classifier(images, training=False))


def run(*args, capsys):
    """`python recipes/run.py ARGS` in this process: (exit code, stdout, stderr)."""
    code = main([str(arg) for arg in args], recipes_dir=RECIPES)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_png(path, image):
    tf.io.write_file(str(path), tf.io.encode_png(tf.constant(image)))
    return path


def test_metadata_carries_one_class_name_per_logit(export_dir, classifier, tmp_path):
    meta = json.loads((export_dir / "metadata.json").read_text())
    assert meta["class_names"] == [str(i) for i in range(10)]
    assert deploy.load(export_dir).class_names == tuple(meta["class_names"])
    with pytest.raises(ValueError, match="one class name per logit"):
        saved_model(classifier, tmp_path / "m", class_names=["a", "b"])


def test_predict_on_png_and_npy_equals_the_keras_softmax_top_k(
    export_dir, classifier, digits, tmp_path, capsys
):
    images = digits.x_test[:3]
    pixels = np.round(images * 255).astype(np.uint8)
    pngs = [write_png(tmp_path / f"{i}.png", image) for i, image in enumerate(pixels)]
    np.save(tmp_path / "uint8.npy", pixels)
    np.save(tmp_path / "float.npy", images)

    code, out, err = run(
        "predict", export_dir, *pngs, tmp_path / "uint8.npy", tmp_path / "float.npy",
        "--top-k", 3, "--json", capsys=capsys,
    )  # fmt: skip
    assert (code, err) == (0, "")
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(keras_logits(classifier, images)))
    expected_order = np.argsort(-probabilities, axis=1)[:, :3]
    results = json.loads(out)
    assert [r["image"] for r in results] == [
        *map(str, pngs),
        *(f"{tmp_path / name}.npy[{i}]" for name in ("uint8", "float") for i in range(3)),
    ]
    for i, result in enumerate(results):
        row = i % 3
        top = result["top_k"]
        assert [t["rank"] for t in top] == [1, 2, 3]
        assert [t["class"] for t in top] == expected_order[row].tolist()
        assert [t["name"] for t in top] == [str(k) for k in expected_order[row]]
        np.testing.assert_allclose(
            [t["probability"] for t in top], probabilities[row, expected_order[row]], atol=1e-5
        )

    code, out, _ = run("predict", export_dir, pngs[0], "--top-k", 2, capsys=capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "| image | rank | class | name | probability |"
    assert len(lines) == 2 + 2  # header, rule, two classes
    assert lines[2].startswith(f"| {pngs[0]} | 1 | {expected_order[0, 0]} |")


def test_images_are_converted_to_the_exports_channels_and_size(tmp_path):
    rgb = np.zeros((32, 24, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: ITU-R 601 luma 0.2989
    gray = np.full((8, 8, 1), 51, np.uint8)
    names, images = deploy.load_images(
        [write_png(tmp_path / "red.png", rgb), write_png(tmp_path / "gray.png", gray)],
        (16, 16, 1),
    )
    assert names == [str(tmp_path / "red.png"), str(tmp_path / "gray.png")]
    assert images.shape == (2, 16, 16, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[0], 0.2989, atol=1e-3)
    np.testing.assert_allclose(images[1], 0.2, atol=1e-6)
    _, as_rgb = deploy.load_images([tmp_path / "gray.png"], (4, 4, 3))
    np.testing.assert_allclose(as_rgb, 0.2, atol=1e-6)
    jpeg = tf.io.encode_jpeg(tf.fill([20, 20, 3], tf.constant(128, tf.uint8)))
    tf.io.write_file(str(tmp_path / "gray.jpg"), jpeg)
    _, from_jpeg = deploy.load_images([tmp_path / "gray.jpg"], (16, 16, 1))
    np.testing.assert_allclose(from_jpeg, 128 / 255, atol=2 / 255)


def _plain_savedmodel(path: Path) -> Path:
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x}, input_signature=[tf.TensorSpec([None, 2])])
    tf.saved_model.save(module, str(path), signatures=module.f)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing export", "Expected a SavedModel directory. Received:"),
        ("not a SavedModel", "has no saved_model.pb"),
        ("SavedModel, not tfaux", "Expected a tfaux export"),
        ("missing image", "Expected an existing image or .npy file"),
        ("not an image", "TensorFlow cannot decode"),
        ("RGBA image", "Received: {image} with 4 channels"),
        ("npy of other shape", "Expected an .npy batch of shape [N, 16, 16, 1]"),
        ("npy out of range", "Expected float pixels in [0, 1]"),
        ("top-k too large", "Expected 1 <= top_k <= 10"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, message, export_dir, tmp_path, capsys):
    export, image, top_k = export_dir, tmp_path / "x.png", 3
    write_png(image, np.zeros((16, 16, 1), np.uint8))
    if case == "missing export":
        export = tmp_path / "nowhere"
    elif case == "not a SavedModel":
        export = tmp_path
    elif case == "SavedModel, not tfaux":
        export = _plain_savedmodel(tmp_path / "plain")
    elif case == "missing image":
        image = tmp_path / "missing.png"
    elif case == "not an image":
        image = tmp_path / "notes.png"
        image.write_text("not a PNG")
    elif case == "RGBA image":
        write_png(image, np.zeros((16, 16, 4), np.uint8))
    elif case == "npy of other shape":
        image = tmp_path / "x.npy"
        np.save(image, np.zeros((2, 8, 8, 1), np.uint8))
    elif case == "npy out of range":
        image = tmp_path / "x.npy"
        np.save(image, np.full((2, 16, 16, 1), 255.0, np.float32))
    else:
        top_k = 11
    code, out, err = run("predict", export, image, "--top-k", top_k, capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message.format(image=image) in err


def test_saved_model_cli_show_and_run_give_the_keras_logits(
    export_dir, classifier, digits, tmp_path
):
    """The signature as TensorFlow Serving reads it: saved_model_cli, a separate process."""
    show = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", export_dir, "--tag_set", "serve"]
        + ["--signature_def", "serving_default"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "inputs['images'] tensor_info:" in show
    assert "shape: (-1, 16, 16, 1)" in show and "dtype: DT_FLOAT" in show
    assert "outputs['logits']" in show and "outputs['probabilities']" in show
    assert "Method name is: tensorflow/serving/predict" in show

    images = digits.x_test[:8]
    np.save(tmp_path / "images.npy", images)
    subprocess.run(
        [SAVED_MODEL_CLI, "run", "--dir", export_dir, "--tag_set", "serve"]
        + ["--signature_def", "serving_default", "--inputs", f"images={tmp_path / 'images.npy'}"]
        + ["--outdir", tmp_path / "out"],
        capture_output=True,
        check=True,
    )
    logits = np.load(tmp_path / "out" / "logits.npy")
    np.testing.assert_allclose(logits, keras_logits(classifier, images), atol=1e-5)
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_export_tflite_float32_matches_and_int8_keeps_the_accuracy(
    export_dir, digits, tmp_path, capsys
):
    code, out, err = run("export-tflite", export_dir, "--out", tmp_path, capsys=capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "measured on the first 360 digits test images" in lines[0]
    assert [line.split(" | ")[0] for line in lines[3:6]] == [
        "| SavedModel",
        "| TFLite float32",
        "| TFLite int8",
    ]
    paths = {variant: tmp_path / name for variant, name in deploy.TFLITE_FILES.items()}
    # Only the few layers of 1,024+ weights become int8 in so tiny a model (ResNet-8: 3.3x).
    assert paths["int8"].stat().st_size < paths["float32"].stat().st_size

    export = deploy.load(export_dir)
    saved, float32, int8 = deploy.measure(export, paths, digits.x_test, digits.y_test)
    assert saved.accuracy > 0.6  # trained: far above the 10 % of chance
    assert float32.max_logit_diff < 1e-4
    assert float32.accuracy == saved.accuracy
    assert abs(int8.accuracy - saved.accuracy) <= 0.01
    assert all(row.latency_ms > 0 for row in (saved, float32, int8))


def test_export_tflite_without_a_dataset_compares_logits_on_random_images(
    export_dir, tmp_path, capsys
):
    code, out, _ = run(
        "export-tflite", export_dir, "--out", tmp_path, "--test-examples", 0, capsys=capsys
    )
    assert code == 0
    assert "64 random images (no dataset: no accuracy)" in out
    assert out.splitlines()[4].endswith(" | - |")  # TFLite float32: no accuracy column


def test_the_readme_deploy_snippet_runs_with_tensorflow_alone(export_dir):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Deploy") :]
    section = section[: section.index("\n## ", 1)]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert "import tfaux" not in snippet and "from tfaux" not in snippet
    snippet, count = re.subn(r'export_dir = ".*"', f"export_dir = {str(export_dir)!r}", snippet)
    assert count == 1
    namespace = {}
    exec(compile(snippet, "README Deploy snippet", "exec"), namespace)
    assert namespace["outputs"]["probabilities"].shape == (1, 10)
    for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL):
        json.loads(block)  # the documented responses are valid JSON
