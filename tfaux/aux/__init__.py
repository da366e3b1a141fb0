"""Auxiliary tasks: each is one small object (name, λ, head or front end, target, loss)."""

from tfaux.aux.base import AuxTask, check_task, create_task, list_tasks, register_task
from tfaux.aux.coarse import COARSE_GROUPS, CoarseTask
from tfaux.aux.contrastive import ProjectionTask, nt_xent
from tfaux.aux.denoise import DenoiseTask
from tfaux.aux.fourier import FourierTask, fourier_target
from tfaux.aux.recon import ReconTask

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
