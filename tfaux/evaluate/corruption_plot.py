"""The common-corruption benchmark as a picture: CE or error per corruption, one bar per model."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tfaux.evaluate.corruption import mean_errors
from tfaux.names import unknown_name


def corruption_plot(
    per_model: Mapping[str, dict], path: str | os.PathLike, *, reference_name: str | None = None
) -> Path:
    """Grouped bars, one group per corruption and one bar per model, written as a PNG.

    Plots CE (%) when every model has a `corruption_error` result (a dict with "ce"), otherwise
    the error (%) averaged over severities from `corruption_errors` results (dicts with "errors").
    Both can live in one dict per model: `{**errors, **corruption_error(errors, ref)}`.

    Args:
        per_model: {model name: result}.
        path: the PNG to write.
        reference_name: the model CE is relative to: drawn as the 100% line (its bars, all 100,
            are left out); with plain errors its bars are hatched.

    Returns:
        `path` as a Path.
    """
    if not per_model:
        raise ValueError("Expected at least one model in per_model. Received: an empty dict")
    if all("ce" in r for r in per_model.values()):
        mode = "ce"
    elif all("errors" in r for r in per_model.values()):
        mode = "error"
    else:
        raise ValueError(
            "Expected every model's result to have 'ce' (from corruption_error) or every one "
            f"'errors' (from corruption_errors). Received: keys "
            f"{ {name: sorted(r) for name, r in per_model.items()} }"
        )
    if mode == "error" and reference_name is not None and reference_name not in per_model:
        raise unknown_name("reference model", reference_name, per_model)
    series = {}
    for name, result in per_model.items():
        if mode == "ce":
            if name == reference_name:
                continue
            values = {**result["ce"], "mCE": result["mCE"]}
            label = f"{name} (mCE {result['mCE']:.1f})"
        else:
            means = mean_errors(result)
            values = {
                "clean": result["clean_error"],
                **means,
                "mean": np.mean(list(means.values())),
            }
            values = {k: 100 * float(v) for k, v in values.items()}
            label = f"{name} (mean {values['mean']:.1f})"
        series[name] = (label, values)
    groups = list(dict.fromkeys(g for _, values in series.values() for g in values))
    summary = "mCE" if mode == "ce" else "mean"
    groups = [g for g in groups if g != summary] + [summary]  # summary last

    fig = Figure(figsize=(min(18, 4 + len(groups) * (0.3 + 0.15 * len(series))), 4.2))
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    for i, (name, (label, values)) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(groups))]
        ys = [values.get(g, math.nan) for g in groups]
        hatch = "//" if name == reference_name else None
        ax.bar(xs, ys, width, label=label, hatch=hatch)
    if mode == "ce":
        line = f"{reference_name} (reference)" if reference_name else "reference"
        ax.axhline(100, color="gray", linestyle="--", linewidth=1, label=f"{line} = 100")
        ax.set_ylabel("corruption error CE (%)")
        ax.set_title("Corruption error relative to the reference (lower is better)")
    else:
        ax.set_ylabel("top-1 error (%), mean over severities")
        ax.set_title("Error under corruption (lower is better)")
    ax.set_xticks(
        range(len(groups)),
        [g.replace("_", " ") for g in groups],
        rotation=40,
        ha="right",
        rotation_mode="anchor",
        fontsize=8,
    )
    ax.axvline(len(groups) - 1.5, color="black", linewidth=0.6)  # separates the summary group
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars stay visible
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
