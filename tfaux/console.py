"""A console without TensorFlow's start-up chatter, for the command line, tests and benchmarks.

TensorFlow 2.21 prints its CUDA probe and oneDNN notices through C++ logging before
`TF_CPP_MIN_LOG_LEVEL` can take effect ("All log messages before absl::InitializeLog() is called
are written to STDERR"), so no environment variable hides them. Nothing a CPU user can act on.
This module imports nothing heavy: call `quiet_tensorflow_start()` before anything imports
TensorFlow. The library itself never calls it.
"""

from __future__ import annotations

import contextlib
import os
import sys


def quiet_tensorflow_start() -> None:
    """Imports TensorFlow and probes its devices with file descriptor 2 silenced.

    Errors raised while importing still surface as Python exceptions. Physical, not logical,
    devices are listed: listing those would start the runtime, after which a multi-worker
    strategy could no longer configure its collectives.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with silenced_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe prints here


@contextlib.contextmanager
def silenced_stderr():
    """File descriptor 2 pointed at /dev/null for the block: what C++ libraries print there
    (TensorFlow's start-up, libjpeg's "Improper call to JPEG library") never reaches the user.
    Python exceptions still propagate."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
