"""Run a tfaux recipe: `python recipes/run.py [NAME] [--set key=value ...]`; see --help."""

import os
import sys
from pathlib import Path

# The command line is the only place that touches the environment: quiet TensorFlow's C++ logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfaux.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], recipes_dir=Path(__file__).resolve().parent))
