"""Run a tfaux recipe: `python recipes/run.py [NAME] [--set key=value ...]`; see --help."""

import os
import sys
from pathlib import Path


def _quiet_tensorflow_start() -> None:
    """Hides TensorFlow's start-up chatter (CUDA probes, oneDNN notices) on a CPU machine.

    The C++ runtime prints it to file descriptor 2 before its logging can be configured, so
    TF_CPP_MIN_LOG_LEVEL alone does not help; errors raised while importing still show.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        # The CUDA probe prints here; physical, not logical, devices: listing those starts the
        # runtime, after which a multi-worker strategy can no longer configure its collectives.
        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if __name__ == "__main__":
    _quiet_tensorflow_start()
    from tfaux.cli import main

    sys.exit(main(sys.argv[1:], recipes_dir=Path(__file__).resolve().parent))
