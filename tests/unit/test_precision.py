"""Mixed precision: every loop trains in every precision; evaluation and export are float32."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (
    Interrupt,
    loop_model,
    loop_recipe,
    quick_eval,
    random_images,
    small_loop_settings,
    tiny_model,
)
from tfaux import build, data, experiment, runner
from tfaux.config import (
    PRECISIONS,
    AdversarialConfig,
    DataConfig,
    ModelConfig,
    MonitorConfig,
    Recipe,
    TrainingConfig,
)
from tfaux.data.pipeline import labels_of
from tfaux.overrides import apply_overrides
from tfaux.precision import dtype_policy, loss_scaled
from tfaux.tasks import create_task
from tfaux.training import sgd_momentum
from tfaux.training.callbacks import StepBudget
from tfaux.training.loop import create_loop, list_loops
from tfaux.training.loops.free import FreeATModel
from tfaux.training.resume import RunBackup

X = random_images(8, (16, 16, 1), seed=1)
Y = np.arange(8) % 4
# One model per train-step class, compiled as `fit` runs it (graph loops, both `cond` branches
# of the loss-scale optimizer); the other loops are flags of these and run eagerly (fast).
COMPILED = ("pgd", "free_gamma", "auxiliary_pgd", "corruption_augment")


SETTINGS = small_loop_settings()


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("loop", list_loops())
def test_every_loop_trains_in_every_precision(loop, precision):
    model = loop_model(loop, precision=precision, **SETTINGS)
    assert keras.config.dtype_policy().name == "float32"  # the policy was scoped to building
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=loop not in COMPILED)
    # compile wraps the optimizer for float16 (with_loop kept the policy), as loss_scaled does
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")
    # Layers compute in 16 bits; outputs (logits, aux heads) and variables stay float32.
    assert model.get_layer("standardize").compute_dtype == precision.replace("mixed_", "")
    assert {w.dtype for w in model.weights} == {"float32"}
    outputs = model(X, training=False)
    assert {k: v.dtype for k, v in outputs.items()} == {k: tf.float32 for k in outputs}

    spec = create_loop(loop, loop_recipe(**SETTINGS))
    epochs = spec.epochs(1)
    callbacks = spec.callbacks(epochs)
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    history = model.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    history = history.history
    assert np.isfinite(history["loss"]).all(), history
    assert all(np.isfinite(w).all() for w in model.get_weights())
    if isinstance(model, FreeATModel):  # δ stays float32 and finite
        assert model.delta().dtype == tf.float32 and np.isfinite(model.delta()).all()


def test_output_layers_are_float32_with_every_head():
    tasks = [create_task(name) for name in ("recon", "fourier", "projection", "denoise")]
    tasks.append(create_task("coarse", num_coarse=2, fine_to_coarse=(0, 0, 1, 1)))
    model = tiny_model(tasks, precision="mixed_bfloat16")
    outputs = model(X, training=False)
    assert {k: v.dtype for k, v in outputs.items()} == {k: tf.float32 for k in outputs}
    assert model.get_layer("small_cnn").layers[1].compute_dtype == "bfloat16"


def test_dtype_policy_is_restored_after_an_error():
    with pytest.raises(ValueError, match="num_classes"), dtype_policy("mixed_float16"):
        build("small_cnn", input_shape=(16, 16, 1), num_classes=1)
    assert keras.config.dtype_policy().name == "float32"


def test_unknown_precision_fails_with_the_closest_names():
    base = Recipe(name="t")
    with pytest.raises(ValueError, match="Unknown training.precision 'bfloat16'. Did you mean"):
        apply_overrides(base, ["training.precision=bfloat16"])
    with pytest.raises(ValueError, match="Unknown precision 'float16'"):
        tiny_model(precision="float16")
    assert loss_scaled(keras.optimizers.SGD(), "mixed_bfloat16").__class__ is keras.optimizers.SGD


def test_bfloat16_training_learns_digits_and_its_weights_evaluate_in_float32():
    digits = data.load("digits", batch_size=32, seed=0)
    info = digits.info
    models = {}
    for precision in ("mixed_bfloat16", "float32"):
        keras.utils.set_random_seed(0)
        models[precision] = build(
            "small_cnn",
            input_shape=info.image_shape,
            num_classes=info.num_classes,
            mean=info.mean,
            std=info.std,
            width=0.5,
            precision=precision,
        )
    trained, rebuilt = models["mixed_bfloat16"], models["float32"]
    trained.compile(optimizer=sgd_momentum(learning_rate=0.05))
    trained.fit(digits.train, epochs=2, verbose=0, shuffle=False)
    rebuilt.set_weights(trained.get_weights())  # variables are float32 under mixed policies
    x, y = next(iter(digits.test.unbatch().batch(info.num_test)))
    accuracy = np.mean(np.argmax(rebuilt.predict(x, verbose=0)["logits"], -1) == labels_of(y))
    assert accuracy > 0.5  # chance is 0.1
    # bfloat16 and float32 inference of the same weights agree on nearly every image
    same = np.argmax(trained.predict(x, verbose=0)["logits"], -1) == np.argmax(
        rebuilt.predict(x, verbose=0)["logits"], -1
    )
    assert same.mean() > 0.95


def test_a_bfloat16_run_is_evaluated_and_exported_in_float32(tmp_path, monkeypatch):
    built = []
    build_model = experiment.build
    monkeypatch.setattr(
        experiment, "build", lambda *a, **kw: built.append(kw["precision"]) or build_model(*a, **kw)
    )
    recipe = Recipe(
        name="digits_bf16",
        data=DataConfig(dataset="digits", batch_size=64),
        model=ModelConfig(backbone="small_cnn", width=0.5),
        training=TrainingConfig(epochs=2, learning_rate=0.05, precision="mixed_bfloat16"),
        evaluation=quick_eval(fgsm_eps=(0.1,), sanity=False, curve_eps=(0.1,)),
        monitor=MonitorConfig(robust_examples=0, images_every=0),
    )
    result = runner.run(
        recipe, runs_dir=tmp_path / "runs", savedmodels_dir=tmp_path, progress=False
    )
    assert built[0] == "mixed_bfloat16" and set(built[1:]) == {"float32"}  # train, then evaluate
    assert keras.config.dtype_policy().name == "float32"
    reported = json.loads((result.run_dir / "results.json").read_text())["variants"]["none"]

    splits = experiment.load_splits(recipe)
    weights = result.run_dir / "variants" / "none.weights.h5"
    model = experiment.load_trained(recipe, "none", splits.info, weights)
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    x, y = next(iter(splits.test.unbatch().batch(splits.info.num_test)))
    predictions = np.argmax(model.predict(x, verbose=0)["logits"], -1)
    assert np.mean(predictions == labels_of(y)) == pytest.approx(reported["test_accuracy"])
    assert reported["test_accuracy"] > 0.5

    serve = tf.saved_model.load(str(result.export_dir)).signatures["serving_default"]
    (spec,) = serve.structured_input_signature[1].values()
    assert spec.dtype == tf.float32
    assert {v.dtype for v in serve.structured_outputs.values()} == {tf.float32}
    exported = serve(images=tf.constant(x))["logits"].numpy()
    np.testing.assert_array_equal(np.argmax(exported, -1), predictions)


@pytest.mark.parametrize("loop", ["standard", "free"])
def test_the_step_budget_counts_the_steps_loss_scaling_skips(loop, tmp_path):
    # A loss scale of 2^20 overflows float16 gradients: the LossScaleOptimizer skips the first
    # steps (halving the scale each time) without advancing optimizer.iterations. The run must
    # still see exactly the budget's batches, a resumed one too.
    x, y = random_images(16, (16, 16, 1), seed=2), np.arange(16) % 4
    settings = {"adversarial": AdversarialConfig(eps=0.1, replays=2, guard="off")}
    budget_steps = 12  # standard: 3 epochs of 4 batches; Free-AT (m = 2): 6 batches

    def fit(precision, backup_dir, extra=()):
        model = loop_model(loop, precision=precision, **settings)
        optimizer = keras.optimizers.SGD(0.05)
        if precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0**20)
        model.compile(optimizer=optimizer, jit_compile=False)
        budget, batches = StepBudget(budget_steps), []
        count = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
        backup = RunBackup(backup_dir, [budget])
        callbacks = [count, budget, *extra, backup]
        try:
            model.fit(x, y, batch_size=4, epochs=10, verbose=0, callbacks=callbacks)
        except KeyboardInterrupt:
            pass
        return model, budget.summary(), len(batches)

    per_batch = 2 if loop == "free" else 1
    _, steps, batches = fit("float32", tmp_path / "a")
    assert (steps, batches) == ({"optimizer_steps": 12, "skipped_steps": 0}, 12 // per_batch)
    model, steps, batches = fit("mixed_float16", tmp_path / "b")
    assert batches == 12 // per_batch and steps["optimizer_steps"] == 12
    assert steps["skipped_steps"] > 0
    assert int(model.optimizer.iterations.numpy()) == 12 - steps["skipped_steps"]
    # Killed after the first epoch (whose steps were skipped), then resumed.
    _, _, before = fit("mixed_float16", tmp_path / "c", extra=[Interrupt(1)])
    _, resumed, after = fit("mixed_float16", tmp_path / "c")
    assert before + after == batches and resumed == steps
