"""One way to reject an unknown name: say what was asked for and suggest the closest names."""

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
