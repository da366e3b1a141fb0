"""Learning is real: the full stack (data → model → fit → evaluate) on real digits."""

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from tests.helpers import quick_eval
from tfaux import FourierTask, build, data, evidence, experiment, provenance, runner
from tfaux.config import (
    CorruptionConfig,
    DataConfig,
    ModelConfig,
    MonitorConfig,
    Recipe,
    TrainingConfig,
)
from tfaux.evaluate import load_corruption_correct, robustness
from tfaux.training import sgd_momentum


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", batch_size=32, seed=0)


@pytest.mark.parametrize("tasks", [[], [FourierTask(0.01)]], ids=["none", "fourier"])
def test_digits_test_accuracy_above_85_percent(digits, tasks):
    keras.utils.set_random_seed(0)
    info = digits.info
    model = build(
        "small_cnn",
        input_shape=info.image_shape,
        num_classes=info.num_classes,
        mean=info.mean,
        std=info.std,
        tasks=tasks,
    )
    model.compile(optimizer=sgd_momentum(learning_rate=0.05), jit_compile=False)
    model.fit(digits.train, validation_data=digits.val, epochs=8, verbose=0, shuffle=False)
    result = robustness(model, digits.test, quick_eval(fgsm_eps=(0.3,)), progress=False)
    assert result["num_examples"] == 360
    assert result["clean"] > 0.85
    assert result["fgsm"]["0.3"] < result["clean"]  # an undefended model is not robust


def _recipe():
    return Recipe(
        name="digits_resume",
        variants=("none", "recon"),
        data=DataConfig(dataset="digits", batch_size=64),
        model=ModelConfig(backbone="small_cnn", width=0.5),
        training=TrainingConfig(epochs=2, learning_rate=0.05),
        monitor=MonitorConfig(images_every=0),  # TensorBoard's panels: tests/unit/training
        evaluation=quick_eval(fgsm_eps=(0.1,)),
        export=False,
    )


def _evaluated_recipe(tmp_path):
    """`_recipe()` with every per-example evaluation: disturbances, an augmented set and a
    small -C benchmark against a 1-epoch small_cnn."""
    return dataclasses.replace(
        _recipe(),
        evaluation=quick_eval(fgsm_eps=(0.1,), disturbances=True, augmented=("geometric",)),
        corruption=CorruptionConfig(
            enabled=True,
            examples=16,
            corruptions=("gaussian_noise", "contrast"),
            severities=(1, 5),
            reference="small_cnn",
            reference_epochs=1,
            cache_dir=str(tmp_path / "corruptions"),
        ),
    )


# A 1-epoch tiny model's transfer check can fail on 32 images; this test is about resuming.
@pytest.mark.filterwarnings("ignore::tfaux.evaluate.sanity.UntrustworthyRobustnessWarning")
def test_an_unfinished_run_resumes_in_its_own_directory(tmp_path):
    recipe = _evaluated_recipe(tmp_path)
    first = runner.run(recipe, runs_dir=tmp_path, progress=False)
    variants = first.run_dir / "variants"
    # Simulate a crash after "none" finished and "recon" was trained but not yet evaluated,
    # in a run whose CE reference was cached before its per-example file existed.
    (first.run_dir / "results.json").unlink()
    (variants / "recon.json").unlink()
    (variants / "reference_small_cnn.corruption.npz").unlink()
    second = runner.run(recipe, runs_dir=tmp_path, progress=False)
    assert second.run_dir == first.run_dir
    # As written to results.json: severities become strings there, NaN (an undefined relative
    # CE of these barely trained models) is unequal to itself.
    for key in ("variants", "corruption"):
        assert json.dumps(second.results[key], sort_keys=True) == json.dumps(
            first.results[key], sort_keys=True
        ), key
    assert (variants / "reference_small_cnn.corruption.npz").exists()
    log = (first.run_dir / "log.txt").read_text()
    assert "none: already evaluated" in log
    assert json.loads((first.run_dir / "results.json").read_text())["best_by"] == "val_accuracy"
    # Per test example, every number a paired test compares: a table column's array has the
    # column's accuracy as its mean, and the -C files give back the errors CE is made of.
    results = json.loads((first.run_dir / "results.json").read_text())
    correct = evidence.load_correct(first.run_dir, results)
    reference = results["corruption"]["reference_errors"]
    for name, r in results["variants"].items():
        metrics = evidence.headline_metrics(r)
        columns = set(metrics)
        assert {"FGSM ε=0.1", "random_crop", "five_crop", "FGSM(baseline) + geometric"} <= columns
        assert columns | {"robust", *r["robustness"]["attacks"]} <= set(correct[name])
        assert len(correct[name]["clean"]) == r["test_examples"]
        for column, accuracy in metrics.items():
            if column == "five_crop":  # fractions of each image's crops, summed per batch
                assert np.mean(correct[name][column]) == pytest.approx(accuracy, rel=1e-12)
            else:
                assert correct[name][column].dtype == bool, column
                assert np.mean(correct[name][column]) == accuracy, column
        assert r["corruption_correct"] == f"{name}.corruption.npz"
        for file, errors in (
            (r["corruption_correct"], r["corruption"]),
            (reference["correct"], reference),
        ):
            with np.load(variants / file) as arrays:
                assert arrays.files == [
                    "clean",
                    "gaussian_noise/1",
                    "gaussian_noise/5",
                    "contrast/1",
                    "contrast/5",
                ]
            per_example = load_corruption_correct(variants / file)
            assert np.mean(~per_example["clean"]) == errors["clean_error"]
            for corruption, by_severity in per_example["corrupted"].items():
                for severity, hits in by_severity.items():
                    assert len(hits) == 16
                    assert np.mean(~hits) == errors["errors"][corruption][str(severity)]

    # A finished run is never reused; --fresh does not reuse an unfinished one either.
    new = runner.run_directory(tmp_path, recipe, fresh=False)
    assert new != first.run_dir
    shutil.rmtree(new)
    (first.run_dir / "results.json").unlink()
    assert runner.run_directory(tmp_path, recipe, fresh=False) == first.run_dir
    assert runner.run_directory(tmp_path, recipe, fresh=True) != first.run_dir


def test_every_variant_trains_on_the_same_batches():
    # Iterating one tf.data pipeline again continues its shuffle: a shared pipeline gave the
    # second variant of a recipe other batches than the first. The runner builds one per variant.
    recipe = Recipe(name="t", data=DataConfig(dataset="digits", batch_size=16, train_size=64))
    first = []
    for _ in range(2):  # building a model sets TF's global seed, which tf.data also reads
        splits = experiment.load_splits(recipe)
        first.append(next(iter(splits.train))[1].numpy())
        experiment.build_model(recipe, "none", splits.info)
    np.testing.assert_array_equal(first[0], first[1])
    shared = experiment.load_splits(recipe).train
    assert not np.array_equal(next(iter(shared))[1].numpy(), next(iter(shared))[1].numpy())


def test_same_seed_same_metrics(tmp_path):
    # Random starts, augmentation, shuffling and initialization all derive from the seed.
    recipe = dataclasses.replace(
        _recipe(),
        name="digits_same_seed",
        variants=("fourier@fgsm_rs:geometric",),
        training=TrainingConfig(epochs=1, learning_rate=0.05),
        evaluation=quick_eval(fgsm_eps=(0.1,), sanity=False),
    )
    first, second = (
        runner.run(recipe, runs_dir=tmp_path, fresh=True, progress=False) for _ in range(2)
    )
    assert first.run_dir != second.run_dir
    a, b = (r.results["variants"]["fourier@fgsm_rs:geometric"] for r in (first, second))
    for key in ("val_accuracy", "test_accuracy", "fgsm_accuracy", "pgd_accuracy", "robustness"):
        assert a[key] == b[key], key
    histories = [
        json.loads((r.run_dir / "variants" / "fourier@fgsm_rs:geometric.train.json").read_text())
        for r in (first, second)
    ]
    assert histories[0]["history"] == histories[1]["history"]


@pytest.mark.filterwarnings("ignore::tfaux.evaluate.sanity.UntrustworthyRobustnessWarning")
def test_a_seed_sweep_trains_one_ce_reference_for_every_seed(tmp_path):
    recipe = dataclasses.replace(
        _evaluated_recipe(tmp_path),
        variants=("none",),
        evaluation=quick_eval(fgsm_eps=(0.1,)),
        training=TrainingConfig(epochs=1, learning_rate=0.05),
        seeds=(0, 1),
    )
    result = runner.run(recipe, runs_dir=tmp_path, progress=False)
    commit = provenance.code_commit()
    assert result.results["commit"] == commit and commit  # the tests run in a checkout
    assert f"Commit: {commit}" in (result.run_dir / "results.md").read_text()
    reference = "reference_small_cnn"
    assert (result.run_dir / "variants" / f"{reference}.weights.h5").exists()
    shared = json.loads((result.run_dir / "variants" / f"{reference}.corruption.json").read_text())
    seed_runs = sorted((result.run_dir / "seeds").iterdir())
    assert len(seed_runs) == 2
    for seed_run in seed_runs:
        assert not (seed_run / "variants" / f"{reference}.weights.h5").exists()  # not retrained
        results = json.loads((seed_run / "results.json").read_text())
        assert results["commit"] == commit
        assert results["corruption"]["reference_errors"]["errors"] == shared["errors"]
        errors = results["variants"]["none"]["corruption"]
        ce = results["variants"]["none"]["corruption_error"]["ce"]["contrast"]
        expected = sum(errors["errors"]["contrast"].values()) / sum(
            shared["errors"]["contrast"].values()
        )
        assert ce == pytest.approx(100 * expected)
