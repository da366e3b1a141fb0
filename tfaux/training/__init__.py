"""Training loops (train_step overrides) and paper schedules."""

from tfaux.training.aux_model import AuxModel
from tfaux.training.schedules import seed000_callbacks, seed000_optimizer

__all__ = ["AuxModel", "seed000_callbacks", "seed000_optimizer"]
