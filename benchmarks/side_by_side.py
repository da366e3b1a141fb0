"""What the side-by-side benchmarks share: a recipe from the command line (its default or quick
sizes, then `--set`), and rounds that alternate the order of the rows, so that a drift in the
machine's speed falls on every row alike."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

from tfaux.cli import discover
from tfaux.config import Recipe
from tfaux.overrides import apply_overrides

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def recipe_parser(description: str, variant: str) -> argparse.ArgumentParser:
    """--recipe, --variant, --set, --rounds and --quick."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--recipe", default="seed000_ft")
    parser.add_argument("--variant", default=variant)
    parser.add_argument("--set", action="append", default=[], dest="assignments")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    return parser


def recipe_of(
    args: argparse.Namespace, default: Sequence[str], quick: Sequence[str]
) -> tuple[Recipe, list[str]]:
    """The named recipe with the default (or quick) sizes and then `--set` applied, and those
    settings, for the report's header."""
    settings = [*(quick if args.quick else default), *args.assignments]
    return apply_overrides(discover(RECIPES)[args.recipe][0], settings), settings


def alternating(names: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, row) in the rows' order in even rounds and backwards in odd ones."""
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            yield round_, name
