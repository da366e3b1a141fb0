"""One worker of the kill-and-restart test in tests/e2e/test_multi_worker.py:
`python -m tests.e2e.multi_worker_resume_main SCRATCH VICTIM [--set key=value ...] --runs-dir DIR`.

Runs a recipe as `recipes/run.py` does (`tfaux.runner.run`), with one more callback, `DeltaProbe`:
it appends the checksum of this worker's δ at the start and at the end of every epoch to
SCRATCH/worker-<index>.jsonl (the test's channel, not the run's). The first process of worker
VICTIM stops after the first step of the second epoch and waits there to be killed: after the
first epoch's backup, in the middle of an epoch. Started again, the same command runs through.
"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from tfaux.distribute import create_strategy  # imports TensorFlow without running an op

PAUSE_SECONDS = 600  # far beyond the test's timeout: the test kills the paused worker


def delta_probe(scratch: Path, index: int, victim: bool):
    import keras
    import numpy as np

    class DeltaProbe(keras.callbacks.Callback):
        """Records this worker's own δ (its local replicas'; no collective)."""

        def __init__(self):
            super().__init__()
            started = scratch / f"started-{index}"
            self.first_process = not started.exists()
            started.write_text(str(os.getpid()))
            self.epoch = 0

        def _record(self, event: str, epoch: int) -> None:
            delta = self.model._delta  # FreeATModel's per-replica δ
            local = [np.asarray(v) for v in getattr(delta, "values", [delta])]
            digest = hashlib.sha256(b"".join(v.tobytes() for v in local)).hexdigest()
            line = {
                "pid": os.getpid(),
                "event": event,
                "epoch": epoch,
                "sha256": digest,
                "abs_sum": float(sum(np.abs(v).sum() for v in local)),
            }
            with open(scratch / f"worker-{index}.jsonl", "a") as file:
                file.write(json.dumps(line) + "\n")

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self._record("begin", epoch)  # after `RunBackup` restored δ (it runs last)

        def on_epoch_end(self, epoch, logs=None):
            self._record("end", epoch)  # what `RunBackup` saves next (it runs last)

        def on_train_batch_end(self, batch, logs=None):
            if victim and self.first_process and self.epoch == 1 and batch == 0:
                (scratch / f"paused-{index}").write_text(str(os.getpid()))
                time.sleep(PAUSE_SECONDS)

    return DeltaProbe()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scratch", type=Path)
    parser.add_argument("victim", type=int)
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    parser.add_argument("--runs-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    # The strategy comes first: it must configure collectives before TensorFlow starts.
    strategy = create_strategy("multi_worker")

    from tests.helpers import RECIPES
    from tfaux.cli import DEFAULT_RECIPE, discover, resolve
    from tfaux.runner import run

    index = strategy.cluster_resolver.task_id
    recipe = resolve(DEFAULT_RECIPE, args.assignments, discover(RECIPES))
    probe = delta_probe(args.scratch, index, victim=index == args.victim)
    run(recipe, runs_dir=args.runs_dir, progress=False, callbacks=(probe,))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
