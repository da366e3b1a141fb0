"""Clean and FGSM accuracy over a dataset, batch by batch, with a progress bar."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from tfaux import attacks
from tfaux.training.aux_model import labels_of


def robustness(
    model: keras.Model,
    dataset: tf.data.Dataset,
    *,
    fgsm_eps: Sequence[float] = (0.1,),
    progress: bool = True,
    desc: str = "evaluate",
) -> dict:
    """Accuracy of the primary classifier on clean and FGSM-perturbed images.

    Adversarial images are made and scored one batch at a time, so memory does not grow with the
    dataset.

    Args:
        model: a dict-output model (uses "logits") or a plain classifier.
        dataset: batches of (images in [0, 1], labels).
        fgsm_eps: L∞ budgets of the FGSM attacks, in pixel units.
        progress: show a tqdm bar.
        desc: label of the bar.

    Returns:
        {"clean": acc, "fgsm": {"0.1": acc, ...}, "num_examples": n}.
    """
    eps_list = [attacks.check_eps(e) for e in fgsm_eps]
    predict = tf.function(attacks.logits_fn(model), reduce_retracing=True)
    fgsm = attacks.fgsm(model)
    correct = {"clean": 0, **{e: 0 for e in eps_list}}
    total = 0
    for x, y in tqdm(dataset, desc=desc, unit="batch", disable=not progress, leave=False):
        y = labels_of(y)
        correct["clean"] += _num_correct(predict(x), y)
        for eps in eps_list:
            correct[eps] += _num_correct(predict(fgsm(x, y, eps)), y)
        total += int(y.shape[0])
    if total == 0:
        raise ValueError("Expected a non-empty dataset. Received: a dataset with no examples.")
    return {
        "clean": correct["clean"] / total,
        "fgsm": {f"{eps:g}": correct[eps] / total for eps in eps_list},
        "num_examples": total,
    }


def _num_correct(logits: tf.Tensor, labels: tf.Tensor) -> int:
    return int(np.sum(np.argmax(logits.numpy(), axis=-1) == labels.numpy()))
