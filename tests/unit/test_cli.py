"""`python recipes/run.py`: bad input is one line and exit 2; a quick default run end to end."""

import json
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.helpers import QUICK, RECIPES, ROOT, run_cli
from tfaux.cli import COMMANDS, DEFAULT_RECIPE


def run_recipe_process(*args, tmp_path, timeout: int = 1200) -> subprocess.CompletedProcess:
    """`python recipes/run.py ARGS` in a fresh process, writing under `tmp_path`."""
    return subprocess.run(
        [sys.executable, str(RECIPES / "run.py"), *args]
        + ["--runs-dir", str(tmp_path / "runs"), "--savedmodels-dir", str(tmp_path / "sm")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["seed000_fft"], "Unknown recipe 'seed000_fft'. Did you mean 'seed000_ft'"),
        (["--set", "training.epoch=2"], "Did you mean training.epochs"),
        (["--set", "model.backbone=resnet-18"], "Did you mean 'resnet18'"),
        (["--set", "data.dataset=fashion-mnist"], "Did you mean 'fashion_mnist'"),
        (["--set", "variants=none,fourrier"], "Unknown aux task 'fourrier'"),
        (["--set", "training.epochs=two"], "Expected training.epochs to be of type int"),
        (["--set", "evaluation.fgsm_eps=-0.1"], "Received: eps=-0.1"),
        (["--set", "aux_weight=-0.01"], "aux_weight (λ) >= 0"),
        (["--set", "data.batch_size=0"], "Expected batch_size > 0"),
        (["--set", "variants=none:simclrr"], "Unknown augmentation 'simclrr'"),
        (["--set", "variants=none,recon=0"], "Expected λ > 0 for the aux task 'recon'"),
        (["--set", "aux_weight=0", "--set", "variants=none,fourier"], "set aux_weight > 0"),
        (
            ["seed003_random_sign", "--set", "random_sign.after=input,stage1_block_out"],
            "Unknown backbone layer 'stage1_block_out'. Did you mean 'stage1_block1_out'",
        ),
        (
            ["--set", "variants=coarse", "--set", "data.dataset=digits"],
            "Expected a dataset with coarse labels (cifar100) or a grouping",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert run_cli(*args, tmp_path=tmp_path) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "runs").exists()  # bad input leaves no run directory behind


def test_missing_data_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    code = run_cli(
        "--set",
        "data.dataset=cifar10",
        "--set",
        "data.data_dir=" + str(tmp_path / "d"),
        *QUICK,
        tmp_path=tmp_path,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "download=true" in err.lower()


def test_list_and_keys(capsys):
    assert run_cli("--list") == 0
    assert f"{DEFAULT_RECIPE} (default): Seed 000" in capsys.readouterr().out
    assert run_cli("--keys") == 0
    assert "training.epochs" in capsys.readouterr().out.split()


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli("--help")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    commands = re.search(r"commands:\n(.*?)\n\n", out, re.S).group(1)
    assert re.findall(r"^    (\S+)", commands, re.M) == list(COMMANDS)
    assert "COMMAND defaults to run" in out


@pytest.mark.parametrize(
    "args", [["seed001_compare", "--keys"], ["--keys"], ["--list"], ["seed000_ft", "--set"]]
)
def test_run_is_the_default_command(args, capsys):
    def outcome(*argv):
        try:
            code = run_cli(*argv)
        except SystemExit as exit_:  # argparse's usage error
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert outcome(*args) == outcome("run", *args)


@pytest.mark.parametrize(
    ("typo", "command"),
    [("tunne", "tune"), ("evalute", "evaluate"), ("export_tflite", "export-tflite")],
)
def test_a_misspelt_command_is_one_line_and_exit_2(typo, command, capsys, tmp_path):
    assert run_cli(typo, "seed000_ft", tmp_path=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Unknown command {typo!r}. Did you mean {command!r}? Available:")
    assert err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_narrowed_run_says_how_many_claims_it_cannot_test(capsys):
    # seed000_ft's 4 claims: FT vs none and FT vs Recon, clean and FGSM ε = 0.3.
    assert run_cli(DEFAULT_RECIPE, "--set", "variants=none,fourier", "--keys") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == (
        "note: 2 of the recipe's 4 claims are not tested by this run (its variants or metrics "
        "are not in it)"
    )
    assert "claims" not in lines  # claims are the recipe file's, not a --set key
    assert captured.err == ""


def test_the_real_command_exits_2_without_traceback():
    result = subprocess.run(
        [sys.executable, str(RECIPES / "run.py"), "--set", "model.backbone=resnet-18"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: Unknown backbone 'resnet-18'" in result.stderr


@pytest.mark.slow
def test_default_recipe_quick_mode_end_to_end(tmp_path):
    with_progress = [arg for arg in QUICK if arg != "--no-progress"]
    # small_cnn: no assertion reads the backbone, and ResNet-8's traces cost a third more.
    result = run_recipe_process(
        *with_progress, "--set", "model.backbone=small_cnn", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Redirected output: one progress line per epoch and pass, no bar frames, no TF chatter.
    assert "\r" not in result.stdout + result.stderr
    progress = [line for line in result.stdout.splitlines() if re.match(r"\S+ epoch \d", line)]
    assert [line.split(":")[0] for line in progress] == [
        "none epoch 1/1",
        "recon epoch 1/1",
        "fourier epoch 1/1",
    ]
    assert "none: test: 2 batch in " in result.stdout  # 256 test images, batches of 128
    noise = ("tensorflow", "retracing", "deprecat", "Warning", "I0000", "W0000", "E0000")
    assert not [word for word in noise if word in result.stderr], result.stderr[-3000:]
    for line in result.stderr.splitlines():  # only what a user can act on, one line each
        assert line.startswith("warning: ") and "robustness claim not trustworthy" in line
    assert (
        "| variant | val acc | clean test acc | FGSM ε=0.1 | FGSM ε=0.3 | PGD-3 ε=0.1 (n=256) |"
        in result.stdout
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    files = ("config.json", "log.txt", "results.json", "results.md", "accuracy.png")
    for name in (*files, "robustness_curves.png"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard" / "fourier").rglob("events.out.tfevents.*"))
    results = json.loads((run_dir / "results.json").read_text())
    assert list(results["variants"]) == ["none", "recon", "fourier"]
    for variant in results["variants"].values():
        assert 0.0 <= variant["fgsm_accuracy"]["0.3"] <= variant["test_accuracy"] <= 1.0
        assert variant["pgd_accuracy"] <= variant["fgsm_accuracy"]["0.1"] + 0.02
        assert {c["name"] for c in variant["robustness"]["sanity"]} >= {"input gradients"}
        assert variant["test_examples"] == 256
        # Natural loops selecting by clean accuracy run no validation PGD; the panels' cost shows.
        assert list(variant["monitor_seconds"]) == ["images"]
        assert "val_pgd_accuracy" not in variant
    assert "## Monitoring cost" in (run_dir / "results.md").read_text()
    assert json.loads((run_dir / "config.json").read_text())["training"]["epochs"] == 1
    export = tmp_path / "sm" / run_dir.name
    meta = json.loads((export / "metadata.json").read_text())
    assert meta["variant"] == results["best_variant"]
    assert meta["class_names"][0] == "T-shirt/top"
    serving = tf.saved_model.load(str(export)).signatures["serving_default"]
    assert serving(images=tf.zeros([2, 28, 28, 1]))["probabilities"].shape == (2, 10)


def test_a_diverging_run_stops_with_one_line_and_exit_1(tmp_path, capsys):
    code = run_cli(
        *("--set", "data.dataset=digits", "--set", "data.train_size=none"),
        *("--set", "data.test_size=none", "--set", "variants=none"),
        *("--set", "model.backbone=small_cnn", "--set", "training.learning_rate=1e12"),
        "--no-progress",
        tmp_path=tmp_path,
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: none: the training loss became NaN or infinite in epoch 1")
    assert err.count("\n") == 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert not (run_dir / "variants" / "none.weights.h5").exists()  # never "trained"
