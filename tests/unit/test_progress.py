"""Progress: bars on a terminal, one line per epoch or pass when the output goes to a file."""

import io
import subprocess
import sys

import keras
import numpy as np
from tqdm.keras import TqdmCallback

from tfaux import progress
from tfaux.progress import EpochLines, LineProgress, progress_bar, training_progress


def test_redirected_output_gets_one_line_per_pass(capsys):
    assert not progress.interactive()  # pytest captures both streams
    bar = progress_bar(range(5), desc="evaluate", unit="batch")
    assert isinstance(bar, LineProgress)
    assert list(bar) == [0, 1, 2, 3, 4]
    with progress_bar(total=3, desc="corrupt", unit="set") as manual:
        for _ in range(3):
            manual.set_postfix_str("fog s1")
            manual.update()
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 2 and "\r" not in out.out and out.err == ""
    assert lines[0].startswith("evaluate: 5 batch in ") and lines[0].endswith(" s")
    assert lines[1].startswith("corrupt: 3 set in ")


def test_disabled_progress_prints_nothing(capsys):
    assert list(progress_bar(range(3), desc="quiet", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_tqdm_bars(monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: True)
    bar = progress_bar(range(2), desc="evaluate", unit="batch")
    assert not isinstance(bar, LineProgress) and bar.total == 2
    bar.close()
    assert isinstance(training_progress(epochs=2, steps=10, desc="none"), TqdmCallback)


def test_interactive_needs_both_streams_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.interactive()
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # `2> log`: frames would go to the file
    assert not progress.interactive()


def test_fit_prints_one_line_per_epoch_with_its_metrics(capsys):
    callback = training_progress(epochs=2, steps=4, desc="none")
    assert isinstance(callback, EpochLines)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    x, y = np.random.default_rng(0).random((16, 3)), np.arange(16) % 2
    model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), verbose=0, callbacks=[callback])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["none epoch 1/2", "none epoch 2/2"]
    assert all("loss " in line and "val_accuracy " in line for line in lines)


def test_a_redirected_process_shows_no_tensorflow_start_up():
    # What a user running `python recipes/run.py > log 2>&1` would see before any output.
    code = "from tfaux.console import quiet_tensorflow_start; quiet_tensorflow_start()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
