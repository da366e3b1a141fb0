"""tfaux: image classifiers trained with auxiliary tasks and robust-training loops.

Importing tfaux has no side effects: no device settings, downloads or logging configuration.
"""

from tfaux.aux import (
    CoarseTask,
    DenoiseTask,
    FourierTask,
    ProjectionTask,
    ReconTask,
    create_task,
    fourier_target,
    list_tasks,
)
from tfaux.models import build, create_backbone, list_backbones, primary_classifier
from tfaux.training import AuxModel

__version__ = "0.1.0"

__all__ = [
    "AuxModel",
    "CoarseTask",
    "DenoiseTask",
    "FourierTask",
    "ProjectionTask",
    "ReconTask",
    "build",
    "create_backbone",
    "create_task",
    "fourier_target",
    "list_backbones",
    "list_tasks",
    "primary_classifier",
]
