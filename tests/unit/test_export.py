"""SavedModel export: same logits after reload, complete metadata, no half directory."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_images, tiny_model
from tfaux import FourierTask, ReconTask
from tfaux.export import saved_model, weights_sha256


@pytest.fixture(scope="module")
def model():
    return tiny_model([ReconTask(), FourierTask()], num_classes=3, mean=0.4, std=0.2)


def test_reloaded_savedmodel_gives_the_same_logits(model, tmp_path):
    path = saved_model(model, tmp_path / "m", metadata={"dataset": "digits"})
    x = random_images(5, (16, 16, 1))
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = serving(images=tf.constant(x))
    assert sorted(out) == ["logits", "probabilities"]
    np.testing.assert_allclose(out["logits"], model(x, training=False)["logits"], atol=1e-5)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)


def test_export_holds_no_aux_weights_and_complete_metadata(model, tmp_path):
    path = saved_model(model, tmp_path / "m", metadata={"dataset": "digits", "classes": ["a"]})
    loaded = tf.saved_model.load(str(path))
    variable_names = {v.name for v in loaded.variables}
    assert not any(n.startswith(("recon", "fourier")) for n in variable_names)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["input"]["shape"] == [None, 16, 16, 1]
    assert meta["input"]["range"] == [0.0, 1.0]
    assert meta["outputs"] == ["logits", "probabilities"]
    np.testing.assert_allclose(meta["normalization"]["mean"], [0.4], rtol=1e-6)
    np.testing.assert_allclose(meta["normalization"]["std"], [0.2], rtol=1e-6)
    assert meta["dataset"] == "digits" and meta["classes"] == ["a"]
    classifier = keras.Model(model.input, model.output["logits"])
    assert meta["weights_sha256"] == weights_sha256(classifier)
    assert meta["num_parameters"] == classifier.count_params() < model.count_params()


def test_interrupted_export_leaves_no_half_directory(model, tmp_path, monkeypatch):
    real_save = tf.saved_model.save

    def crash_after_writing(obj, export_dir, *args, **kwargs):
        real_save(obj, export_dir, *args, **kwargs)  # files on disk, metadata not yet written
        raise KeyboardInterrupt

    monkeypatch.setattr(tf.saved_model, "save", crash_after_writing)
    with pytest.raises(KeyboardInterrupt):
        saved_model(model, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_re_export_replaces_the_previous_one(model, tmp_path):
    saved_model(model, tmp_path / "m", metadata={"version": 1})
    saved_model(model, tmp_path / "m", metadata={"version": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["version"] == 2


def test_weights_hash_changes_with_the_weights(model):
    classifier = keras.Model(model.input, model.output["logits"])
    before = weights_sha256(classifier)
    kernel = classifier.get_layer("logits").kernel
    kernel.assign(kernel + 1.0)
    try:
        assert weights_sha256(classifier) != before
    finally:
        kernel.assign(kernel - 1.0)
