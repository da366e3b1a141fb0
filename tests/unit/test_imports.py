"""Every tfaux module imports on its own: no import cycle hides behind the package's own order.

`tfaux/__init__.py` loads lazily, so any module can be the first one imported (xdist imports
the module of a warning's category in its controller, a user `import tfaux.training`).
"""

import subprocess
import sys

FRESH_IMPORTS = """
import importlib, pkgutil, sys
import tensorflow  # loaded once; only tfaux's modules are imported afresh
import tfaux
names = [m.name for m in pkgutil.walk_packages(tfaux.__path__, "tfaux.")]
for name in names:
    for loaded in [m for m in sys.modules if m == "tfaux" or m.startswith("tfaux.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as error:
        print(f"{name}: {error}")
print(len(names), "modules")
"""


def test_every_module_imports_first_without_a_cycle():
    result = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORTS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    *failures, summary = result.stdout.strip().splitlines()
    assert failures == [] and int(summary.split()[0]) > 40


def test_import_tfaux_is_light_and_its_names_load_on_first_use():
    code = (
        "import sys, tfaux\n"
        "assert 'tensorflow' not in sys.modules, 'import tfaux imported TensorFlow'\n"
        "assert callable(tfaux.data.load) and callable(tfaux.build)\n"
        "assert set(tfaux.__all__) <= set(dir(tfaux))\n"
        "try:\n"
        "    tfaux.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "module 'tfaux' has no attribute 'no_such_name'"
