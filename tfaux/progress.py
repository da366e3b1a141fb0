"""Progress for people: live bars on a terminal, one line per epoch or pass when redirected.

A tqdm bar redraws itself with `\\r` many times a second; in a log file (CI, `nohup`, `> log`)
that is thousands of frames on one line. So bars are drawn only when both stdout and stderr are
terminals; otherwise each pass prints one line when it ends, and training one line per epoch.

    for x, y in progress_bar(dataset, desc="evaluate", unit="batch"):
        ...
    model.fit(..., callbacks=[training_progress(epochs=3, steps=157, desc="none")])
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable

import keras
from tqdm.auto import tqdm
from tqdm.keras import TqdmCallback


def interactive() -> bool:
    """Whether stdout and stderr are both terminals (bars redraw there; files get lines)."""
    return _isatty(sys.stdout) and _isatty(sys.stderr)


def progress_bar(
    iterable: Iterable | None = None,
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
):
    """A tqdm bar on a terminal, else a `LineProgress` that prints one line when it closes.

    Both support iteration, `update`, `set_postfix_str`, `close` and `with`.
    """
    if enabled and not interactive():
        return LineProgress(iterable, desc=desc, unit=unit)
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not enabled, leave=False)


class LineProgress:
    """tqdm's interface for redirected output: "desc: 79 batch in 12.3 s" once, at the end."""

    def __init__(self, iterable=None, *, desc: str, unit: str = "it"):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        self.n, self._start, self._closed = 0, time.perf_counter(), False

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Ignored: a postfix describes the moment, and this prints only the end."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        seconds = time.perf_counter() - self._start
        print(f"{self.desc}: {self.n} {self.unit} in {seconds:.1f} s", flush=True)


def training_progress(*, epochs: int, steps: int, desc: str) -> keras.callbacks.Callback:
    """Keras progress for `fit`: tqdm's epoch and batch bars on a terminal, else `EpochLines`."""
    if interactive():
        return TqdmCallback(epochs=epochs, data_size=steps, batch_size=1, desc=desc, leave=False)
    return EpochLines(epochs=epochs, desc=desc)


class EpochLines(keras.callbacks.Callback):
    """One line per epoch: "none epoch 2/3: 41 s, loss 0.52, accuracy 0.811, val_accuracy ..."."""

    def __init__(self, *, epochs: int, desc: str):
        super().__init__()
        self.epochs, self.desc = epochs, desc

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        metrics = ", ".join(
            f"{name} {float(value):.4g}"
            for name, value in (logs or {}).items()
            if name in ("loss", "val_loss")
            # an accuracy a monitor did not measure this epoch is NaN (`monitor.robust_every`)
            or (name.endswith("accuracy") and not math.isnan(float(value)))
        )
        print(
            f"{self.desc} epoch {epoch + 1}/{self.epochs}: {seconds:.0f} s, {metrics}", flush=True
        )


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
