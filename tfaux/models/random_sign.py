"""`with_random_sign`: a backbone with seed 003's `RandomSign` after chosen hidden layers.

Seed 003 (§3.3) applies g(x) = x + ε·x⊙l(x) "on the input and after chosen hidden layers". The
input case is a `RandomSign` before the backbone; this module does the hidden layers, by
re-running the functional graph with `keras.models.clone_model(clone_function=identity,
call_function=...)`: every layer object is reused (weights are shared, not copied) and a new
`RandomSign` is called on the output of each chosen layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tfaux.models.layers import RandomSign
from tfaux.names import unknown_name


def with_random_sign(
    backbone: keras.Model,
    after: Sequence[str],
    *,
    eps: float,
    probability: float = 0.5,
    seed: int | None = None,
) -> keras.Model:
    """The functional `backbone` with a `RandomSign` layer after each layer named in `after`.

    The new model has the same inputs, outputs and layer objects as `backbone` (so it shares its
    weights: training one trains the other), plus one `RandomSign` named f"{name}_random_sign"
    per chosen layer. At inference it computes exactly what `backbone` computes.

    Args:
        backbone: a functional `keras.Model`, e.g. from `create_backbone`.
        after: names of hidden layers of `backbone` (e.g. "stage1_block1_out"); empty returns
            `backbone` itself.
        eps: ε of every inserted layer.
        probability: p of every inserted layer (the chance of scaling an element by 1 + ε).
        seed: seed of the first inserted layer; the i-th (in the order of `after`) gets
            seed + i, so the layers draw different sign patterns. None: unseeded.

    Returns:
        A functional `keras.Model` named like `backbone`.

    Raises:
        ValueError: for an unknown or repeated layer name, or an input layer (and from
            `clone_model`, for a model that is not functional).
    """
    after = list(after)
    if not after:
        return backbone
    if len(set(after)) != len(after):
        raise ValueError(f"Expected distinct layer names. Received: after={after}")
    inputs = {layer.name for layer in backbone.layers if isinstance(layer, keras.layers.InputLayer)}
    hidden = [layer.name for layer in backbone.layers if layer.name not in inputs]
    for name in after:
        if name in inputs:
            raise ValueError(
                f"Expected hidden layer names; {name!r} is an input layer. Put a RandomSign "
                "before the backbone to perturb its input."
            )
        if name not in hidden:
            raise unknown_name("backbone layer", name, hidden)
    chosen = {
        # A layer called more than once gets its RandomSign after each call (shared, no weights).
        id(backbone.get_layer(name)): RandomSign(
            eps,
            probability,
            seed=None if seed is None else seed + index,
            name=f"{name}_random_sign",
        )
        for index, name in enumerate(after)
    }

    def call_function(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        perturb = chosen.get(id(layer))
        return outputs if perturb is None else perturb(outputs)

    return keras.models.clone_model(
        backbone, clone_function=lambda layer: layer, call_function=call_function
    )
