"""Auxiliary Training (seed 001): Selective BatchNorm, the chunked step, eq. (7), stages, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import loop_model, loop_recipe, random_images, tiny_model
from tfaux.config import AdversarialConfig, AuxTrainingConfig
from tfaux.export import saved_model
from tfaux.models import primary_classifier
from tfaux.models.layers import ChunkSelect, SelectiveBatchNorm
from tfaux.training.loop import create_loop
from tfaux.training.loops import auxiliary_training
from tfaux.training.loops.auxiliary_training import AuxiliaryTrainingModel, MergeStage

X, Y = random_images(16, (16, 16, 1), seed=3), np.arange(16) % 4
CONFIG = AuxTrainingConfig(corruptions=("gaussian_noise", "rotation"))  # 3 chunks: fast
ABLATIONS = ("auxiliary_no_sbn", "auxiliary_no_distill", "auxiliary_no_attention")


def _model(loop="auxiliary", config=CONFIG, synchronized=False):
    adversarial = AdversarialConfig(eps=0.1, pgd_steps=2)
    return loop_model(loop, synchronized=synchronized, adversarial=adversarial, auxiliary=config)


# === Selective BatchNorm ===
def _chunked(seed=0):
    rng = np.random.default_rng(seed)
    # Three chunks with very different statistics: clean, shifted, scaled.
    chunks = [
        rng.normal(0, 1, (6, 3, 3, 2)),
        rng.normal(5, 1, (6, 3, 3, 2)),
        rng.normal(0, 4, (6, 3, 3, 2)),
    ]
    return np.concatenate(chunks).astype("float32"), chunks


def test_selective_batch_norm_normalizes_each_chunk_with_its_own_statistics():
    x, chunks = _chunked()
    layer = SelectiveBatchNorm(3, epsilon=1e-3)
    out = layer(x, training=True).numpy()
    for j, chunk in enumerate(chunks):
        mean, var = chunk.mean((0, 1, 2)), chunk.var((0, 1, 2))
        np.testing.assert_allclose(
            out[6 * j : 6 * (j + 1)], (chunk - mean) / np.sqrt(var + 1e-3), atol=1e-4
        )


def test_selective_batch_norm_moving_statistics_come_from_the_clean_chunk_only():
    x, chunks = _chunked()
    selective = SelectiveBatchNorm(3, momentum=0.5)
    plain = keras.layers.BatchNormalization(momentum=0.5)
    selective(x, training=True)
    plain(chunks[0].astype("float32"), training=True)  # BN on the clean images alone
    np.testing.assert_allclose(selective.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        selective.moving_variance.numpy(), plain.moving_variance.numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        selective.moving_mean.numpy(), 0.5 * chunks[0].mean((0, 1, 2)), atol=1e-6
    )


def test_selective_batch_norm_at_inference_equals_batch_norm_with_the_same_weights():
    x, _ = _chunked(1)
    selective, plain = SelectiveBatchNorm(3), keras.layers.BatchNormalization()
    selective(x, training=True)
    plain.build(x.shape)
    plain.set_weights(selective.get_weights())
    np.testing.assert_allclose(selective(x, training=False), plain(x, training=False), atol=1e-6)
    assert keras.layers.deserialize(keras.layers.serialize(selective)).chunks == 3


def test_chunk_select_takes_one_part_of_the_batch():
    x = np.arange(12, dtype="float32").reshape(12, 1)
    np.testing.assert_array_equal(ChunkSelect(1, 3)(x).numpy().ravel(), [4, 5, 6, 7])
    with pytest.raises(ValueError, match="Expected 0 <= index < chunks"):
        ChunkSelect(3, 3)


# === The model and its step ===
def test_auxiliary_model_has_one_classifier_per_corruption_on_its_chunk():
    model = _model()
    outputs = model(np.concatenate([X[:4]] * 3), training=False)
    assert outputs["logits"].shape == (12, 4)
    assert outputs["aux_gaussian_noise"].shape == outputs["aux_rotation"].shape == (4, 4)
    assert model.get_layer("aux_rotation").kernel.shape == model.get_layer("logits").kernel.shape
    assert any(
        isinstance(layer, SelectiveBatchNorm) for layer in model.get_layer("small_cnn").layers
    )
    assert model.get_layer("aux_rotation_attention_conv") is not None
    no_attention = _model("auxiliary_no_attention")
    assert not any("attention" in layer.name for layer in no_attention.layers)
    assert not any(
        isinstance(layer, SelectiveBatchNorm)
        for layer in _model("auxiliary_no_sbn").get_layer("small_cnn").layers
    )


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _cross_entropy(logits, labels):
    return float(np.mean(-np.log(_softmax(logits)[np.arange(len(labels)), labels])))


@pytest.mark.parametrize("stage", [1, 2])
def test_loss_is_equation_7_with_hand_computed_terms(stage):
    model = _model(
        config=AuxTrainingConfig(corruptions=("gaussian_noise", "rotation"), alpha=0.3, penalty=0.7)
    )
    rng = np.random.default_rng(0)
    for name in ("logits", "aux_gaussian_noise", "aux_rotation"):
        layer = model.get_layer(name)
        layer.set_weights(
            [rng.normal(0, 1, w.shape).astype("float32") for w in layer.get_weights()]
        )
    model.set_stage(stage)
    b, y = 4, Y[:4]
    outputs = {
        "logits": rng.normal(0, 2, (3 * b, 4)).astype("float32"),
        "aux_gaussian_noise": rng.normal(0, 2, (b, 4)).astype("float32"),
        "aux_rotation": rng.normal(0, 2, (b, 4)).astype("float32"),
    }
    total, terms = model.loss_terms(X[:b], y, {k: tf.constant(v) for k, v in outputs.items()})
    p0 = _softmax(outputs["logits"][:b])  # the clean chunk only
    ce_aux = sum(_cross_entropy(outputs[k], y) for k in ("aux_gaussian_noise", "aux_rotation"))
    kl = sum(
        np.mean(np.sum(p0 * np.log(p0 / _softmax(outputs[k])), -1))
        for k in ("aux_gaussian_noise", "aux_rotation")
    )
    w0 = model.get_layer("logits").get_weights()
    merge = sum(
        sum(np.sum((a - c) ** 2) for a, c in zip(w0, model.get_layer(k).get_weights(), strict=True))
        for k in ("aux_gaussian_noise", "aux_rotation")
    )
    gamma = 1.0 if stage == 2 else 0.0
    expected = _cross_entropy(outputs["logits"][:b], y) + 0.3 * ce_aux + 0.7 * (kl + gamma * merge)
    assert float(terms["distill"]) == pytest.approx(kl, rel=1e-4)
    assert float(terms["merge"]) == pytest.approx(merge, rel=1e-4)
    assert float(total) == pytest.approx(expected, rel=1e-4)


def test_distillation_teacher_is_the_primary_without_gradient():
    model = _model(config=AuxTrainingConfig(corruptions=CONFIG.corruptions, distillation="teacher"))
    x = tf.constant(np.concatenate([X[:4]] * 3))
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        _, terms = model.loss_terms(X[:4], Y[:4], outputs)
    gradients = tape.gradient(
        terms["distill"], [model.get_layer("logits").kernel, model.get_layer("aux_rotation").kernel]
    )
    assert gradients[0] is None or float(tf.reduce_max(tf.abs(gradients[0]))) == 0.0
    assert float(tf.reduce_max(tf.abs(gradients[1]))) > 0


def test_stage_switch_sets_gamma_per_epoch_and_ablations_keep_it_off():
    seen = {}
    for loop in ("auxiliary", "auxiliary_no_merge"):
        model = _model(loop)
        model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
        gammas = seen[loop] = []
        record = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs, gammas=gammas: gammas.append(logs["merge_gamma"])
        )
        stage = create_loop(loop, loop_recipe(auxiliary=CONFIG)).callbacks(3)
        assert [type(c) for c in stage] == [MergeStage]
        model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[*stage, record])
    assert CONFIG.stage_two_epoch(3) == 2
    assert seen == {"auxiliary": [0.0, 0.0, 1.0], "auxiliary_no_merge": [0.0, 0.0, 0.0]}


def test_stage_two_pulls_the_auxiliary_classifiers_onto_the_primary():
    distances = {}
    for loop in ("auxiliary", "auxiliary_no_merge"):
        model = _model(
            loop, config=AuxTrainingConfig(corruptions=("gaussian_noise", "rotation"), penalty=2.0)
        )
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        start = float(model._weight_distance("aux_rotation"))
        model.fit(X, Y, batch_size=8, epochs=6, verbose=0, callbacks=[MergeStage(0)])
        distances[loop] = float(model._weight_distance("aux_rotation")) / start
    assert distances["auxiliary"] < 0.05, distances  # merged: ‖θ_0 − θ_j‖² down by > 95 %
    assert distances["auxiliary_no_merge"] > 0.5, distances


def test_the_weight_distance_is_logged_every_epoch_in_both_stages():
    # Issue 24: the distance the merging penalty shrinks, at each epoch's end, merging or not.
    for loop in ("auxiliary", "auxiliary_no_merge"):
        model = _model(loop)
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        history = model.fit(
            X,
            Y,
            batch_size=8,
            epochs=2,
            verbose=0,
            validation_data=(X, Y),
            callbacks=[MergeStage(1)],
        ).history
        primary = model.get_layer("logits").get_weights()
        by_hand = {
            name: sum(
                float(np.sum((a - b) ** 2))
                for a, b in zip(primary, model.get_layer(name).get_weights(), strict=True)
            )
            for name in ("aux_gaussian_noise", "aux_rotation")
        }
        assert len(history["merge_distance"]) == 2
        for name, value in by_hand.items():
            assert history[f"merge_distance_{name}"][-1] == pytest.approx(value, rel=1e-5)
        assert history["merge_distance"][-1] == pytest.approx(sum(by_hand.values()), rel=1e-5)
        # Validation computes the merge term on the epoch's final weights: the same number.
        np.testing.assert_allclose(history["merge_distance"], history["val_merge_loss"], rtol=1e-5)


def test_each_auxiliary_loop_trains_and_reports_its_terms():
    for loop in ("auxiliary", "auxiliary_pgd", "corruption_augment", *ABLATIONS):
        model = _model(loop)
        before = [w.copy() for w in model.get_weights()]
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        history = model.fit(X, Y, batch_size=8, epochs=1, verbose=0, validation_data=(X, Y)).history
        assert np.isfinite(history["loss"][0]) and np.isfinite(history["val_loss"][0])
        if loop != "corruption_augment":
            assert {
                "distill_loss",
                "merge_loss",
                "aux_rotation_loss",
                "val_aux_rotation_loss",
            } <= set(history)
        assert any(
            np.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights(), strict=True)
        )


def test_the_batch_is_clean_then_one_chunk_per_corruption(monkeypatch):
    monkeypatch.setattr(
        auxiliary_training,
        "random_corruption",
        lambda x, name, seed: x * 0 + {"gaussian_noise": 0.25, "rotation": 0.75}[name],
    )
    batch = auxiliary_training.corrupted_batch(
        tf.constant(X[:4]), ("gaussian_noise", "rotation"), tf.constant([0, 0])
    )
    np.testing.assert_array_equal(batch[:4], X[:4])
    assert np.all(batch[4:8].numpy() == 0.25) and np.all(batch[8:].numpy() == 0.75)


def test_config_round_trip_keeps_the_loop():
    model = _model("auxiliary_no_distill")
    clone = AuxiliaryTrainingModel.from_config(model.get_config())
    assert (clone.distill, clone.merge, clone.corruptions) == (
        False,
        True,
        ("gaussian_noise", "rotation"),
    )


# === Export: the auxiliary classifiers are dropped ===
def test_export_has_no_auxiliary_weights_and_the_size_of_a_standard_model(tmp_path):
    model, standard = _model(), tiny_model()
    classifier = primary_classifier(model)
    assert not any("aux_" in w.path for w in classifier.weights)
    shapes = sorted(tuple(w.shape) for w in classifier.weights)
    assert shapes == sorted(tuple(w.shape) for w in primary_classifier(standard).weights)
    exported = saved_model(model, tmp_path / "export")
    loaded = tf.saved_model.load(str(exported))
    assert not any("aux_" in v.name for v in loaded.variables)
    assert sorted(tuple(v.shape) for v in loaded.variables) == shapes
    logits = loaded.signatures["serving_default"](images=tf.constant(X[:3]))["logits"]
    np.testing.assert_allclose(logits, classifier(X[:3], training=False), atol=1e-5)


def test_recipe_corruption_names_match_the_implementations():
    from tfaux.config import C_CORRUPTIONS
    from tfaux.data.corrupted_set import COMMON, VALIDATION
    from tfaux.data.corruptions import SEVERITY_PARAMETERS

    assert C_CORRUPTIONS == COMMON + VALIDATION
    assert set(SEVERITY_PARAMETERS) == set(AuxTrainingConfig().corruptions)
    with pytest.raises(ValueError, match="Did you mean 'gaussian_blur'"):
        AuxTrainingConfig(corruptions=("gaussian_blurr",))


@pytest.mark.parametrize("distillation", ["mutual", "teacher"])
def test_the_distillation_term_trains_the_primary_only_when_mutual(distillation):
    # Seed 001 §3: "student ⇄ student", the classifiers learn from each other (the default).
    config = AuxTrainingConfig(
        corruptions=("gaussian_noise", "rotation"), distillation=distillation
    )
    model = loop_model("auxiliary", auxiliary=config)
    assert model.distillation == distillation
    assert type(model).from_config(model.get_config()).distillation == distillation
    batch = auxiliary_training.corrupted_batch(
        tf.constant(X[:4]), model.corruptions, tf.constant([1, 2])
    )
    primary = model.get_layer("logits").trainable_weights
    with tf.GradientTape() as tape:
        _, terms = model.loss_terms(batch[:4], Y[:4], model(batch, training=True))
        distill = terms["distill"]
    gradients = tape.gradient(distill, primary)
    reaches_primary = any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)
    assert reaches_primary == (distillation == "mutual")
