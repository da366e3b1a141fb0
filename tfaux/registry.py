"""One registry type for every plug-in kind (backbones, tasks, loops, datasets, weightings,
augmentations, attacks): register under a name, look up with a closest-name error, list, and
find the plug-ins of a package by importing its modules, so a new one is one new file."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, TypeVar

from tfaux.names import unknown_name

T = TypeVar("T")


@functools.cache
def import_submodules(package: str) -> None:
    """Imports every module of `package` (e.g. "tfaux.training.loop"), running its decorators;
    once per process: registries ask on every lookup."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")


class Registry(Generic[T]):
    """Named plug-ins of one kind.

    Args:
        kind: what a plug-in is, for errors ("backbone", "training loop").
        packages: packages whose modules register plug-ins when imported; imported on the
            first lookup, so listing and lookup see every plug-in file without a module list.

    Example:
        BACKBONES = Registry[Callable]("backbone", packages=("tfaux.models.backbones",))

        @BACKBONES.register
        def resnet8(input_shape, width=1.0, norm=None): ...

        BACKBONES.get("resnet8")
    """

    def __init__(self, kind: str, packages: tuple[str, ...] = ()):
        self.kind = kind
        self.packages = packages
        self._entries: dict[str, T] = {}

    def register(self, entry: T | None = None, *, name: str | None = None):
        """Registers `entry` under `name` (default: its `name` attribute if it is a string, else
        its `__name__`); usable as `@registry.register` or `@registry.register(name=...)`.
        Registering another object under a taken name is an error; the same one again is not
        (a module imported twice)."""

        def add(value: T) -> T:
            key = name or _default_name(value)
            if not key:
                raise ValueError(f"Expected a name for the {self.kind} {value!r}.")
            if self._entries.get(key, value) is not value:
                self.check_free(key)
            self._entries[key] = value
            return value

        return add(entry) if entry is not None else add

    def check_free(self, name: str) -> None:
        """Raises ValueError if `name` is taken: for decorators that build the entry later and
        should fail where the name is written."""
        if name in self._entries:
            raise ValueError(
                f"The {self.kind} {name!r} is already registered "
                f"(registered: {', '.join(sorted(self._entries))})."
            )

    def unregister(self, name: str) -> T:
        """Removes the plug-in registered as `name` and returns it; an unknown name suggests the
        closest ones."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Undoes, on leaving the `with` block, every registration and removal made in it: a
        test or a notebook can add a plug-in and leave no trace.

        The packages are imported first, so the plug-ins they register outlive the block.

        Example:
            with ATTACKS.scoped():
                ATTACKS.register(UniformNoise)
                ...
        """
        self.discover()
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries.clear()
            self._entries.update(saved)

    def get(self, name: str) -> T:
        """The plug-in registered as `name`; an unknown name suggests the closest ones."""
        self.discover()
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        """The registered names matching a shell-style `pattern`, sorted."""
        self.discover()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def discover(self) -> None:
        for package in self.packages:
            import_submodules(package)

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def _default_name(value: object) -> str | None:
    own = getattr(value, "name", None)
    if isinstance(own, str) and own:
        return own
    return getattr(value, "__name__", None)
