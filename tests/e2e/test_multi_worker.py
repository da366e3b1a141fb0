"""tfaux.distribute: MultiWorkerMirroredStrategy on two local processes, chief-only writes, a
worker killed and the run resumed, the version-gated Keras shim, TF_CONFIG validation."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.e2e import multi_worker_main as worker
from tests.helpers import random_images, tiny_model
from tfaux import distribute
from tfaux.models import batch_norm

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 150  # seconds for both workers; they take 20-50 s on 2 shared cores
# The error each patch of the Keras shim prevents (keras#20585, tensorflow#72388).
KERAS_BUGS = {
    "symbolic_build": "Attempt to convert a value (PerReplica",
    "reduce_per_replica": "Invalid reduction dimension 0",
}


# === Two worker processes ===
def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster() -> dict:
    return {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}


def _start_workers(
    command: list[str], cluster: dict, logs: Path, env: dict | None = None
) -> list[subprocess.Popen]:
    """Starts `command` as each worker of `cluster` (with `env` added to the environment), each
    in its own process group, its output in `logs`/worker<index>.log."""
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(len(cluster["worker"])):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        extra = {
            "TF_CONFIG": json.dumps(task),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # One compute thread each: two workers beside the suite's other process on two
            # cores would otherwise run six threads and slow every test beside them.
            "TF_NUM_INTRAOP_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            **(env or {}),
        }
        env_of_worker = {**os.environ, **extra}
        with open(logs / f"worker{index}.log", "w") as log:
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env_of_worker,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return processes


def _wait_workers(processes: list[subprocess.Popen], timeout: float) -> None:
    """Waits until every worker exits, `timeout` passes, or 15 s after one of them failed (the
    others would wait for it in a collective)."""
    deadline, failed_at = time.monotonic() + timeout, None
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        if failed_at is None and any(p.poll() not in (None, 0) for p in processes):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() > failed_at + 15:
            break
        time.sleep(0.2)


def _kill(processes: list[subprocess.Popen]) -> None:
    """SIGKILLs the process group of every worker still running."""
    for p in processes:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def _run_workers(
    args: list[str], logs: Path, timeout: float = TIMEOUT, command: list[str] | None = None
) -> list[tuple[int, str]]:
    """Starts two workers on 127.0.0.1; (exit code, output) of each, killed after `timeout` or
    soon after one of them fails (the other would wait for it in a collective). Each runs
    `command + args` (default: this file's worker script)."""
    command = command or [sys.executable, "-m", "tests.e2e.multi_worker_main"]
    processes = _start_workers([*command, *args], _cluster(), logs)
    try:
        _wait_workers(processes, timeout)
    finally:
        _kill(processes)
    return [(p.returncode, (logs / f"worker{i}.log").read_text()) for i, p in enumerate(processes)]


def _tail(output: str, chars: int = 3000) -> str:
    lines = [line for line in output.splitlines() if not line.startswith(("I0000", "W0000"))]
    return "\n".join(lines)[-chars:]


def _single_replica_run(initial):
    model = worker.compiled_model(initial)
    history = model.fit(worker.dataset(), epochs=worker.EPOCHS, shuffle=False, verbose=0)
    return history.history, model.get_weights()


@pytest.mark.slow
def test_two_workers_train_like_one_replica_and_only_the_chief_writes(tmp_path):
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    initial = tiny_model(norm=batch_norm(synchronized=True)).get_weights()
    np.savez(scratch / "initial.npz", *initial)

    start = time.perf_counter()
    results = _run_workers([str(out), str(scratch)], tmp_path / "logs")
    seconds = time.perf_counter() - start
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} exited with {code}:\n{_tail(output)}"
    summaries = [json.loads((scratch / f"summary-{i}.json").read_text()) for i in range(2)]
    weights = [np.load(scratch / f"weights-{i}.npz") for i in range(2)]
    weights = [[w[k] for k in w.files] for w in weights]

    # The shim is on exactly for the Keras versions it was verified for, and each of its
    # patches is still needed: without it, fit fails as in keras#20585 / tensorflow#72388.
    for summary in summaries:
        assert summary["replicas"] == 2
        assert summary["shim"] == distribute._keras_needs_shim(keras.__version__), summary
        for patch, error in KERAS_BUGS.items():
            if summary["shim"]:
                assert error in (summary["keras_bugs"][patch] or ""), (
                    f"Keras {keras.__version__} trains without the shim's {patch!r} patch "
                    f"(got {summary['keras_bugs'][patch]!r}): remove that patch and narrow "
                    "SHIM_KERAS_VERSIONS (docs/decisions.md)."
                )
    # Both workers end identical, and equal to one replica with the same global batch.
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert summaries[0]["history"] == summaries[1]["history"]
    history, reference = _single_replica_run(initial)
    for key in history:
        np.testing.assert_allclose(summaries[0]["history"][key], history[key], rtol=1e-4)
    for a, b in zip(weights[0], reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    # Only the chief's files are in the real directory; the other worker's went to a temporary
    # directory that it removed.
    chief, other = summaries
    assert chief["chief"] and not other["chief"]
    assert chief["chief_pid"] == other["chief_pid"] == chief["pid"]  # agreed through a collective
    assert Path(chief["wrote_to"]) == out
    assert not Path(other["wrote_to"]).is_relative_to(out)
    assert not other["wrote_to_exists_after_cleanup"]
    assert sorted(p.name for p in out.iterdir()) == [
        "model.weights.h5",
        "tensorboard",
        "written_by_worker_0.txt",
    ]
    events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and all(f".{chief['pid']}." in e.name for e in events)
    print(
        f"2 workers: {seconds:.1f} s; max |w0 - w1| = 0; max |w0 - 1 replica| = "
        f"{max(np.abs(a - b).max() for a, b in zip(weights[0], reference, strict=True)):.2e}"
    )


@pytest.mark.slow
def test_a_recipe_trains_across_two_workers_and_only_the_chief_writes(tmp_path):
    settings = {
        "training.strategy": "multi_worker",
        "data.dataset": "digits",
        "data.train_size": "768",
        "data.test_size": "none",
        "data.batch_size": "32",
        "model.backbone": "small_cnn",
        "model.width": "0.5",
        "variants": "none,recon@free",
        "training.epochs": "2",
        "adversarial.replays": "2",
        "evaluation.sanity": "false",
        "evaluation.curve_eps": "0.1",
        "evaluation.pgd_steps": "3",
        "evaluation.bim_steps": "0",
        "evaluation.mim_steps": "0",
        "evaluation.l2_eps": "0",
        # The per-epoch validation PGD and image panels run in the default recipe's test.
        "monitor.robust_examples": "0",
        "monitor.images_every": "0",
        "training.select": "last",
    }
    args = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    args += ["--runs-dir", str(tmp_path / "runs"), "--savedmodels-dir", str(tmp_path / "sm")]
    results = _run_workers(
        [*args, "--no-progress"],
        tmp_path / "logs",
        timeout=300,
        command=[sys.executable, str(ROOT / "recipes" / "run.py")],
    )
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} exited with {code}:\n{_tail(output)}"
    assert "| recon@free |" in results[0][1]  # the chief prints the results table
    assert "worker done: the chief writes the results" in results[1][1]
    (run_dir,) = (tmp_path / "runs").iterdir()  # one run: the chief's
    result = json.loads((run_dir / "results.json").read_text())
    for variant in ("none", "recon@free"):
        train = json.loads((run_dir / "variants" / f"{variant}.train.json").read_text())
        assert train["epochs_run"] == (2 if variant == "none" else 1)
        assert result["variants"][variant]["test_accuracy"] > 0.5  # both learned digits
    (export,) = (tmp_path / "sm").iterdir()
    assert (export / "metadata.json").is_file()
    assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())
    # Every TensorBoard file and the log were written by the chief's process alone.
    pids = {e.name.split(".")[-3] for e in (run_dir / "tensorboard").rglob("events.out.*")}
    assert len(pids) == 1, pids


# A Free-AT recipe small enough to train twice in the kill test: 4 steps per epoch on digits.
RESUME_SETTINGS = {
    "training.strategy": "multi_worker",
    "data.dataset": "digits",
    "data.train_size": "128",
    "data.test_size": "64",
    "data.batch_size": "32",
    "model.backbone": "small_cnn",
    "model.width": "0.5",
    "variants": "none@free",
    "training.epochs": "3",
    "training.select": "last",
    "adversarial.replays": "1",  # m = 1: 3 epochs of Free-AT
    "adversarial.guard_examples": "32",
    "monitor.robust_examples": "0",
    "monitor.images_every": "0",
    "evaluation.sanity": "false",
    "evaluation.fgsm_eps": "0.1",
    "evaluation.curve_eps": "0.1",
    "evaluation.curve_examples": "32",
    "evaluation.pgd_steps": "2",
    "evaluation.bim_steps": "0",
    "evaluation.mim_steps": "0",
    "evaluation.l2_eps": "0",
    "export": "false",
}


def _delta_events(scratch: Path, index: int) -> list[dict]:
    lines = (scratch / f"worker-{index}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_a_killed_worker_restarts_with_its_own_delta_and_the_run_goes_on(tmp_path):
    scratch, runs = tmp_path / "scratch", tmp_path / "runs"
    scratch.mkdir()
    args = [arg for key, value in RESUME_SETTINGS.items() for arg in ("--set", f"{key}={value}")]
    victim = 1  # the non-chief: before the fix it came back with the chief's δ
    command = [
        *(sys.executable, "-m", "tests.e2e.multi_worker_resume_main", str(scratch), str(victim)),
        *(*args, "--runs-dir", str(runs)),
    ]
    cluster = _cluster()
    temp = tmp_path / "tmp"  # the workers' temporary directories (`writable_dir`)
    temp.mkdir()
    start = time.perf_counter()

    # First start: the victim stops in the second epoch, after the first epoch's backup.
    workers = _start_workers(command, cluster, tmp_path / "logs-1", {"TMPDIR": str(temp)})
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (scratch / f"paused-{victim}").exists():
            assert all(p.poll() is None for p in workers), _tail(
                (tmp_path / "logs-1" / f"worker{victim}.log").read_text()
            )
            assert time.monotonic() < deadline, "the victim never reached the second epoch"
            time.sleep(0.1)
        (pointer,) = runs.glob("*/checkpoints/none@free/latest")
        assert pointer.read_text() == "epoch-00001"  # the chief's backup of the first epoch
        os.killpg(workers[victim].pid, signal.SIGKILL)
        workers[victim].wait()
    finally:
        _kill(workers)  # the chief waits for the dead worker in a collective: killed too
    first = [_delta_events(scratch, i) for i in range(2)]
    killed_after = time.perf_counter() - start
    left_by_the_killed = set(temp.glob("tfaux-*"))

    # The same command again, on the same addresses: both resume from the chief's backup.
    workers = _start_workers(command, cluster, tmp_path / "logs-2", {"TMPDIR": str(temp)})
    try:
        _wait_workers(workers, TIMEOUT)
    finally:
        _kill(workers)
    seconds = time.perf_counter() - start
    for index, process in enumerate(workers):
        output = _tail((tmp_path / "logs-2" / f"worker{index}.log").read_text())
        assert process.returncode == 0, f"worker {index} exited {process.returncode}:\n{output}"
    second = [_delta_events(scratch, i)[len(first[i]) :] for i in range(2)]

    # The run ends with the uninterrupted run's epochs, resumed after the first one.
    (run_dir,) = runs.iterdir()  # one run directory: the chief's
    train = json.loads((run_dir / "variants" / "none@free.train.json").read_text())
    assert train["resumed_from_epoch"] == 1
    assert train["epochs_run"] == len(train["history"]["loss"]) == 3
    assert "resumed from the backup of epoch 1" in (run_dir / "log.txt").read_text()
    assert (run_dir / "results.json").is_file()
    # Each worker starts its second epoch again with the δ it had saved, its own: the two
    # workers' δ differ (each ascends on its own shard of the data).
    saved, restored = {}, {}
    for index in range(2):
        (end,) = [e for e in first[index] if e["event"] == "end" and e["epoch"] == 0]
        begin = second[index][0]
        assert begin["event"] == "begin" and begin["epoch"] == 1, second[index]
        assert begin["pid"] != end["pid"] and end["abs_sum"] > 0
        saved[index], restored[index] = end["sha256"], begin["sha256"]
    assert restored == saved
    assert saved[0] != saved[1]
    assert [e["epoch"] for e in second[0] if e["event"] == "end"] == [1, 2]
    # The backup is gone once the variant's weights are saved; every file of the run directory
    # is the chief's (each start's chief wrote TensorBoard events under its own pid).
    assert not (run_dir / "checkpoints" / "none@free").exists()
    chief_pids = {str(events[0]["pid"]) for events in (first[0], second[0])}
    pids = {e.name.split(".")[-3] for e in (run_dir / "tensorboard").rglob("events.out.*")}
    assert pids and pids <= chief_pids, (pids, chief_pids)
    # The restarted non-chief removed its temporary directory; a killed process cannot.
    assert set(temp.glob("tfaux-*")) == left_by_the_killed, left_by_the_killed
    print(f"2 workers: killed after {killed_after:.1f} s, finished after {seconds:.1f} s")


# === The shim's version gate ===
def test_the_shim_is_gated_on_the_verified_keras_versions():
    assert distribute._keras_needs_shim(keras.__version__), (
        f"Keras {keras.__version__} is outside SHIM_KERAS_VERSIONS {distribute.SHIM_KERAS_VERSIONS}"
        ": run the slow tests of this file to see whether it still needs the shim"
    )
    for version, needed in [
        ("3.10.0", True),
        ("3.15.1", True),
        ("3.15.9", True),
        ("3.16.0", False),
        ("3.16.0.dev2026010100", False),
        ("3.9.2", False),
        ("2.15.0", False),
        ("nightly", False),
    ]:
        assert distribute._keras_needs_shim(version) is needed, version


def test_the_shim_leaves_other_strategies_to_keras(monkeypatch, mirrored):
    from keras.src.backend.tensorflow import trainer

    # Undone after the test: the shim patches Keras for the whole process.
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    monkeypatch.setattr(
        trainer.TensorFlowTrainer,
        "_maybe_symbolic_build",
        trainer.TensorFlowTrainer._maybe_symbolic_build,
    )
    monkeypatch.setattr(distribute, "_shim_applied", False)
    monkeypatch.setattr(distribute, "_keras_patches", {})
    original = trainer.reduce_per_replica
    assert distribute._patch_keras_for_multi_worker()
    assert trainer.reduce_per_replica is not original
    assert distribute._patch_keras_for_multi_worker()  # idempotent
    x, y = random_images(16, (16, 16, 1)), np.arange(16) % 4
    with mirrored.scope():
        model = tiny_model(norm=batch_norm(synchronized=True))
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# === Strategy creation and TF_CONFIG ===
CLUSTER = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG unset"),
        ("{not json", "to be JSON"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "TF_CONFIG\\['cluster'\\]"),
        (json.dumps({"cluster": CLUSTER}), "TF_CONFIG\\['task'\\]"),
        (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}), "index"),
        (json.dumps({"cluster": CLUSTER, "task": {"type": "ps", "index": 0}}), "name a job"),
    ],
)
def test_multi_worker_needs_a_valid_tf_config(tf_config, message, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        distribute.create_strategy("multi_worker")


def test_multi_worker_after_tensorflow_started_says_so(monkeypatch):
    task = {"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(task))
    tf.constant(1.0).numpy()  # TensorFlow has started
    with pytest.raises(RuntimeError, match="before TensorFlow runs any op"):
        distribute.create_strategy("multi_worker")
    assert "multi_worker" not in distribute._strategies


def test_create_strategy_reuses_one_strategy_and_suggests_names():
    assert distribute.create_strategy("default") is distribute.create_strategy("default")
    assert distribute.create_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="Did you mean 'multi_worker'"):
        distribute.create_strategy("multiworker")


# === Who writes ===
def _fake_strategy(task_type, task_id, jobs=("worker",)):
    cluster = tf.train.ClusterSpec({job: ["127.0.0.1:1", "127.0.0.1:2"] for job in jobs})
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        cluster, task_type=task_type, task_id=task_id
    )
    return SimpleNamespace(cluster_resolver=resolver)


def test_is_chief_follows_the_tf_convention():
    assert distribute.is_chief()  # no cluster
    assert distribute.chief_value(7) == 7
    assert distribute.is_chief(tf.distribute.get_strategy())
    assert distribute.is_chief(_fake_strategy("worker", 0))
    assert not distribute.is_chief(_fake_strategy("worker", 1))
    assert distribute.is_chief(_fake_strategy("chief", 0, jobs=("chief", "worker")))
    assert not distribute.is_chief(_fake_strategy("worker", 0, jobs=("chief", "worker")))


def test_writable_dir_routes_other_workers_to_a_removable_temporary_dir(tmp_path):
    target = tmp_path / "run" / "tensorboard"
    assert distribute.writable_dir(target) == target and target.is_dir()
    other = distribute.writable_dir(target, _fake_strategy("worker", 1))
    try:
        assert other.is_dir() and not other.is_relative_to(tmp_path)
        assert other.parts[-2:] == ("run", "tensorboard")
        assert distribute.writable_dir(target, _fake_strategy("worker", 1)) == other
    finally:
        distribute.remove_worker_dirs()
    assert not other.exists()


def test_shard_by_data_shards_elements():
    dataset = distribute.shard_by_data(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        distribute.shard_by_data(np.arange(4))
