"""Backbone registry: one name per architecture variant, timm-style.

A backbone is a functional `keras.Model` from an image (already standardized) to a feature map
of shape (H / 2^n, W / 2^n, C). Heads are added by `tfaux.models.build`, never inside a backbone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

from tfaux.models.layers import NormFactory, batch_norm
from tfaux.registry import Registry

BackboneFn = Callable[..., keras.Model]

BACKBONES: Registry[BackboneFn] = Registry("backbone", packages=("tfaux.models.backbones",))


def register_backbone(fn: BackboneFn | None = None, *, name: str | None = None):
    """Registers a backbone builder under `name` (default: the function's name).

    The builder is called as `fn(input_shape=..., width=..., norm=..., **kw)` and returns a
    functional `keras.Model` ending in a 4-D feature map.

    Example:
        @register_backbone
        def resnet8(input_shape, width=1.0, norm=None): ...
    """
    return BACKBONES.register(fn, name=name)


def list_backbones(pattern: str = "*") -> list[str]:
    """Returns the registered backbone names matching a shell-style `pattern`, sorted."""
    return BACKBONES.names(pattern)


def create_backbone(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    width: float = 1.0,
    norm: NormFactory | None = None,
    **kwargs,
) -> keras.Model:
    """Builds the backbone registered as `name`.

    Args:
        name: a name from `list_backbones()`.
        input_shape: (H, W, C) of the images, e.g. (28, 28, 1) or (32, 32, 3).
        width: channel multiplier; 0.25–0.5 gives CPU-sized models.
        norm: factory `norm(name) -> layer` for every normalization layer (default: BatchNorm
            with momentum 0.9); Selective BatchNorm plugs in here.
        **kwargs: family-specific options.

    Returns:
        A functional `keras.Model` named `name` whose output is the feature map.
    """
    builder = get_backbone_builder(name)
    if width <= 0:
        raise ValueError(f"Expected width > 0. Received: width={width}")
    if len(input_shape) != 3:
        raise ValueError(f"Expected input_shape (H, W, C). Received: input_shape={input_shape}")
    return builder(input_shape=tuple(input_shape), width=width, norm=norm or batch_norm(), **kwargs)


def get_backbone_builder(name: str) -> BackboneFn:
    """Returns the builder registered as `name`; unknown names suggest the closest ones."""
    return BACKBONES.get(name)


def feature_stride(backbone: keras.Model) -> int:
    """Downsampling factor 2^n between the backbone's input and its feature map.

    Derived from the shapes ('same' padding rounds up: 28 → 14 → 7 → 4 is a stride of 8).
    """
    in_h = backbone.input_shape[1]
    out_h = backbone.output_shape[1]
    return 2 ** math.ceil(math.log2(in_h / out_h)) if out_h < in_h else 1


def scaled(channels: int, width: float, divisor: int = 4) -> int:
    """Channel count scaled by the width multiplier, rounded to a multiple of `divisor`."""
    return max(divisor, int(round(channels * width / divisor)) * divisor)
