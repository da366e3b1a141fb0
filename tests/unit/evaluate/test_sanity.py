"""Sanity checks fire on masked gradients and stay quiet on an honest model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import quick_eval, random_images, tiny_model
from tfaux import build, data, evidence
from tfaux.evaluate import robustness
from tfaux.evaluate.sanity import UntrustworthyRobustnessWarning, run_checks
from tfaux.training import sgd_momentum


def _checks(**arrays):
    correct = {k: np.asarray(v, bool) for k, v in arrays.items()}
    roles = {k: k for k in ("clean", "fgsm", "pgd") if k in correct}
    for key in ("pgd_more_steps", "pgd_more_restarts", "large_eps", "transfer"):
        if key in correct:
            roles[key] = key
    blackbox = ("spsa",) if "spsa" in correct else ()
    checks = run_checks(correct, **roles, blackbox=blackbox, num_classes=10, tolerance=0.02)
    return {c.name: c.passed for c in checks}


def test_hand_made_tables_fail_exactly_the_right_checks():
    ones, zeros = [1] * 50, [0] * 50
    half = [1] * 25 + [0] * 25
    honest = _checks(
        clean=ones, fgsm=half, pgd=zeros, pgd_more_steps=zeros, pgd_more_restarts=zeros,
        large_eps=zeros, spsa=half, transfer=half,
    )  # fmt: skip
    assert set(honest.values()) == {True, None}  # only the unmeasured gradient check is skipped
    masked = _checks(
        clean=half, fgsm=[0] * 50, pgd=half, pgd_more_steps=[1] * 50, pgd_more_restarts=half,
        large_eps=half, spsa=[0] * 50, transfer=[0] * 50,
    )  # fmt: skip
    assert masked["robust <= clean"] is False  # pgd_more_steps leaves more correct than clean
    assert masked["PGD <= FGSM"] is False
    assert masked["2x steps"] is False
    assert masked["2x restarts"] is True
    assert masked["large eps -> chance"] is False
    assert masked["spsa not stronger"] is False
    assert masked["transfer not stronger"] is False


def test_comparisons_use_the_common_prefix():
    # SPSA ran on the first 4 examples only; PGD on 8: compare the first 4.
    result = _checks(clean=[1] * 8, pgd=[0, 0, 0, 0, 1, 1, 1, 1], spsa=[0, 0, 0, 0])
    assert result["spsa not stronger"] is True


@pytest.fixture(scope="module")
def trained_digits():
    digits = data.load("digits", batch_size=64, seed=0, test_size=128)
    info = digits.info
    keras.utils.set_random_seed(0)
    model = build(
        "small_cnn", input_shape=info.image_shape, num_classes=10, mean=info.mean, std=info.std
    )
    model.compile(optimizer=sgd_momentum(learning_rate=0.05), jit_compile=False)
    model.fit(digits.train, epochs=6, verbose=0, shuffle=False)
    return digits, model


def _masked(model: keras.Model, kind: str) -> keras.Model:
    """The same classifier behind an input layer that hides the gradient."""
    images = keras.Input(model.input.shape[1:])
    if kind == "stop_gradient":
        hidden = keras.layers.Lambda(tf.stop_gradient)(images)
    else:  # quantization to 4 levels: zero gradient almost everywhere
        hidden = keras.layers.Lambda(lambda x: tf.round(x * 3.0) / 3.0)(images)
    return keras.Model(images, model(hidden)["logits"])


def test_honest_model_passes_every_check(trained_digits):
    digits, model = trained_digits
    report = robustness(model, digits.test, quick_eval(), progress=False)
    assert report["clean"] > 0.8
    failed = [c for c in report["sanity"] if c["passed"] is False]
    assert not failed, failed
    assert report["trustworthy"]


@pytest.mark.parametrize("kind", ["stop_gradient", "quantize"])
def test_masked_model_is_flagged_loudly(trained_digits, kind):
    digits, model = trained_digits
    masked = _masked(model, kind)
    with pytest.warns(UntrustworthyRobustnessWarning, match="robustness claim not trustworthy"):
        report = robustness(masked, digits.test, quick_eval(blackbox_examples=16), progress=False)
    verdict = {c["name"]: c["passed"] for c in report["sanity"]}
    assert not report["trustworthy"]
    assert verdict["input gradients"] is False
    assert verdict["large eps -> chance"] is False
    # the masked model looks robust to PGD, which is exactly the false claim the checks catch
    assert report["attacks"]["PGD-3 ε=0.1"] > 0.5


# Untrained and on noise: AutoAttack's checks may fail, which is not what this test is about.
@pytest.mark.filterwarnings("ignore::tfaux.evaluate.sanity.UntrustworthyRobustnessWarning")
def test_per_example_correctness_of_every_attack_under_the_table_columns():
    # Paired tests between variants read "correct" by the columns `headline_metrics` names.
    x, y = random_images(40, (16, 16, 1), seed=7), np.arange(40) % 4
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    config = quick_eval(
        fgsm_eps=(8 / 255, 0.3), extra_eps=(0.05,), autoattack=True, sanity=False, l2_eps=0
    )
    report = robustness(tiny_model(), dataset, config, progress=False)
    correct = report["correct"]
    fgsm_columns = {"FGSM ε=0.0313725", "FGSM ε=0.3"}
    assert set(correct) == {"clean", "robust", *report["attacks"], *fgsm_columns}
    assert "PGD-3 ε=0.5" not in correct  # the ε curves' own prefix runs are not reported
    assert np.mean(correct["clean"]) == report["clean"] and len(correct["clean"]) == 40
    for label, accuracy in report["attacks"].items():
        assert correct[label].dtype == bool, label
        assert len(correct[label]) == report["examples"][label], label
        assert np.mean(correct[label]) == accuracy, label
    assert len(correct["AutoAttack ε=0.1"]) == 16  # on its own prefix
    np.testing.assert_array_equal(correct["robust"], correct[report["headline"]])
    # The runner's result of this report: every table column has its array, with its mean.
    result = {
        "val_accuracy": 0.5,  # a variant result's required fields; headline_metrics reads none
        "train_seconds": 1.0,
        "parameters": 1,
        "test_accuracy": report["clean"],
        "fgsm_accuracy": report["fgsm"],
        "pgd_attack": report["pgd_attack"],
        "pgd_accuracy": report["attacks"][report["pgd_attack"]],
        "robust_attack": report["headline"],
        "robust_accuracy": report["attacks"][report["headline"]],
        "robustness": report,
    }
    metrics = evidence.headline_metrics(result)
    assert fgsm_columns <= set(metrics) and "AutoAttack ε=0.1" in metrics
    for column, accuracy in metrics.items():
        assert np.mean(correct[column]) == accuracy, column
