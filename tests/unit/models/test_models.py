"""The multi-output builder and AuxModel's train step: shapes, loss, config, distribution."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import assert_same_outputs, numpy_fourier, random_images, tiny_model
from tfaux import AuxModel, FourierTask, ReconTask, build, list_backbones, primary_classifier
from tfaux.models import batch_norm


@pytest.mark.parametrize("backbone", list_backbones())
@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32, 3)])
def test_decoder_output_shapes(backbone, input_shape):
    model = build(
        backbone,
        input_shape=input_shape,
        num_classes=10,
        width=0.25,
        tasks=[ReconTask(), FourierTask()],
    )
    shapes = {name: tuple(t.shape) for name, t in model.output.items()}
    assert shapes == {
        "logits": (None, 10),
        "recon": (None, *input_shape),
        "fourier": (None, *input_shape[:2], 2),
    }


def test_outputs_forward_and_recon_range():
    model = tiny_model([ReconTask(), FourierTask()])
    out = model(random_images(3, (16, 16, 1)), training=False)
    assert out["logits"].shape == (3, 4)
    assert np.all((out["recon"].numpy() >= 0) & (out["recon"].numpy() <= 1))
    assert all(np.all(np.isfinite(v)) for v in out.values())


def test_standardization_is_inside_the_model():
    model = tiny_model()
    layer = model.get_layer("standardize")
    x = random_images(2, (16, 16, 1))
    np.testing.assert_allclose(layer(x), (x - 0.5) / 0.25, atol=1e-5)


def test_loss_is_ce_plus_weighted_aux_terms():
    tasks = [ReconTask(0.3), FourierTask(0.02)]
    model = tiny_model(tasks)
    x = random_images(4, (16, 16, 1))
    y = np.array([0, 1, 2, 3])
    out = model(x, training=False)
    total, terms = model.loss_terms(x, y, out)
    logits = out["logits"].numpy()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -log_probs[np.arange(4), y].mean()
    recon = np.mean((out["recon"].numpy() - x) ** 2)
    fourier = np.mean((out["fourier"].numpy() - numpy_fourier(x)) ** 2)
    np.testing.assert_allclose(terms["logits"], ce, rtol=1e-5)
    np.testing.assert_allclose(terms["recon"], recon, rtol=1e-5)
    np.testing.assert_allclose(terms["fourier"], fourier, rtol=1e-4)
    np.testing.assert_allclose(total, ce + 0.3 * recon + 0.02 * fourier, rtol=1e-5)


def test_train_step_reports_every_head_and_changes_weights():
    model = tiny_model([ReconTask(), FourierTask()])
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    x, y = random_images(16, (16, 16, 1)), np.arange(16) % 4
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y))
    assert set(history.history) == {
        f"{p}{m}"
        for p in ("", "val_")
        for m in ("loss", "logits_loss", "recon_loss", "fourier_loss", "accuracy")
    }
    assert all(np.isfinite(v[0]) for v in history.history.values())
    decoder_kernel = model.get_layer("fourier_conv").kernel
    index = [w.path for w in model.trainable_weights].index(decoder_kernel.path)
    assert not np.allclose(before[index], decoder_kernel.numpy())


def test_aux_loss_changes_the_backbone_gradient():
    x, y = random_images(4, (16, 16, 1)), np.arange(4)
    grads = []
    for model in (tiny_model([FourierTask(1.0)]), tiny_model()):  # same seed → same backbone init
        with tf.GradientTape() as tape:
            loss, _ = model.loss_terms(x, y, model(x, training=True))
        backbone = model.get_layer("small_cnn").trainable_weights
        grads.append(tape.gradient(loss, backbone))
        assert all(g is not None and np.all(np.isfinite(g)) for g in grads[-1])
    assert not np.allclose(grads[0][0], grads[1][0])


def test_config_round_trip_keeps_tasks_and_outputs():
    model = tiny_model([ReconTask(0.1), FourierTask(0.2)])
    clone = AuxModel.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert [(t.name, t.weight) for t in clone.tasks] == [("recon", 0.1), ("fourier", 0.2)]
    assert_same_outputs(model, clone, random_images(2, (16, 16, 1)))
    revived = keras.models.clone_model(model)
    assert isinstance(revived, AuxModel)


def test_primary_classifier_drops_aux_heads():
    model = tiny_model([ReconTask(), FourierTask()])
    classifier = primary_classifier(model)
    names = {layer.name for layer in classifier.layers}
    assert not any(n.startswith(("recon", "fourier")) for n in names)
    x = random_images(2, (16, 16, 1))
    np.testing.assert_allclose(classifier(x), model(x)["logits"], atol=1e-6)
    assert classifier.count_params() < model.count_params()


def test_build_validates_its_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        build("small_cnn", input_shape=(16, 16, 1), num_classes=1)
    with pytest.raises(ValueError, match="std > 0"):
        build("small_cnn", input_shape=(16, 16, 1), num_classes=3, std=0.0)
    with pytest.raises(ValueError, match="distinct"):
        build("small_cnn", input_shape=(16, 16, 1), num_classes=3, tasks=[ReconTask()] * 2)
    with pytest.raises(ValueError, match="'resnet18'"):
        build("resnet_18", input_shape=(16, 16, 1), num_classes=3)


def _one_epoch(strategy, weights, x, y):
    with strategy.scope():
        model = tiny_model([ReconTask(0.5), FourierTask(0.1)], norm=batch_norm(synchronized=True))
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    return history.history, model.get_weights()


def test_two_replicas_give_the_same_loss_and_weights_as_one(mirrored):
    x, y = random_images(24, (16, 16, 1), seed=1), np.arange(24) % 4
    weights = tiny_model([ReconTask(0.5), FourierTask(0.1)]).get_weights()
    one, w_one = _one_epoch(tf.distribute.get_strategy(), weights, x, y)
    two, w_two = _one_epoch(mirrored, weights, x, y)
    for key in one:
        np.testing.assert_allclose(one[key], two[key], rtol=1e-5, err_msg=key)
    for a, b in zip(w_one, w_two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
