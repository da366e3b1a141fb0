"""Run a tfaux recipe: `python recipes/run.py [NAME] [--set key=value ...]`; see --help."""

import sys
from pathlib import Path

if __name__ == "__main__":
    from tfaux.console import quiet_tensorflow_start

    quiet_tensorflow_start()
    from tfaux.cli import main

    sys.exit(main(sys.argv[1:], recipes_dir=Path(__file__).resolve().parent))
