"""`python recipes/run.py`: run a recipe by name, with typed `--set key=value` overrides.

Bad input (unknown recipe, key, backbone, task or dataset; a wrong type; ε < 0; missing data)
prints one line saying what is wrong and what to do, and exits with status 2. Set TFAUX_DEBUG=1
to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from tfaux.config import Recipe, apply_overrides, field_paths
from tfaux.names import unknown_name

DEFAULT_RECIPE = "seed000_ft"
USAGE_ERROR = 2


def discover(recipes_dir: Path) -> dict[str, tuple[Recipe, str]]:
    """Recipes defined as `RECIPE` in the .py files of `recipes_dir`: name → (recipe, doc)."""
    found = {}
    for path in sorted(recipes_dir.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"tfaux_recipes.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        recipe = getattr(module, "RECIPE", None)
        if isinstance(recipe, Recipe):
            found[recipe.name] = (recipe, (module.__doc__ or "").strip())
    return found


def resolve(name: str, assignments: list[str], recipes: dict) -> Recipe:
    """The named recipe with overrides applied and every name in it checked up front."""
    if name not in recipes:
        raise unknown_name("recipe", name, recipes, cutoff=0.4)
    recipe = apply_overrides(recipes[name][0], assignments)
    from tfaux.runner import check_names  # imports TensorFlow: only once a recipe is chosen

    check_names(recipe)
    return recipe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python recipes/run.py",
        description="Train, evaluate and export the variants of a tfaux recipe.",
        epilog="examples:\n"
        "  python recipes/run.py                      # the default recipe (seed 000)\n"
        "  python recipes/run.py --list\n"
        "  python recipes/run.py seed000_ft --set training.epochs=2 --set data.train_size=2000\n"
        "  python recipes/run.py --keys               # every key --set accepts\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "recipe", nargs="?", default=DEFAULT_RECIPE, help=f"recipe name (default: {DEFAULT_RECIPE})"
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. training.epochs=3",
    )
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--keys", action="store_true", help="list the recipe's keys and exit")
    parser.add_argument(
        "--fresh", action="store_true", help="start a new run instead of resuming an unfinished one"
    )
    parser.add_argument("--runs-dir", default="runs", help="parent of run directories")
    parser.add_argument(
        "--savedmodels-dir", default="savedmodels", help="parent of exported SavedModels"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: list[str] | None = None, *, recipes_dir: Path) -> int:
    args = _parser().parse_args(argv)
    try:
        recipes = discover(recipes_dir)
        if args.list:
            for name, (recipe, doc) in recipes.items():
                default = " (default)" if name == DEFAULT_RECIPE else ""
                print(f"{name}{default}: {doc.splitlines()[0] if doc else recipe.description}")
            return 0
        recipe = resolve(args.recipe, args.assignments, recipes)
        if args.keys:
            print("\n".join(field_paths(recipe)))
            return 0
        from tfaux.data import DataNotFoundError
        from tfaux.runner import run

        try:
            result = run(
                recipe,
                runs_dir=args.runs_dir,
                savedmodels_dir=args.savedmodels_dir,
                fresh=args.fresh,
                progress=not args.no_progress,
            )
        except DataNotFoundError as error:
            return _fail(error)
    except (ValueError, TypeError) as error:
        return _fail(error)
    except KeyboardInterrupt:
        print(
            "interrupted: run the same command again to resume from the last backup",
            file=sys.stderr,
        )
        return 130
    print((result.run_dir / "results.md").read_text())
    print(f"run directory: {result.run_dir}")
    if result.export_dir:
        print(f"exported {result.results['best_variant']!r} to {result.export_dir}")
    return 0


def _fail(error: Exception) -> int:
    if os.environ.get("TFAUX_DEBUG"):
        raise error
    message = " ".join(str(error).split())
    print(f"error: {message}", file=sys.stderr)
    return USAGE_ERROR
