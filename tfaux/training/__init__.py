"""Training loops (train_step overrides, registered by name) and optimizer schedules."""

from tfaux.models.aux_model import AuxModel
from tfaux.training.loop import Loop, create_loop, list_loops, register_loop
from tfaux.training.schedules import adamw, plateau_callbacks, sgd_momentum

__all__ = [
    "AuxModel",
    "Loop",
    "adamw",
    "create_loop",
    "list_loops",
    "plateau_callbacks",
    "register_loop",
    "sgd_momentum",
]
