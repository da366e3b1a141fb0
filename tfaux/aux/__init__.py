"""Auxiliary tasks: each is one small object (name, λ, head or front end, target, loss)."""

from tfaux.aux.base import AuxTask, check_task, create_task, list_tasks, register_task
from tfaux.aux.coarse import COARSE_GROUPS, CoarseTask
from tfaux.aux.contrastive import ProjectionTask, nt_xent
from tfaux.aux.denoise import DenoiseTask
from tfaux.aux.fourier import FourierTask, fourier_target
from tfaux.aux.recon import ReconTask
from tfaux.aux.weighting import (
    FixedWeighting,
    GradNorm,
    UncertaintyWeighting,
    create_weighting,
    list_weightings,
    shared_kernel,
)

__all__ = [
    "COARSE_GROUPS",
    "AuxTask",
    "CoarseTask",
    "DenoiseTask",
    "FixedWeighting",
    "FourierTask",
    "GradNorm",
    "ProjectionTask",
    "ReconTask",
    "UncertaintyWeighting",
    "check_task",
    "create_task",
    "create_weighting",
    "fourier_target",
    "list_tasks",
    "list_weightings",
    "nt_xent",
    "register_task",
    "shared_kernel",
]
