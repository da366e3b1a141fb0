"""The package's layers only point down, and the recipe listing never loads TensorFlow.

Every import of a tfaux module, in-function ones included, must go to a module of its own layer
or a lower one; a new module must be given a layer here. docs/decisions.md shows the layout.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tfaux"

# Lowest first. A module belongs to the longest prefix listed.
LAYERS = [
    # Tools that know nothing of tfaux: names and errors, registries, commits, console, progress,
    # statistics and table cells.
    (
        "tfaux",
        "tfaux.names",
        "tfaux.registry",
        "tfaux.provenance",
        "tfaux.console",
        "tfaux.progress",
        "tfaux.statistics",
        "tfaux.cells",
    ),
    ("tfaux.config", "tfaux.overrides", "tfaux.results"),  # the schemas; --set key=value on one
    ("tfaux.variant", "tfaux.precision", "tfaux.distribute"),  # read a recipe
    ("tfaux.data",),
    (
        "tfaux.models",
        "tfaux.tasks",
        "tfaux.weighting",
        "tfaux.attacks",
        "tfaux.evaluate",
        "tfaux.export",
    ),
    ("tfaux.training",),
    ("tfaux.experiment",),
    (
        "tfaux.runner",
        "tfaux.running",
        "tfaux.tune",
        "tfaux.cli",
        "tfaux.deploy",
        "tfaux.reporting",
        "tfaux.claims",
        "tfaux.evidence",
        "tfaux.benchmark",
    ),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best, layer = "", None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > len(best):
                best, layer = prefix, index
    if layer is None or (best == "tfaux" and module != "tfaux"):
        raise AssertionError(f"{module} has no layer in tests/unit/test_layers.py: give it one")
    return layer


def _imports(path: Path) -> set[str]:
    """tfaux modules `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tfaux")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfaux"):
            found.add(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_every_import_points_to_the_same_layer_or_below(path):
    module = _module_name(path)
    own = _layer(module)
    upward = sorted(target for target in _imports(path) if _layer(target) > own)
    assert not upward, f"{module} (layer {own}) imports a higher layer: {upward}"


def test_every_module_has_a_layer():
    for path in MODULES:
        _layer(_module_name(path))


def test_config_depends_on_nothing_else_in_tfaux():
    assert _imports(PACKAGE / "config.py") <= {"tfaux.names"}


@pytest.mark.parametrize("arguments", [["--list"], ["seed001_compare", "--keys"]])
def test_listing_recipes_and_keys_never_imports_tensorflow(arguments):
    recipes = PACKAGE.parent / "recipes"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tfaux.cli import main\n"
        f"assert main({arguments!r}, recipes_dir=Path({str(recipes)!r})) == 0\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()  # it did list something
