"""`--set key=value` overrides: each value parsed by its recipe field's type, applied at once.

The schema is `tfaux.config`; this module only turns the command line's strings into typed
changes of a `Recipe`, so that `--keys` and a bad `--set` need neither TensorFlow nor registries.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing

from tfaux.config import Recipe, with_testable_claims


def apply_overrides(recipe: Recipe, assignments: list[str]) -> Recipe:
    """Returns `recipe` with `key=value` assignments applied, each parsed by its field's type.

    Keys are dotted paths (`training.epochs=3`); tuples are comma-separated
    (`variants=none,fourier`); `none` sets an optional field to None. All assignments are applied
    at once, then validated (a later one for the same key wins), so their order never matters:
    `--set monitor.robust_examples=0 --set training.select=last` is valid either way round.
    """
    paths, updates = field_paths(recipe), {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"Expected --set key=value. Received: {assignment!r}")
        key = key.strip()
        if key not in paths:
            raise _unknown_key(key, recipe)
        updates[key] = text.strip()
    # Claims are checked against the final recipe: those it can no longer test (a variant left
    # out with --set variants=...) are dropped, and the CLI says how many. On other data (your
    # own images, another dataset) none applies: a paper's numbers are about its data.
    updated = _with_updates(dataclasses.replace(recipe, claims=()), updates)
    if updated.data.dataset != recipe.data.dataset:
        return updated
    return with_testable_claims(updated, recipe.claims)


def field_paths(obj, prefix: str = "") -> list[str]:
    """All settable dotted keys of a (nested) config dataclass."""
    paths = []
    for f in dataclasses.fields(obj):
        if f.name == "claims":  # the paper's, declared in the recipe file
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            paths += field_paths(value, f"{prefix}{f.name}.")
        else:
            paths.append(f"{prefix}{f.name}")
    return paths


def _with_updates(obj, updates: dict[str, str], prefix: str = ""):
    """`obj` rebuilt once with every update under `prefix` parsed and applied (sections first,
    so each dataclass validates the final values together)."""
    changes = {}
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        path, value = f"{prefix}{f.name}", getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            if any(key.startswith(f"{path}.") for key in updates):
                changes[f.name] = _with_updates(value, updates, f"{path}.")
        elif path in updates:
            changes[f.name] = parse_value(updates[path], hints[f.name], path)
    return dataclasses.replace(obj, **changes) if changes else obj


def _unknown_key(key: str, recipe) -> ValueError:
    paths = field_paths(recipe)
    close = difflib.get_close_matches(key, paths, n=3, cutoff=0.8)
    if not close:  # a right leaf under a wrong section: "trainig.epochs", "epochs"
        leaf = key.split(".")[-1]
        close = [p for p in paths if p.split(".")[-1] == leaf]
    if close:
        return ValueError(
            f"Unknown recipe key {key!r}. Did you mean {', '.join(close)}? "
            "See --keys for every key."
        )
    return ValueError(f"Unknown recipe key {key!r}. Keys: {', '.join(paths)}.")


def parse_value(text: str, hint, key: str = "value"):
    """Parses `text` as type `hint` (int, float, bool, str, X | None, tuple[X, ...])."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", ""):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return parse_value(text, inner, key)
    if origin is tuple:
        return tuple(parse_value(t.strip(), args[0], key) for t in text.split(",") if t.strip())
    if hint is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"Expected {key} to be true or false. Received: {key}={text!r}")
    try:
        return hint(text)
    except ValueError:
        raise ValueError(
            f"Expected {key} to be of type {hint.__name__}. Received: {key}={text!r}"
        ) from None
