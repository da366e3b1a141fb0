"""Seed 004's perturbed validation sets: accuracy under an augmentation, and under FGSM
transferred from the baseline model followed by the augmentation.

Volkovskyi et al. built "geometrically augmented" and "FGSM augmented" validation sets, the
latter from the *baseline* model's gradients plus geometric noise: a transfer attack, weaker than
a white-box one. Both are reported as they define them; the white-box attacks and their sanity
checks stay in the robustness report beside them.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfaux.attacks.fast_gradient import FGSM
from tfaux.attacks.protocol import AttackedModel
from tfaux.data.augment import get_augmentation

BATCH = 256


def augmented_accuracy(
    classifier: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    augmentation: str,
    *,
    seed: int = 0,
    flip: bool = True,
    surrogate: keras.Model | None = None,
    eps: float = 0.1,
    return_correct: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """{"augmented": acc on augment(x)} plus {"fgsm_augmented": acc on augment(FGSM_surrogate(x))}
    when a `surrogate` (the baseline) is given. The same `seed` draws the same augmentations for
    every model, so the sets are the same for all of them. With `return_correct`, also each
    image's correctness under the same keys (bool[N], whose means are the accuracies), for
    paired tests between models: (accuracies, correct)."""
    if len(x) != len(y):
        raise ValueError(f"Expected as many labels as images. Received: {len(x)} and {len(y)}")
    augment = get_augmentation(augmentation)
    model = AttackedModel(classifier)
    fgsm = None if surrogate is None else FGSM(surrogate)
    hits = {"augmented": [], **({} if fgsm is None else {"fgsm_augmented": []})}
    for start in range(0, len(x), BATCH):
        xb, yb = x[start : start + BATCH], y[start : start + BATCH]
        op_seed = tf.constant([seed, start], tf.int32)
        hits["augmented"].append(_correct(model, augment(tf.constant(xb), op_seed, flip=flip), yb))
        if fgsm is not None:
            x_adv = fgsm(xb, yb, eps=float(eps))
            hits["fgsm_augmented"].append(_correct(model, augment(x_adv, op_seed, flip=flip), yb))
    correct = {key: np.concatenate(value) for key, value in hits.items()}
    accuracies = {key: float(np.mean(value)) for key, value in correct.items()}
    return (accuracies, correct) if return_correct else accuracies


def _correct(model: AttackedModel, x, y) -> np.ndarray:
    return np.argmax(model.predict(x).numpy(), axis=1) == y
