"""The auxiliary-task protocol and its registry.

A task adds one named output to the model and one weighted term to the loss. The train step only
ever calls `target` and `loss`, so a new task never touches it (DESIGN.md, "Aux tasks").
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfaux.registry import Registry

TASKS: Registry[type] = Registry("aux task", packages=("tfaux.tasks",))


class AuxTask:
    """Base class of auxiliary tasks.

    Subclasses set `name` (the model output key) and implement `head`, `target` and `loss`.

    Args:
        weight: λ, the weight of this task's loss in `CE + Σ λ_i · aux_i`; must be ≥ 0.
    """

    name: str = ""
    # Views of each image the task needs per step: 2 for contrastive tasks (the model then
    # trains on two augmented views of every image, see `AuxModel.augment`).
    views: int = 1
    # Whether `target` is computed from the images before augmentation (the denoiser).
    target_originals: bool = False
    # Whether the task is a front end: an image-to-image network in front of the backbone
    # (`front_end`), rather than a head on its features (`head`).
    front: bool = False
    # Whether the task trains on the dataset's own coarse labels when it has them (CIFAR-100's
    # superclasses): the data pipeline then yields {"label", "coarse_label"}.
    coarse_labels: bool = False
    # Whether `report` adds results to a trained variant's evaluation.
    reports: bool = False

    def __init__(self, weight: float = 0.01):
        if not weight >= 0:
            raise ValueError(f"Expected an aux-task weight λ >= 0. Received: weight={weight}")
        self.weight = float(weight)

    def head(self, features, *, images, stride: int, norm=None):
        """Builds this task's head on the backbone `features`; returns the output tensor.

        Args:
            features: the backbone's feature map.
            images: the model's input tensor (for the output shape).
            stride: the backbone's feature stride 2^n.
            norm: the model's norm factory, so the head normalizes like the backbone (e.g.
                synchronized across replicas).
        """
        raise NotImplementedError

    def front_end(self, images):
        """Builds this task's image-to-image front end; returns its output image tensor."""
        raise NotImplementedError

    def target(self, x: tf.Tensor, y) -> tf.Tensor:
        """Target of the head for clean images `x` in [0, 1] and labels `y`."""
        raise NotImplementedError

    def loss(self, target: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
        """Scalar loss; use `keras.losses` objects so it is scaled per replica."""
        raise NotImplementedError

    # === Data and evaluation: what the runner asks of a task ===
    @classmethod
    def check_dataset(cls, dataset: str) -> None:
        """Raises ValueError when the task cannot train on `dataset` (before any data loads)."""

    @classmethod
    def options(cls, info) -> dict:
        """Constructor arguments that depend on the data (`tfaux.data.DataInfo`)."""
        return {}

    def report(self, model, x, y, *, recipe, flip: bool) -> dict:
        """Results of a trained `model` with this task on test images `x`, `y` (when `reports`)."""
        return {}

    def get_config(self) -> dict:
        return {"weight": self.weight}

    @classmethod
    def from_config(cls, config: dict) -> AuxTask:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"


def register_task(cls: type[AuxTask]) -> type[AuxTask]:
    """Class decorator: makes a task creatable by name and serializable with the model."""
    if not cls.name:
        raise ValueError(f"Expected {cls.__name__}.name to be set. Received: name={cls.name!r}")
    TASKS.register(cls)
    return keras.saving.register_keras_serializable(package="tfaux")(cls)


def list_tasks() -> list[str]:
    """Names of the registered auxiliary tasks."""
    return TASKS.names()


def check_task(name: str) -> None:
    """Raises ValueError for an unknown task name, suggesting the closest."""
    TASKS.get(name)


def task_class(name: str) -> type[AuxTask]:
    """The class registered as `name` (its declared `views`, `front`, ...)."""
    return TASKS.get(name)


def create_task(name: str, weight: float = 0.01, **kwargs) -> AuxTask:
    """Creates the task registered as `name`; unknown names suggest the closest."""
    return TASKS.get(name)(weight=weight, **kwargs)
