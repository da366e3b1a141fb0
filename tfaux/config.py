"""Recipes as typed, frozen dataclasses; `--set key=value` overrides parsed by field type.

Every field is validated in `__post_init__`, so a bad value fails before any work starts, with
the house message: what was expected, then what was received.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field

STRATEGIES = ("default", "mirrored")


def _require(condition: bool, expected: str, **received) -> None:
    if not condition:
        shown = ", ".join(f"{k}={v!r}" for k, v in received.items())
        raise ValueError(f"Expected {expected}. Received: {shown}")


@dataclass(frozen=True)
class DataConfig:
    """Which data and how it is split, subset and batched (see `tfaux.data.load`)."""

    dataset: str = "fashion_mnist"
    batch_size: int = 128
    val_fraction: float = 0.05
    train_size: int | None = None
    test_size: int | None = None
    augment: bool | None = None
    image_size: int | None = None
    download: bool = False
    data_dir: str | None = None

    def __post_init__(self):
        _require(self.batch_size > 0, "batch_size > 0", batch_size=self.batch_size)
        _require(0 < self.val_fraction < 1, "0 < val_fraction < 1", val_fraction=self.val_fraction)
        for key in ("train_size", "test_size", "image_size"):
            value = getattr(self, key)
            _require(value is None or value > 0, f"{key} > 0 or None", **{key: value})


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and heads (see `tfaux.models.build`)."""

    backbone: str = "resnet8"
    width: float = 1.0
    bn_momentum: float = 0.9
    dropout: float = 0.0

    def __post_init__(self):
        _require(self.width > 0, "width > 0", width=self.width)
        _require(0 <= self.bn_momentum < 1, "0 <= bn_momentum < 1", bn_momentum=self.bn_momentum)
        _require(0 <= self.dropout < 1, "0 <= dropout < 1", dropout=self.dropout)


@dataclass(frozen=True)
class TrainingConfig:
    """Optimizer and schedule (seed 000: SGD 0.1, LR ×0.2 on plateau, early stopping)."""

    epochs: int = 5
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    plateau_patience: int = 2
    stop_patience: int = 10
    seed: int = 0
    strategy: str = "default"

    def __post_init__(self):
        _require(self.epochs > 0, "epochs > 0", epochs=self.epochs)
        _require(self.learning_rate > 0, "learning_rate > 0", learning_rate=self.learning_rate)
        _require(0 <= self.momentum < 1, "0 <= momentum < 1", momentum=self.momentum)
        _require(self.weight_decay >= 0, "weight_decay >= 0", weight_decay=self.weight_decay)
        _require(
            self.plateau_patience > 0,
            "plateau_patience > 0",
            plateau_patience=self.plateau_patience,
        )
        _require(self.stop_patience > 0, "stop_patience > 0", stop_patience=self.stop_patience)
        _require(self.strategy in STRATEGIES, f"strategy in {STRATEGIES}", strategy=self.strategy)


@dataclass(frozen=True)
class EvalConfig:
    """Attacks of the final evaluation, on the primary logits with the true labels."""

    fgsm_eps: tuple[float, ...] = (0.1, 0.3)

    def __post_init__(self):
        for eps in self.fgsm_eps:
            _require(0 <= eps <= 1, "0 <= eps <= 1 (pixels are in [0, 1])", eps=eps)


@dataclass(frozen=True)
class Recipe:
    """One experiment: data, model, training, and the variants compared side by side.

    A variant is "none" (no auxiliary task) or aux-task names joined by "+", e.g. "recon",
    "fourier", "recon+fourier"; every task gets the weight λ = `aux_weight`.
    """

    name: str
    description: str = ""
    variants: tuple[str, ...] = ("none",)
    aux_weight: float = 0.01
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    export: bool = True

    def __post_init__(self):
        _require(bool(self.variants), "at least one variant", variants=self.variants)
        _require(
            len(set(self.variants)) == len(self.variants),
            "distinct variants",
            variants=self.variants,
        )
        _require(self.aux_weight >= 0, "aux_weight (λ) >= 0", aux_weight=self.aux_weight)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def variant_tasks(variant: str) -> tuple[str, ...]:
    """Aux-task names of a variant: "none" → (), "recon+fourier" → ("recon", "fourier")."""
    return () if variant == "none" else tuple(variant.split("+"))


def apply_overrides(recipe: Recipe, assignments: list[str]) -> Recipe:
    """Returns `recipe` with `key=value` assignments applied, each parsed by its field's type.

    Keys are dotted paths (`training.epochs=3`); tuples are comma-separated
    (`variants=none,fourier`); `none` sets an optional field to None.
    """
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"Expected --set key=value. Received: {assignment!r}")
        key = key.strip()
        if key not in field_paths(recipe):
            raise _unknown_key(key, recipe)
        recipe = _replace_path(recipe, key.split("."), text.strip(), key)
    return recipe


def field_paths(obj, prefix: str = "") -> list[str]:
    """All settable dotted keys of a (nested) config dataclass."""
    paths = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            paths += field_paths(value, f"{prefix}{f.name}.")
        else:
            paths.append(f"{prefix}{f.name}")
    return paths


def _replace_path(obj, path: list[str], text: str, full_key: str):
    head = path[0]
    if len(path) > 1:
        return dataclasses.replace(
            obj, **{head: _replace_path(getattr(obj, head), path[1:], text, full_key)}
        )
    hint = typing.get_type_hints(type(obj))[head]
    return dataclasses.replace(obj, **{head: parse_value(text, hint, full_key)})


def _unknown_key(key: str, recipe) -> ValueError:
    paths = field_paths(recipe)
    close = difflib.get_close_matches(key, paths, n=3, cutoff=0.8)
    if not close:  # a right leaf under a wrong section: "trainig.epochs", "epochs"
        leaf = key.split(".")[-1]
        close = [p for p in paths if p.split(".")[-1] == leaf]
    if close:
        return ValueError(
            f"Unknown recipe key {key!r}. Did you mean {', '.join(close)}? "
            "See --keys for every key."
        )
    return ValueError(f"Unknown recipe key {key!r}. Keys: {', '.join(paths)}.")


def parse_value(text: str, hint, key: str = "value"):
    """Parses `text` as type `hint` (int, float, bool, str, X | None, tuple[X, ...])."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", ""):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return parse_value(text, inner, key)
    if origin is tuple:
        return tuple(parse_value(t.strip(), args[0], key) for t in text.split(",") if t.strip())
    if hint is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"Expected {key} to be true or false. Received: {key}={text!r}")
    try:
        return hint(text)
    except ValueError:
        raise ValueError(
            f"Expected {key} to be of type {hint.__name__}. Received: {key}={text!r}"
        ) from None
