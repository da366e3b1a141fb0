"""Registries find their plug-ins by importing every module of a package: a new backbone, aux
task or training loop is one new file, with no list of modules to update."""

from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def import_submodules(package: str) -> None:
    """Imports every module of `package` (e.g. "tfaux.training"), running its decorators; once
    per process: registries ask on every lookup (each recipe validation looks up its loops)."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")
