"""Seed 002 and 004 tasks: NT-Xent, the projection and coarse heads, two-view training, the
denoising front end and its report, the cosine schedule."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from tests.helpers import random_images, tiny_model, with_loop
from tfaux.config import AdversarialConfig
from tfaux.data.augment import geometric_augment
from tfaux.evaluate.augmented import augmented_accuracy
from tfaux.evaluate.denoiser import denoiser_report
from tfaux.models.aux_model import AuxModel
from tfaux.models.layers import batch_norm
from tfaux.tasks import COARSE_GROUPS, CoarseTask, DenoiseTask, ProjectionTask, nt_xent
from tfaux.tasks.coarse import coarse_options, label_map
from tfaux.tasks.contrastive import distributed_nt_xent
from tfaux.training.schedules import cosine_after_warmup


def _numpy_nt_xent(z1, z2, tau):
    """SimCLR's loss written out term by term: anchor k, positive its other view."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        sims = {k: np.exp(z[i] @ z[k] / tau) for k in range(2 * n) if k != i}
        losses.append(-np.log(sims[positive] / sum(sims.values())))
    return np.array(losses)


def test_nt_xent_matches_a_hand_computed_example():
    z1 = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    z2 = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    # By hand for anchor 0 (unit vectors: sim(z1_0, z2_0) = 1/√2, others 0 and 0):
    # -log(e^{(1/√2)/0.5} / (e^0 + e^{(1/√2)/0.5} + e^0))
    by_hand = -np.log(np.exp(2 / np.sqrt(2)) / (2 + np.exp(2 / np.sqrt(2))))
    got = nt_xent(np.concatenate([z1, z2]), temperature=0.5).numpy()
    np.testing.assert_allclose(got[0], by_hand, rtol=1e-5)
    np.testing.assert_allclose(got, _numpy_nt_xent(z1, z2, 0.5), rtol=1e-5)


def test_nt_xent_is_symmetric_in_the_views_and_scale_free():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    forward = nt_xent(np.concatenate([z1, z2]), 0.2).numpy()
    swapped = nt_xent(np.concatenate([z2, z1]), 0.2).numpy()
    np.testing.assert_allclose(forward, np.concatenate([swapped[6:], swapped[:6]]), rtol=1e-5)
    np.testing.assert_allclose(forward.mean(), swapped.mean(), rtol=1e-6)
    np.testing.assert_allclose(nt_xent(np.concatenate([3 * z1, z2]), 0.2), forward, rtol=1e-5)
    # Identical views of distinct embeddings are easier than unrelated ones.
    assert nt_xent(np.concatenate([z1, z1]), 0.2).numpy().mean() < forward.mean()


def test_projection_head_gives_128_d_embeddings():
    model = tiny_model([ProjectionTask(1.0)])
    out = model(random_images(5, (16, 16, 1)))
    assert out["projection"].shape == (5, 128)
    assert model.views == 2 and model.augmentation == "simclr"
    with pytest.raises(ValueError, match="temperature > 0"):
        ProjectionTask(temperature=0.0)


def test_fashion_mnist_coarse_map_covers_every_fine_class_exactly_once():
    groups = COARSE_GROUPS["fashion_mnist"]
    members = sorted(c for group in groups.values() for c in group)
    assert members == list(range(10))
    mapping = label_map(groups, 10)
    assert mapping == (0, 1, 0, 2, 2, 3, 0, 3, 4, 3)
    assert coarse_options("fashion_mnist", 10) == {"num_coarse": 5, "fine_to_coarse": mapping}
    with pytest.raises(ValueError, match="exactly one group"):
        label_map({"a": (0, 1), "b": (1,)}, 2)
    with pytest.raises(ValueError, match="Missing: \\[2\\]"):
        label_map({"a": (0, 1)}, 3)
    with pytest.raises(ValueError, match="cifar100"):
        coarse_options("digits", 10)


def test_coarse_target_from_the_map_or_from_the_data():
    task = CoarseTask(
        1.0, num_coarse=5, fine_to_coarse=label_map(COARSE_GROUPS["fashion_mnist"], 10)
    )
    fine = tf.constant([0, 1, 3, 5, 8, 9], tf.int64)
    np.testing.assert_array_equal(task.target(None, fine), [0, 1, 2, 3, 4, 3])
    own = {"label": fine, "coarse_label": tf.constant([4, 3, 2, 1, 0, 0], tf.int64)}
    np.testing.assert_array_equal(task.target(None, own), [4, 3, 2, 1, 0, 0])
    model = tiny_model([task], num_classes=10)
    assert model(random_images(3, (16, 16, 1)))["coarse"].shape == (3, 5)


def test_two_views_repeat_labels_and_originals():
    model = with_loop(tiny_model([ProjectionTask(1.0)]), "standard")
    model.compile(optimizer="adam", jit_compile=False)
    x = random_images(4, (16, 16, 1))
    y = {"label": tf.constant([0, 1, 2, 3], tf.int64), "coarse_label": tf.constant([0, 0, 1, 1])}
    views, labels, originals = model.augment(tf.constant(x), y, seed=tf.constant([1, 2]))
    assert views.shape == (8, 16, 16, 1)
    np.testing.assert_array_equal(labels["label"], [0, 1, 2, 3, 0, 1, 2, 3])
    np.testing.assert_array_equal(originals, np.concatenate([x, x]))
    assert not np.allclose(views[:4], views[4:])  # two different augmentations


def test_contrastive_multitask_trains_both_terms():
    x, y = random_images(64, (16, 16, 1), seed=3), np.arange(64) % 4
    model = tiny_model(
        [ProjectionTask(1.0), CoarseTask(0.5, num_coarse=2, fine_to_coarse=(0, 0, 1, 1))]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x[:16], y[:16]))
    h = history.history
    for key in ("projection_loss", "coarse_loss", "val_projection_loss", "val_accuracy"):
        assert np.all(np.isfinite(h[key])), key
    assert h["projection_loss"][-1] < h["projection_loss"][0]
    # The loss the model reports is CE + λ_c·NT-Xent + λ·coarse.
    np.testing.assert_allclose(
        h["loss"][-1],
        h["logits_loss"][-1] + h["projection_loss"][-1] + 0.5 * h["coarse_loss"][-1],
        rtol=1e-4,
    )


def test_distributed_nt_xent_equals_the_single_device_loss(mirrored):
    rng = np.random.default_rng(1)
    z = tf.constant(rng.normal(size=(8, 5)), tf.float32)  # [view_1 (4), view_2 (4)]
    want = float(tf.reduce_mean(nt_xent(z, 0.5)))
    # Replica r holds its two images as its own [view_1, view_2] block, as in a train step.
    blocks = [tf.concat([z[2 * r : 2 * r + 2], z[4 + 2 * r : 6 + 2 * r]], 0) for r in range(2)]

    def share(_):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        return distributed_nt_xent(tf.gather(tf.stack(blocks), r), 0.5)

    shares = mirrored.run(share, args=(tf.constant(0.0),))
    total = sum(float(v) for v in mirrored.experimental_local_results(shares))
    # The shares sum to the single-device mean: every anchor meets all 2N − 1 other views.
    np.testing.assert_allclose(total, want, rtol=1e-5)


def _digits_16px(n=192):
    digits = load_digits()
    x = digits.images[:n].repeat(2, axis=1).repeat(2, axis=2)[..., None] / 16.0
    return x.astype(np.float32), digits.target[:n] % 4


def test_denoiser_front_end_shape_and_its_loss_falls_on_real_digits():
    x, y = _digits_16px()
    # λ = 10: at λ = 1 the classifier's gradient, which also reaches the front end, outweighs
    # the reconstruction term in a run this short (the loss fell 5 % instead of 37 %).
    model = with_loop(
        tiny_model([DenoiseTask(10.0, filters=8)]),
        "fgsm",
        augmentation="geometric",
        dataset="digits",  # no mirroring
        batch_size=32,
        adversarial=AdversarialConfig(eps=0.1),
    )
    out = model(x[:3])
    assert out["denoise"].shape == (3, 16, 16, 1)
    assert np.all((out["denoise"].numpy() >= 0) & (out["denoise"].numpy() <= 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    losses = history.history["denoise_loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    # The classifier sees the denoiser's output: the deployed model keeps it.
    names = {layer.name for layer in keras.Model(model.input, model.output["logits"]).layers}
    assert "denoise" in names


def test_denoiser_report_recognizes_an_identity_front_end():
    images = keras.Input((16, 16, 1))
    identity = keras.layers.Identity(name="denoise")(images)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.Flatten()(identity))
    model = keras.Model(images, {"logits": logits, "denoise": identity})
    x, y = _digits_16px(32)
    report = denoiser_report(model, x, y, eps=0.1, flip=False)
    np.testing.assert_allclose(report["noise_kept"], 1.0, atol=1e-5)
    np.testing.assert_allclose(report["identity_distance"], 0.0, atol=1e-6)
    np.testing.assert_allclose(report["error_ratio"], 1.0, atol=1e-5)
    assert report["noisy_identity"] is True and report["clean_error"] == 0.0
    np.testing.assert_allclose(report["geometric_kept"], 1.0, atol=1e-5)
    np.testing.assert_allclose(report["geometric_error_ratio"], 1.0, atol=1e-5)


def _constant_denoiser(images: np.ndarray) -> keras.Model:
    """A front end that always outputs `images`, beside a classifier FGSM can attack."""
    inputs = keras.Input((16, 16, 1))
    const = keras.layers.Lambda(lambda t: tf.constant(images) + 0.0 * t, name="denoise")(inputs)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, {"logits": logits, "denoise": const})


def test_denoiser_report_separates_the_fgsm_part_from_the_geometric_one():
    x, y = _digits_16px(32)
    geometric = geometric_augment(tf.constant(x), tf.constant([0, 4]), flip=False).numpy()
    assert np.abs(geometric - x).max() > 0.1  # the augmentation moved the images
    # Returns the augmented clean image: all of FGSM removed, all of the geometry kept
    report = denoiser_report(_constant_denoiser(geometric), x, y, eps=0.1, seed=0, flip=False)
    np.testing.assert_allclose(report["noise_kept"], 0.0, atol=1e-6)
    np.testing.assert_allclose(report["error_ratio"], 0.0, atol=1e-6)
    np.testing.assert_allclose(report["geometric_kept"], 1.0, atol=1e-5)
    assert report["noisy_identity"] is False
    # Returns the original image: the geometry undone too
    report = denoiser_report(_constant_denoiser(x), x, y, eps=0.1, seed=0, flip=False)
    np.testing.assert_allclose(report["geometric_kept"], 0.0, atol=1e-6)
    np.testing.assert_allclose(report["geometric_error_ratio"], 0.0, atol=1e-6)
    assert abs(report["noise_kept"]) < 0.5 and report["clean_error"] == 0.0


def test_cosine_schedule_is_constant_through_the_warm_up_then_anneals_to_zero():
    schedule = cosine_after_warmup(3e-4, epochs=10, warmup_epochs=4, steps_per_epoch=5)
    rates = np.array([float(schedule(step)) for step in range(51)])
    np.testing.assert_allclose(rates[:21], 3e-4, rtol=1e-6)
    np.testing.assert_allclose(rates[35], 3e-4 * 0.5 * (1 + np.cos(np.pi * 15 / 30)), rtol=1e-5)
    assert np.all(np.diff(rates[20:]) <= 0) and rates[-1] < 1e-9
    with pytest.raises(ValueError, match="warmup_epochs < epochs"):
        cosine_after_warmup(3e-4, epochs=3, warmup_epochs=3, steps_per_epoch=5)


def test_two_view_model_round_trips_through_its_config():
    model = with_loop(
        tiny_model([ProjectionTask(0.7)]), "standard", augmentation="geometric", dataset="digits"
    )
    revived = AuxModel.from_config(model.get_config())
    assert (revived.augmentation, revived.flip, revived.views) == ("geometric", False, 2)
    assert revived.tasks[0].weight == 0.7


def _two_view_epoch(strategy, weights, x, y, monkeypatch):
    # Deterministic views (the first a mirror, the second a dimmed copy), the same on any
    # replica count; the point is the loss and its all-gathered negatives.
    calls = itertools.count()

    def view(images, seed, flip):
        return tf.reverse(images, [2]) if next(calls) % 2 == 0 else 0.8 * images

    monkeypatch.setattr("tfaux.models.aux_model.get_augmentation", lambda name: view)
    with strategy.scope():
        model = tiny_model([ProjectionTask(1.0)], norm=batch_norm(synchronized=True))
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    return history.history, model.get_weights()


def test_two_view_training_on_two_replicas_equals_one(mirrored, monkeypatch):
    x, y = random_images(16, (16, 16, 1), seed=5), np.arange(16) % 4
    weights = tiny_model([ProjectionTask(1.0)]).get_weights()
    one, w_one = _two_view_epoch(tf.distribute.get_strategy(), weights, x, y, monkeypatch)
    two, w_two = _two_view_epoch(mirrored, weights, x, y, monkeypatch)
    for key in ("loss", "projection_loss", "logits_loss"):
        np.testing.assert_allclose(one[key], two[key], rtol=1e-5, err_msg=key)
    for a, b in zip(w_one, w_two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_augmented_accuracy_with_and_without_a_transfer_source():
    x, y = _digits_16px(48)
    model, source = tiny_model(seed=1), tiny_model(seed=2)
    plain = augmented_accuracy(model, x, y, "geometric", seed=3, flip=False)
    assert list(plain) == ["augmented"]
    both = augmented_accuracy(model, x, y, "geometric", seed=3, flip=False, surrogate=source)
    assert both["augmented"] == plain["augmented"]  # the same seed, the same augmented set
    augmented = geometric_augment(tf.constant(x), tf.constant([3, 0]), flip=False)
    predictions = np.argmax(model(augmented)["logits"], axis=1)
    np.testing.assert_allclose(plain["augmented"], np.mean(predictions == y))
    assert 0 <= both["fgsm_augmented"] <= 1
    # FGSM at ε = 0 transfers nothing: the same images as the augmented set.
    zero = augmented_accuracy(model, x, y, "geometric", seed=3, flip=False, surrogate=source, eps=0)
    assert zero["fgsm_augmented"] == zero["augmented"]
    # Each image's correctness, for paired tests between models; the accuracies stay the same.
    again, correct = augmented_accuracy(
        model, x, y, "geometric", seed=3, flip=False, surrogate=source, return_correct=True
    )
    assert again == both and list(correct) == ["augmented", "fgsm_augmented"]
    np.testing.assert_array_equal(correct["augmented"], predictions == y)
    for key, hits in correct.items():
        assert hits.dtype == bool and hits.shape == (48,) and np.mean(hits) == both[key], key
