"""`python recipes/run.py seed000_ft --set data.dataset=folder --set data.path=DIR`: the README's
"Your own data" command trains, evaluates and exports on a folder of PNGs, and `predict` answers
with the folder's class names; every bad-data case exits 2 with the file or folder named."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import quick_eval_cli, run_cli
from tfaux.data import load_raw

CLASSES = ("boot", "coat", "trouser")  # Fashion-MNIST labels 9, 4, 1


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """`train/<class>/` and `test/<class>/` PNGs: 60 and 12 Fashion-MNIST images per class."""
    raw = load_raw("fashion_mnist")
    root = tmp_path_factory.mktemp("images")
    for name, label in zip(CLASSES, (9, 4, 1), strict=True):
        for split, x, y, count in (
            ("train", raw.x_train, raw.y_train, 60),
            ("test", raw.x_test, raw.y_test, 12),
        ):
            (root / split / name).mkdir(parents=True)
            for i, row in enumerate(np.flatnonzero(y == label)[:count]):
                Image.fromarray(x[row, ..., 0]).save(root / split / name / f"{i}.png")
    return root


def _run(folder, tmp_path, *settings):
    return run_cli(
        "seed000_ft",
        "--set", "data.dataset=folder",
        "--set", f"data.path={folder}",
        "--set", f"data.cache_dir={tmp_path / 'cache'}",
        *settings,
        tmp_path=tmp_path,
    )  # fmt: skip


def test_a_folder_trains_evaluates_exports_and_predicts_with_its_class_names(
    folder, tmp_path, capfd
):
    code = _run(
        folder, tmp_path,
        "--set", "variants=none,fourier",
        "--set", "model.backbone=small_cnn",
        "--set", "training.epochs=2",
        "--set", "data.val_fraction=0.1",
        "--set", "data.memory_limit=0",  # streamed, as a folder above the budget would be
        "--set", "monitor.robust_examples=16",
        "--no-progress",
        *quick_eval_cli(),
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert code == 0
    # Decoding and streaming print nothing a user cannot act on (oneDNN once did, for uint8).
    noise = ("tensorflow", "retracing", "I0000", "W0000", "E0000")
    assert not [word for word in noise if word in err], err[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["dataset"]["class_names"] == list(CLASSES)
    counts = results["dataset"]["class_counts"]  # 180 training images less 18 for validation
    assert sum(counts) == 162 and min(counts) >= 48, counts
    assert results["dataset"]["num_test"] == 36
    header = (run_dir / "results.md").read_text().split("## ")[0]
    assert "Data: folder, 162 train / 18 val / 36 test images of 28x28x1" in header
    assert f"boot {counts[0]}, coat {counts[1]}, trouser {counts[2]}" in header
    log = (run_dir / "log.txt").read_text()
    assert "streamed from the cache" in log and "per class (train)" in log
    # Two epochs on 162 images: well above the 33 % of chance on three distinct garments.
    assert results["variants"]["none"]["test_accuracy"] > 0.5
    (export,) = (path for path in tmp_path.iterdir() if path.name.startswith("seed000_ft"))
    assert json.loads((export / "metadata.json").read_text())["class_names"] == list(CLASSES)
    assert "exported" in out

    images = sorted((folder / "test" / "coat").glob("*.png"))[:3]
    assert run_cli("predict", str(export), *map(str, images), "--top-k", "1") == 0
    rows = [line for line in capfd.readouterr().out.splitlines() if line.startswith("| /")]
    assert len(rows) == 3 and all(row.split("|")[4].strip() in CLASSES for row in rows)


def _truncate_one(root):
    victim = sorted((root / "train" / "coat").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:50])
    return str(victim)


def _empty_class(root):
    (root / "train" / "shoe").mkdir()
    (root / "test" / "shoe").mkdir()
    return str(root / "train" / "shoe")


def _test_classes_differ(root):
    (root / "train" / "shoe").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "train" / "shoe" / "0.png")
    return "missing ['shoe']"


def _single_class(root):
    for split in ("train", "test"):
        for name in CLASSES[1:]:
            for f in (root / split / name).iterdir():
                f.unlink()
            (root / split / name).rmdir()
    return "at least two class subfolders"


@pytest.mark.parametrize(
    "damage", [_truncate_one, _empty_class, _test_classes_differ, _single_class]
)
def test_bad_data_exits_2_in_one_line_naming_the_file_or_folder(folder, tmp_path, capsys, damage):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    named = damage(copy)
    assert _run(copy, tmp_path, "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and named in err, err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_a_folder_without_its_path_exits_2(tmp_path, capsys):
    assert run_cli("seed000_ft", "--set", "data.dataset=folder", tmp_path=tmp_path) == 2
    assert "data.path=DIR" in capsys.readouterr().err
