"""Mixed precision: the Keras dtype policy a model is built under, and loss scaling.

A Keras 3 layer takes its dtype policy when it is created: under "mixed_bfloat16" or
"mixed_float16" it computes in 16 bits and keeps its variables in float32. Our backbone
builders create their layers without a `dtype` argument, so `tfaux.models.build` creates them
inside `dtype_policy(precision)`, which sets Keras' global policy for that block only (Keras
keeps it per thread) and restores the previous one, even on error. The heads' output layers
are float32 whatever the policy, so logits and every loss are computed in float32, as Keras'
mixed-precision guide requires. Because variables are float32 under every policy, weights saved
from a mixed-precision model load into a float32 rebuild: evaluation, attacks and export run
there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from tfaux.config import PRECISIONS
from tfaux.names import unknown_name


def check_precision(precision: str) -> str:
    """Returns `precision` if it is one of `PRECISIONS`; an unknown one suggests the closest."""
    if precision not in PRECISIONS:
        raise unknown_name("precision", precision, PRECISIONS)
    return precision


@contextlib.contextmanager
def dtype_policy(policy: str | keras.DTypePolicy) -> Iterator[None]:
    """Layers created inside the block compute in `policy` (e.g. one of `PRECISIONS`); Keras'
    global dtype policy is restored on leaving it.

    Example:
        with dtype_policy("mixed_bfloat16"):
            backbone = create_backbone("resnet8", input_shape=(28, 28, 1))
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def loss_scaled(
    optimizer: keras.optimizers.Optimizer, precision: str
) -> keras.optimizers.Optimizer:
    """`optimizer` in Keras' `LossScaleOptimizer` for "mixed_float16", else `optimizer` itself.

    float16 gradients underflow without loss scaling (bfloat16 has float32's exponent range and
    needs none). Our train steps already call `optimizer.scale_loss` and `optimizer.apply`,
    which the wrapper implements: it unscales, and skips a step whose gradients are not finite.
    `compile` would wrap it too for a mixed_float16 model; wrapping it here, from the recipe,
    also gives a float32 rebuild the optimizer whose saved state its weights file holds.
    """
    if check_precision(precision) != "mixed_float16":
        return optimizer
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name="loss_scale_optimizer")
