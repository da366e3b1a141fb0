"""Which code produced a result: every results file names the commit it ran at, so a table can
be traced to its code, and a run started from a pinned worktree stays tied to it."""

from __future__ import annotations

import subprocess
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def code_commit() -> str | None:
    """The git commit of the tfaux checkout that runs, with "+dirty" when tracked files differ
    from it; None outside a git checkout (an installed wheel) or without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(_PACKAGE), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
