"""tfaux: image classifiers trained with auxiliary tasks and robust-training loops.

Importing tfaux has no side effects: no device settings, downloads or logging configuration.
The public names below load on first use (PEP 562), so `tfaux.console` can quiet TensorFlow's
start-up before anything imports TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SOURCES = {
    "AuxModel": "tfaux.training",
    "Loop": "tfaux.training",
    "CoarseTask": "tfaux.tasks",
    "DenoiseTask": "tfaux.tasks",
    "FourierTask": "tfaux.tasks",
    "ProjectionTask": "tfaux.tasks",
    "ReconTask": "tfaux.tasks",
    "build": "tfaux.models",
    "create_backbone": "tfaux.models",
    "create_loop": "tfaux.training",
    "create_task": "tfaux.tasks",
    "fourier_target": "tfaux.tasks",
    "list_backbones": "tfaux.models",
    "list_loops": "tfaux.training",
    "list_tasks": "tfaux.tasks",
    "primary_classifier": "tfaux.models",
    "register_backbone": "tfaux.models",
    "register_loop": "tfaux.training",
    "register_task": "tfaux.tasks",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
    else:  # a subpackage or module: `tfaux.data.load(...)` after `import tfaux`
        try:
            value = importlib.import_module(f"tfaux.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"tfaux.{name}":
                raise
            raise AttributeError(f"module 'tfaux' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted([*globals(), *_SOURCES])
