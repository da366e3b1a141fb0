"""Every results file names the commit its code ran at."""

import subprocess
from pathlib import Path

from tfaux import provenance
from tfaux.reporting import provenance_lines


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_the_commit_is_git_s_head_and_says_when_tracked_files_changed(tmp_path, monkeypatch):
    package = tmp_path / "tfaux"
    package.mkdir()
    (package / "module.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    monkeypatch.setattr(provenance, "_PACKAGE", package)
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert provenance.code_commit() == head
    (package / "notes.txt").write_text("untracked files do not change the code\n")
    assert provenance.code_commit() == head
    (package / "module.py").write_text("x = 2\n")
    assert provenance.code_commit() == head + "+dirty"


def test_outside_a_checkout_there_is_no_commit_and_no_header_line(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_PACKAGE", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.code_commit() is None
    assert provenance_lines({"commit": None}) == []
    assert provenance_lines({"commit": "abc123"}) == ["Commit: abc123", ""]
