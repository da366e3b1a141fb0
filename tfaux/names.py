"""One way to reject bad input: say what was expected and what was received, and for an unknown
name suggest the closest ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name(kind: str, name: str, choices: Iterable[str], cutoff: float = 0.5) -> ValueError:
    """A `ValueError` "Unknown <kind> 'x'. Did you mean 'y'? Available: ...".

    Example:
        if name not in _BACKBONES:
            raise unknown_name("backbone", name, _BACKBONES)
    """
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name), choices, n=3, cutoff=cutoff)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Available: {', '.join(choices)}.")


def require(condition: bool, expected: str, **received) -> None:
    """Raises `ValueError("Expected <expected>. Received: k=v, ...")` unless `condition`: every
    rejected setting says what was expected and what it got, in one line."""
    if not condition:
        shown = ", ".join(f"{k}={v!r}" for k, v in received.items())
        raise ValueError(f"Expected {expected}. Received: {shown}")


def count(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1: "1 file", "3 files"."""
    return f"{n} {noun}{'s' * (n != 1)}"
