"""Auxiliary tasks: each is one small object (name, λ, head, target, loss)."""

from tfaux.aux.base import AuxTask, create_task, list_tasks, register_task
from tfaux.aux.fourier import FourierTask, fourier_target
from tfaux.aux.recon import ReconTask

__all__ = [
    "AuxTask",
    "FourierTask",
    "ReconTask",
    "create_task",
    "fourier_target",
    "list_tasks",
    "register_task",
]
