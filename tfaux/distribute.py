"""Distribution in one place: the strategy, who writes files, dataset sharding, the Keras shim.

`create_strategy("multi_worker")` reads the cluster from the `TF_CONFIG` environment variable.
Every worker runs the same program: the same model, the same `fit`, the same saves (saving and
evaluating can involve collectives, so no worker may skip them), but only the chief's files land
in the real place; the others write into temporary directories (`writable_dir`). Keras 3 does not
do this routing itself.

Example (every worker runs this; TF_CONFIG differs only in the task index):

    strategy = create_strategy("multi_worker")  # first: before TensorFlow runs any op
    with strategy.scope():
        model = build(...)
        model.compile(...)
    out = writable_dir(run_dir)
    model.fit(shard_by_data(train), callbacks=[keras.callbacks.TensorBoard(str(out / "tb"))])
    model.save_weights(out / "model.weights.h5")
    remove_worker_dirs()
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux.config import STRATEGIES
from tfaux.names import unknown_name

log = logging.getLogger("tfaux")


# Keras versions whose TensorFlow trainer fails under MultiWorkerMirroredStrategy
# (keras-team/keras#20585, tensorflow/tensorflow#72388), as (major, minor), inclusive. The lower
# bound is our oldest supported Keras; the failures were reproduced and the shim verified on
# 3.15.1. A newer Keras skips the shim, and tests/e2e/test_multi_worker.py tells whether it still
# needs it (see docs/decisions.md).
SHIM_KERAS_VERSIONS = ((3, 10), (3, 15))

_strategies: dict[str, tf.distribute.Strategy] = {}
_worker_root: Path | None = None
_shim_applied = False
_keras_patches: dict[str, tuple] = {}  # name: (owner, attribute, original, patched)


# === Strategy ===
def create_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The process's strategy of kind `name`, created once and then reused.

    Args:
        name: "default" (no distribution), "mirrored" (every local device) or "multi_worker"
            (`MultiWorkerMirroredStrategy` over the cluster in `TF_CONFIG`; the constructor
            blocks until every worker has joined, and it must run before TensorFlow executes
            any op or lists logical devices).

    Returns:
        The strategy. One per process: a second MirroredStrategy over the same devices can reuse
        collective instance keys and abort synchronized BatchNorm.

    Raises:
        ValueError: an unknown name, or a missing or malformed TF_CONFIG.
        RuntimeError: "multi_worker" requested after TensorFlow has started its runtime.
    """
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES)
    if name not in _strategies:
        if name == "multi_worker":
            _strategies[name] = _multi_worker_strategy()
            _patch_keras_for_multi_worker()
        elif name == "mirrored":
            _strategies[name] = tf.distribute.MirroredStrategy()
        else:
            _strategies[name] = tf.distribute.get_strategy()
    return _strategies[name]


def _multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    config = _read_tf_config()
    if _tensorflow_started():
        raise RuntimeError(
            "Expected create_strategy('multi_worker') before TensorFlow runs any op: "
            "MultiWorkerMirroredStrategy configures collective ops, which TensorFlow allows only "
            "before its runtime starts (running an op, tf.config.list_logical_devices(), "
            "creating another strategy). Create it first thing in the program. Received: "
            f"create_strategy('multi_worker') for task {config['task']} after TensorFlow started."
        )
    # On CPU, AUTO is RING (the only CPU implementation); on GPUs it may pick NCCL. No timeout:
    # the strategy's own health check aborts collectives when a peer dies.
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _tensorflow_started() -> bool:
    # TF's own test before configuring collectives (context.configure_collective_ops); it only
    # says "must be configured at program startup" otherwise.
    from tensorflow.python.eager import context

    return getattr(context.context(), "_context_handle", None) is not None


def _read_tf_config() -> dict:
    """The validated `TF_CONFIG` of this process: {"cluster": {job: [host:port]}, "task": ...}.

    Raises:
        ValueError: TF_CONFIG is unset, not JSON, or its task is not a member of its cluster.
    """
    example = (
        '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        raise ValueError(
            "Expected the TF_CONFIG environment variable for strategy 'multi_worker', e.g. "
            f"{example}. Received: TF_CONFIG unset or empty"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Expected TF_CONFIG to be JSON like {example}. Received: {raw!r} ({error})"
        ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not (
        isinstance(cluster, dict)
        and cluster
        and all(isinstance(hosts, list) and hosts for hosts in cluster.values())
        and ("worker" in cluster or "chief" in cluster)
    ):
        raise ValueError(
            "Expected TF_CONFIG['cluster'] to map 'worker' (and optionally 'chief') to lists of "
            f"host:port addresses, e.g. {example}. Received: {raw!r}"
        )
    index = task.get("index") if isinstance(task, dict) else None
    if not (
        isinstance(task, dict)
        and task.get("type") in cluster
        and isinstance(index, int)
        and 0 <= index < len(cluster[task["type"]])
    ):
        raise ValueError(
            "Expected TF_CONFIG['task'] to name a job of the cluster and an index within it, "
            f"e.g. {example}. Received: {raw!r}"
        )
    return config


# === Who writes ===
def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's files: task "chief", or "worker" 0 when the
    cluster has no chief; True without a cluster.

    Args:
        strategy: default: the strategy in scope, else the one `create_strategy` made.
    """
    resolver = getattr(_strategy_or_current(strategy), "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    if task_type == "chief":
        return True
    jobs = resolver.cluster_spec().jobs
    return task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs


def writable_dir(path: str | os.PathLike, strategy: tf.distribute.Strategy | None = None) -> Path:
    """Where this process writes what belongs in `path`: `path` itself on the chief, a private
    temporary directory on the other workers (created if missing).

    Every worker must still execute the same saves: saving may involve collectives, so a
    worker that skips one blocks the others. Only the chief's writes land in `path`; the
    others' go to a directory under the system temp dir that `remove_worker_dirs` deletes.

    Args:
        path: the directory the run should have (run directory, checkpoints, TensorBoard logs).
        strategy: as for `is_chief`.
    """
    path = Path(path)
    if not is_chief(strategy):
        absolute = path.absolute()
        path = _worker_temp_root(strategy) / absolute.relative_to(absolute.anchor)
    path.mkdir(parents=True, exist_ok=True)
    return path


def chief_value(value: int, strategy: tf.distribute.Strategy | None = None) -> int:
    """The chief's `value`, on every worker: how workers agree on a choice one of them made,
    such as the timestamp in a new run directory's name. A collective: every worker must call it.

    Args:
        value: an integer (int64); only the chief's counts.
        strategy: as for `is_chief`.
    """
    strategy = _strategy_or_current(strategy)
    if getattr(strategy, "cluster_resolver", None) is None:
        return int(value)
    mine = tf.constant(int(value) if is_chief(strategy) else 0, tf.int64)

    @tf.function
    def agree():
        return strategy.reduce("SUM", strategy.run(lambda: tf.identity(mine)), axis=None)

    # Every local replica of the chief contributed its value; every worker has as many.
    return int(agree()) // len(strategy.extended.worker_devices)


def remove_worker_dirs() -> None:
    """Deletes this process's temporary directories from `writable_dir` (none on the chief);
    also runs at exit."""
    global _worker_root
    if _worker_root is not None:
        shutil.rmtree(_worker_root, ignore_errors=True)
        _worker_root = None


def _worker_temp_root(strategy) -> Path:
    global _worker_root
    if _worker_root is None:
        resolver = _strategy_or_current(strategy).cluster_resolver
        prefix = f"tfaux-{resolver.task_type}{resolver.task_id}-"
        _worker_root = Path(tempfile.mkdtemp(prefix=prefix))
        atexit.register(remove_worker_dirs)  # at the latest; a killed process leaves it behind
    return _worker_root


def _strategy_or_current(strategy) -> tf.distribute.Strategy:
    if strategy is not None:
        return strategy
    if tf.distribute.has_strategy() or not _strategies:
        return tf.distribute.get_strategy()
    return _strategies.get("multi_worker") or next(iter(_strategies.values()))


# === Per-replica state ===
def replica_values(variable: tf.Variable) -> list[np.ndarray]:
    """The value of a per-replica (ON_READ) variable on every replica of the job, in replica
    order (`replica_id_in_sync_group`).

    Under MultiWorkerMirroredStrategy the other workers' replicas are all-gathered: a collective,
    so every worker must call it. A TensorFlow checkpoint cannot hold such state: it saves a
    SyncOnRead variable as one value aggregated over the replicas (none with aggregation NONE).
    """
    if not isinstance(variable, tf.distribute.DistributedValues):
        return [np.asarray(variable)]
    strategy = variable.distribute_strategy
    if getattr(strategy, "cluster_resolver", None) is None:
        return [np.asarray(v) for v in variable.values]

    @tf.function  # strategy.run in eager mode warns of its overhead
    def gather():
        local = strategy.run(lambda: tf.expand_dims(tf.identity(variable), 0))
        return strategy.gather(local, axis=0)

    return list(np.asarray(gather()))


def local_replica_ids(variable: tf.Variable) -> list[int]:
    """The replica ids (`replica_id_in_sync_group`) of this process's copies of `variable`,
    in the order of `variable.values`; [0] for a plain variable."""
    if not isinstance(variable, tf.distribute.DistributedValues):
        return [0]
    strategy = variable.distribute_strategy

    @tf.function
    def ids():
        return strategy.run(lambda: tf.distribute.get_replica_context().replica_id_in_sync_group)

    return [int(i) for i in strategy.experimental_local_results(ids())]


# === Data ===
def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` sharded by elements (AutoShardPolicy.DATA) across workers.

    The default policy (AUTO) looks for input files to give each worker; in-memory datasets have
    none, so TF warns and falls back to DATA. Every worker still builds the whole pipeline and
    keeps its share of each global batch, so shuffles must be seeded alike on every worker.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected a tf.data.Dataset. Received: {type(dataset).__name__}")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# === Keras compatibility shim (keras-team/keras#20585, tensorflow/tensorflow#72388) ===
def _keras_needs_shim(version: str) -> bool:
    """Whether Keras `version` is one the multi-worker shim was verified for."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return False
    low, high = SHIM_KERAS_VERSIONS
    return low <= (int(match[1]), int(match[2])) <= high


def _patch_keras_for_multi_worker() -> bool:
    """Fixes Keras' TensorFlow trainer for MultiWorkerMirroredStrategy; True if applied.

    Each patch wraps one function and changes only the branch Keras takes in multi-worker mode
    (`trainer._collective_all_reduce_multi_worker`), calling the original otherwise:

    - `TensorFlowTrainer._maybe_symbolic_build` passed the whole first batch, a nest of
      PerReplica values, to `strategy.reduce`, which takes one value; MirroredStrategy's
      reduction happens to map over nests, MultiWorkerMirroredStrategy's does not ("Attempt to
      convert a value (PerReplica...) to a Tensor"). The build needs only shapes and dtypes,
      so the patch hands it the first local replica's batch (no collective at all).
    - `reduce_per_replica(..., "mean")` reduced multi-worker step outputs with
      `strategy.reduce("MEAN", v, axis=0)`, but the outputs are scalar metric results ("Invalid
      reduction dimension 0 for input with 0 dimensions"). Locally Keras averages the replicas'
      values elementwise; `axis=None` is that average across all replicas of all workers.
    """
    global _shim_applied
    if _shim_applied:
        return True
    if not _keras_needs_shim(keras.__version__):
        low, high = SHIM_KERAS_VERSIONS
        log.info(
            "Keras %s is outside %d.%d-%d.%d: multi-worker shim skipped (docs/decisions.md)",
            keras.__version__,
            *low,
            *high,
        )
        return False
    from keras.src.backend.tensorflow import trainer

    multi_worker = trainer._collective_all_reduce_multi_worker
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and strategy is not None and multi_worker(strategy):
            for _, _, distributed_iterator in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: _first_local_value(v, strategy), next(distributed_iterator)
                )
                return original_build(self, data_batch=data_batch)
        return original_build(self, iterator=iterator, data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    _keras_patches["symbolic_build"] = (
        trainer.TensorFlowTrainer,
        "_maybe_symbolic_build",
        original_build,
        _maybe_symbolic_build,
    )
    # A module global, looked up when the train step is traced.
    _keras_patches["reduce_per_replica"] = (
        trainer,
        "reduce_per_replica",
        original_reduce,
        reduce_per_replica,
    )
    for owner, name, _, patched in _keras_patches.values():
        setattr(owner, name, patched)
    _shim_applied = True
    log.info("Keras %s: multi-worker shim applied", keras.__version__)
    return True


@contextlib.contextmanager
def _without_patch(name: str):
    """Keras' original function in place of patch `name` ("symbolic_build",
    "reduce_per_replica") for a while: the two-worker test shows each bug still exists."""
    owner, attribute, original, patched = _keras_patches[name]
    setattr(owner, attribute, original)
    try:
        yield
    finally:
        setattr(owner, attribute, patched)


def _first_local_value(value, strategy):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value
