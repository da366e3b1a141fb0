"""Auxiliary tasks: each is one small object (name, λ, head or front end, target, loss)."""

from tfaux.tasks.base import AuxTask, check_task, create_task, list_tasks, register_task
from tfaux.tasks.coarse import COARSE_GROUPS, CoarseTask
from tfaux.tasks.contrastive import ProjectionTask, nt_xent
from tfaux.tasks.denoise import DenoiseTask
from tfaux.tasks.fourier import FourierTask, fourier_target
from tfaux.tasks.recon import ReconTask

__all__ = [
    "COARSE_GROUPS",
    "AuxTask",
    "CoarseTask",
    "DenoiseTask",
    "FourierTask",
    "ProjectionTask",
    "ReconTask",
    "check_task",
    "create_task",
    "fourier_target",
    "list_tasks",
    "nt_xent",
    "register_task",
]
