"""Where a run lives: `runs/<recipe>-<timestamp>/`, the newest unfinished run of the same config
(resumed), the newest finished one (read back by a sweep)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from tfaux.config import Recipe
from tfaux.distribute import is_chief
from tfaux.results import RunResult


def run_directory(runs_dir: Path, recipe: Recipe, fresh: bool) -> Path:
    """A new `runs/<recipe>-<timestamp>`, or the newest unfinished run of the same config.

    A multi-worker run is `runs/<recipe>-<hash of the config>` instead: every worker computes
    the same name without talking to the others (a timestamp would differ between them), and
    the same command started again finds it.
    """
    config = json.loads(json.dumps(recipe.to_dict()))  # tuples → lists, as read back from disk
    if recipe.training.strategy == "multi_worker":
        trains = json.dumps(_what_trains(config), sort_keys=True)
        digest = hashlib.sha256(trains.encode()).hexdigest()[:10]
        run_dir = runs_dir / f"{recipe.name}-{digest}"
        if (run_dir / "results.json").exists() or (fresh and run_dir.exists()):
            raise ValueError(
                f"Expected no finished multi-worker run of this recipe. Received: {run_dir} "
                "exists; delete it or pass another --runs-dir"
            )
        if is_chief():
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(config, indent=2))
        return run_dir
    if not fresh:
        for candidate in sorted(runs_dir.glob(f"{recipe.name}-*"), reverse=True):
            config_file = candidate / "config.json"
            if (
                not (candidate / "results.json").exists()
                and config_file.exists()
                and _what_trains(json.loads(config_file.read_text())) == _what_trains(config)
            ):
                return candidate
    run_dir = runs_dir / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = runs_dir / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    return run_dir


def finished_run(runs_dir: Path, recipe: Recipe) -> Path | None:
    """The newest finished run of exactly this config under `runs_dir`, if any."""
    config = _what_trains(json.loads(json.dumps(recipe.to_dict())))
    for candidate in sorted(runs_dir.glob(f"{recipe.name}-*"), reverse=True):
        if (candidate / "results.json").exists() and (
            _what_trains(json.loads((candidate / "config.json").read_text())) == config
        ):
            return candidate
    return None


def read_finished(run_dir: Path) -> RunResult:
    """A finished run as read back from its results.json (its export is not looked up)."""
    return RunResult(run_dir, json.loads((run_dir / "results.json").read_text()), None)


def _what_trains(config: dict) -> dict:
    """A recipe's config without its claims: a claim changes what is judged, not what is
    trained, so a sweep's finished runs are read back (and judged anew) after a claim is
    added or corrected, and an unfinished run resumes."""
    return {key: value for key, value in config.items() if key != "claims"}
