"""Tests for tfaux.evaluate.corruption (errors, CE/mCE) and tfaux.evaluate.corruption_plot."""

import json
import logging
import math

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import garments
from tfaux.data.corrupted_set import SEVERITIES, corrupted_set
from tfaux.evaluate.corruption import (
    corruption_error,
    corruption_errors,
    load_corruption_correct,
    mean_errors,
    save_corruption_correct,
)
from tfaux.evaluate.corruption_plot import corruption_plot

SMALL = {"corruptions": ("gaussian_noise", "saturate"), "severities": (1, 3), "progress": False}


@pytest.fixture(scope="module")
def gray():
    return garments(6, (28, 28, 1))


# === Errors and CE ===


def test_corruption_errors_with_exact_match_classifier(tmp_path, gray):
    labels = np.array([0, 1, 2, 0, 1, 2])
    cset = corrupted_set(gray, labels, tmp_path, **SMALL)
    clean = cset.clean_images()

    def predict(x):
        # Right for an image identical to a clean one, class 3 (never a label) for anything else.
        match = np.all(np.asarray(x)[:, None] == clean[None], axis=(2, 3, 4))
        predicted = np.where(match.any(axis=1), labels[match.argmax(axis=1)], 3)
        return {"logits": tf.constant(np.eye(4, dtype=np.float32)[predicted])}

    result = corruption_errors(predict, cset, batch_size=4, progress=False)
    assert set(result) == {"clean_error", "errors", "num_examples"}
    assert result["clean_error"] == 0 and result["num_examples"] == 6
    assert set(result["errors"]) == {"gaussian_noise", "saturate"}
    assert set(result["errors"]["saturate"]) == {1, 3}
    assert result["errors"]["saturate"] == {1: 0.0, 3: 0.0}  # identity on gray images
    assert result["errors"]["gaussian_noise"] == {1: 1.0, 3: 1.0}  # changes every image
    assert mean_errors(result) == {"gaussian_noise": 1.0, "saturate": 0.0}

    one_hot = corrupted_set(gray, np.eye(3)[labels], tmp_path / "onehot", **SMALL)
    assert corruption_errors(predict, one_hot, progress=False)["clean_error"] == 0
    with pytest.raises(ValueError, match="num_classes"):
        corruption_errors(lambda x: np.zeros(len(x)), cset, progress=False)


def test_per_example_correctness_gives_exactly_the_errors_and_round_trips(tmp_path):
    x = garments(24, (28, 28, 1), seed=1)
    labels = np.arange(24) % 3
    cset = corrupted_set(x, labels, tmp_path / "set", **SMALL)

    def predict(images):  # a fixed, deterministic "model" that is right on some images only
        classes = (np.asarray(images).mean(axis=(1, 2, 3)) * 1000).astype(int) % 3
        return np.eye(3, dtype=np.float32)[classes]

    plain = corruption_errors(predict, cset, batch_size=5, progress=False)
    result = corruption_errors(predict, cset, batch_size=5, progress=False, per_example=True)
    correct = result.pop("correct")
    assert result == plain  # the numbers do not change
    assert 0 < plain["clean_error"] < 1
    assert correct["clean"].dtype == bool and correct["clean"].shape == (24,)
    assert np.mean(~correct["clean"]) == plain["clean_error"]
    assert list(correct["corrupted"]) == ["gaussian_noise", "saturate"]
    for corruption, by_severity in plain["errors"].items():
        assert list(correct["corrupted"][corruption]) == [1, 3]
        for severity, error in by_severity.items():
            assert np.mean(~correct["corrupted"][corruption][severity]) == error

    path = save_corruption_correct(tmp_path / "model.corruption.npz", correct)
    with np.load(path) as arrays:  # the keys survive npz's zip member names
        assert arrays.files == [
            "clean",
            "gaussian_noise/1",
            "gaussian_noise/3",
            "saturate/1",
            "saturate/3",
        ]
    loaded = load_corruption_correct(path)
    np.testing.assert_array_equal(loaded["clean"], correct["clean"])
    assert list(loaded["corrupted"]) == ["gaussian_noise", "saturate"]
    for corruption, by_severity in correct["corrupted"].items():
        assert list(loaded["corrupted"][corruption]) == [1, 3]
        for severity, hits in by_severity.items():
            np.testing.assert_array_equal(loaded["corrupted"][corruption][severity], hits)

    with pytest.raises(ValueError, match="Received: \\['clean_error', 'errors'"):
        save_corruption_correct(tmp_path / "bad.npz", plain)
    np.savez(tmp_path / "other.npz", clean=correct["clean"], fog=correct["clean"])
    with pytest.raises(ValueError, match="Received: 'fog'"):
        load_corruption_correct(tmp_path / "other.npz")


def _table(clean, **errors):
    return {
        "clean_error": clean,
        "errors": {c: dict(zip(SEVERITIES, e, strict=True)) for c, e in errors.items()},
    }


MODEL = _table(0.1, fog=[0.2, 0.3, 0.4, 0.5, 0.6], contrast=[0.1, 0.1, 0.2, 0.2, 0.4])
REFERENCE = _table(0.2, fog=[0.4, 0.4, 0.5, 0.6, 0.6], contrast=[0.3, 0.3, 0.4, 0.4, 0.6])


def test_corruption_error_by_hand():
    # CE_fog = 2.0 / 2.5 = 80 %, CE_contrast = 1.0 / 2.0 = 50 %, mCE = 65 %.
    # relative: fog (2.0 - 5 * 0.1) / (2.5 - 5 * 0.2) = 100 %, contrast 0.5 / 1.0 = 50 %.
    result = corruption_error(MODEL, REFERENCE)
    assert result["ce"] == pytest.approx({"fog": 80.0, "contrast": 50.0})
    assert result["relative_ce"] == pytest.approx({"fog": 100.0, "contrast": 50.0})
    assert result["mCE"] == pytest.approx(65.0)
    assert result["relative_mCE"] == pytest.approx(75.0)
    assert result["mean_error"] == pytest.approx(30.0)  # 3.0 over 10 entries
    assert result["clean_error"] == pytest.approx(10.0)
    assert result["corruptions"] == ["fog", "contrast"]  # COMMON's order
    # The reference against itself is 100 everywhere; JSON round trips (str keys) work.
    same = corruption_error(json.loads(json.dumps(REFERENCE)), REFERENCE)
    assert same["mCE"] == pytest.approx(100.0) and same["relative_mCE"] == pytest.approx(100.0)
    only_fog = corruption_error(MODEL, REFERENCE, corruptions=["fog"])
    assert only_fog["mCE"] == pytest.approx(80.0)


def test_corruption_error_rejects_bad_tables(caplog):
    with pytest.raises(ValueError, match="only in errors"):
        corruption_error(_table(0.1, fog=[0.1] * 5, snow=[0.1] * 5), _table(0.1, fog=[0.2] * 5))
    with pytest.raises(ValueError, match="errors summing to 0|reference errors"):
        corruption_error(MODEL, _table(0.0, fog=[0.0] * 5, contrast=[0.1] * 5))
    with pytest.raises(ValueError, match="fractions"):
        corruption_error(_table(10.0, fog=[20.0] * 5), _table(0.2, fog=[0.4] * 5))
    with pytest.raises(ValueError, match="at least one"):
        corruption_error(MODEL, REFERENCE, corruptions=["snow"])
    with pytest.raises(ValueError, match="same severities"):
        corruption_error(MODEL, {"clean_error": 0.1, "errors": {"fog": {1: 0.5}, "contrast": {}}})
    with pytest.raises(ValueError, match="clean_error"):
        corruption_error(MODEL["errors"], REFERENCE)
    # A reference no worse than on clean images leaves relative CE undefined, not CE.
    flat = _table(0.3, fog=[0.3] * 5, contrast=[0.4] * 5)
    with caplog.at_level(logging.WARNING, logger="tfaux"):
        result = corruption_error(MODEL, flat)
    assert result["ce"]["fog"] == pytest.approx(2.0 / 1.5 * 100)
    assert math.isnan(result["relative_ce"]["fog"]) and math.isnan(result["relative_mCE"])
    assert "Relative CE of fog is undefined" in caplog.text


# === Plot ===


def test_plot_writes_png(tmp_path):
    ce = {
        "aux": corruption_error(MODEL, REFERENCE),
        "baseline": corruption_error(REFERENCE, REFERENCE),
    }
    path = corruption_plot(ce, tmp_path / "plots" / "ce.png", reference_name="baseline")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    errors = corruption_plot({"aux": MODEL, "baseline": REFERENCE}, tmp_path / "err.png")
    assert errors.stat().st_size > 5000
    with pytest.raises(ValueError, match="every"):
        corruption_plot({"aux": ce["aux"], "baseline": REFERENCE}, tmp_path / "mixed.png")


def test_the_validation_corruptions_get_their_own_mean_and_every_ce_column():
    # Seed 001's Table 7 shows all 19 CE columns; mCE stays over the 15 common corruptions.
    model = {
        **MODEL,
        "errors": {**MODEL["errors"], "speckle_noise": dict.fromkeys(SEVERITIES, 0.3)},
    }
    reference = {
        **REFERENCE,
        "errors": {**REFERENCE["errors"], "speckle_noise": dict.fromkeys(SEVERITIES, 0.6)},
    }
    result = corruption_error(model, reference)
    assert result["ce"] == pytest.approx({"fog": 80.0, "contrast": 50.0, "speckle_noise": 50.0})
    assert result["mCE"] == pytest.approx(65.0)  # fog and contrast only
    assert result["validation_mCE"] == pytest.approx(50.0)
    assert result["validation_corruptions"] == ["speckle_noise"]
    assert math.isnan(corruption_error(MODEL, REFERENCE)["validation_mCE"])
