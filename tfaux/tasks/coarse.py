"""Coarse-label task: a second classifier over a label hierarchy (seed 002's supervised multitask).

CIFAR-100 brings its 20 superclasses (TFDS `coarse_label`). Fashion-MNIST has no hierarchy, so
`COARSE_GROUPS` defines one: garments grouped by what they are worn as. The grouping puts the
classes a Fashion-MNIST classifier confuses most (T-shirt/top, pullover, shirt; coat and
dress) in the same group, as CIFAR-100's superclasses group visually similar fine classes, so the
coarse task asks for the features the fine task needs first and lets the fine head separate
within a group. Being this task's design rather than a fact of the data, a grouping lives here,
keyed by a name in the dataset registry (`tfaux.data.dataset_spec`), which a test holds it to.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tfaux.data.sources import dataset_spec, list_datasets
from tfaux.tasks.base import AuxTask, register_task

# Fashion-MNIST classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
# 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.
COARSE_GROUPS: dict[str, dict[str, tuple[int, ...]]] = {
    "fashion_mnist": {
        "tops": (0, 2, 6),
        "bottoms": (1,),
        "dresses and coats": (3, 4),
        "footwear": (5, 7, 9),
        "bags": (8,),
    },
}


def label_map(groups: dict[str, tuple[int, ...]], num_classes: int) -> tuple[int, ...]:
    """fine label → coarse label, checking that every fine class is in exactly one group."""
    owner: dict[int, int] = {}
    for coarse, members in enumerate(groups.values()):
        for fine in members:
            if fine in owner or not 0 <= fine < num_classes:
                raise ValueError(
                    f"Expected each fine class 0..{num_classes - 1} in exactly one group. "
                    f"Received: class {fine} in {list(groups)[coarse]!r}"
                )
            owner[fine] = coarse
    missing = sorted(set(range(num_classes)) - set(owner))
    if missing:
        raise ValueError(f"Expected every fine class in a group. Missing: {missing}")
    return tuple(owner[fine] for fine in range(num_classes))


@register_task
class CoarseTask(AuxTask):
    """Coarse-label logits from the pooled features, trained with cross-entropy.

    The target is the dataset's own coarse label when the labels are a dict with
    "coarse_label" (CIFAR-100), else the fine label mapped through `fine_to_coarse`.

    Args:
        weight: λ of the coarse term.
        num_coarse: number of coarse classes (the head's width).
        fine_to_coarse: coarse label of each fine label; None when the data brings its own.
    """

    name = "coarse"
    coarse_labels = True

    def __init__(
        self,
        weight: float = 0.01,
        num_coarse: int = 2,
        fine_to_coarse: tuple[int, ...] | None = None,
    ):
        super().__init__(weight)
        if num_coarse < 2:
            raise ValueError(f"Expected num_coarse >= 2. Received: num_coarse={num_coarse}")
        if fine_to_coarse is not None and not set(fine_to_coarse) <= set(range(num_coarse)):
            raise ValueError(
                f"Expected coarse labels in 0..{num_coarse - 1}. "
                f"Received: fine_to_coarse={fine_to_coarse}"
            )
        self.num_coarse = int(num_coarse)
        self.fine_to_coarse = None if fine_to_coarse is None else tuple(fine_to_coarse)
        self._cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @classmethod
    def check_dataset(cls, dataset: str) -> None:
        check_hierarchy(dataset)

    @classmethod
    def options(cls, info) -> dict:
        """The dataset's own coarse labels (CIFAR-100), or its `COARSE_GROUPS` hierarchy."""
        return coarse_options(info.name, info.num_classes, info.coarse_names)

    def head(self, features, *, images, stride, norm=None):
        x = layers.GlobalAveragePooling2D(name=f"{self.name}_pool")(features)
        return layers.Dense(self.num_coarse, name=self.name, dtype="float32")(x)  # float32 logits

    def target(self, x, y):
        if isinstance(y, dict) and "coarse_label" in y:
            return y["coarse_label"]
        if self.fine_to_coarse is None:
            raise ValueError(
                "Expected coarse labels in the data or a fine_to_coarse map. Received neither"
            )
        fine = y["label"] if isinstance(y, dict) else y
        return tf.gather(tf.constant(self.fine_to_coarse, tf.int64), fine)

    def loss(self, target, prediction):
        return self._cross_entropy(target, prediction)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_coarse": self.num_coarse,
            "fine_to_coarse": None if self.fine_to_coarse is None else list(self.fine_to_coarse),
        }


def coarse_options(dataset: str, num_classes: int, coarse_names=None) -> dict:
    """`CoarseTask` arguments for a dataset: its own coarse labels, or a `COARSE_GROUPS` map."""
    if coarse_names:
        return {"num_coarse": len(coarse_names)}
    if dataset not in COARSE_GROUPS:
        check_hierarchy(dataset)  # no hierarchy at all: the error names the datasets with one
        raise ValueError(
            f"Expected {dataset!r} loaded with its own coarse labels (coarse=True). "
            "Received: coarse_names=None"
        )
    groups = COARSE_GROUPS[dataset]
    return {"num_coarse": len(groups), "fine_to_coarse": label_map(groups, num_classes)}


def check_hierarchy(dataset: str, has_coarse_labels: bool | None = None) -> None:
    """Raises unless the dataset brings coarse labels or has a grouping in `COARSE_GROUPS`.

    Args:
        dataset: a name from `tfaux.data.list_datasets()`.
        has_coarse_labels: whether the dataset brings coarse labels; None asks its `DatasetSpec`.
    """
    if has_coarse_labels is None:
        has_coarse_labels = dataset_spec(dataset).coarse_labels
    if has_coarse_labels or dataset in COARSE_GROUPS:
        return
    with_labels = [name for name in list_datasets() if dataset_spec(name).coarse_labels]
    raise ValueError(
        f"Expected a dataset with coarse labels ({', '.join(with_labels)}) or a grouping in "
        f"tfaux.tasks.coarse.COARSE_GROUPS ({', '.join(COARSE_GROUPS)}) for the coarse task. "
        f"Received: dataset={dataset!r}"
    )
