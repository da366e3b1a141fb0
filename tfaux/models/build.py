"""`build`: backbone + standardization + heads → a functional multi-output `AuxModel`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfaux.config import RandomSignConfig
from tfaux.models import heads
from tfaux.models.layers import NormFactory, RandomSign, batch_norm
from tfaux.models.random_sign import with_random_sign
from tfaux.models.registry import create_backbone, feature_stride
from tfaux.precision import check_precision, dtype_policy
from tfaux.tasks.base import AuxTask


def build(
    backbone: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    mean: Sequence[float] | float = 0.0,
    std: Sequence[float] | float = 1.0,
    tasks: Sequence[AuxTask] = (),
    width: float = 1.0,
    norm: NormFactory | None = None,
    dropout: float = 0.0,
    random_sign: RandomSignConfig | None = None,
    name: str | None = None,
    precision: str = "float32",
    **backbone_kwargs,
) -> keras.Model:
    """Builds the classifier with one output per auxiliary task.

    The model takes raw pixels in [0, 1]; standardization with the training split's `mean` and
    `std` is its first layer, so attacks, ε and clipping all live in pixel space and an exported
    model needs no preprocessing.

    Args:
        backbone: a name from `list_backbones()`.
        input_shape: (H, W, C).
        num_classes: classes of the primary task.
        mean, std: per-channel statistics of the training split (from `tfaux.data.load`).
        tasks: auxiliary tasks; each adds the output named `task.name`.
        width: channel multiplier of the backbone.
        norm: norm factory for the backbone and the decoders (default BatchNorm, momentum 0.9).
        dropout: dropout before the classifier's dense layer.
        random_sign: seed 003's random-sign layers (`RandomSign`) on the standardized input
            ("input" in `after`) and after the named backbone layers; None for none.
        name: model name (default: the backbone name).
        precision: the Keras dtype policy of every layer, "float32", "mixed_bfloat16" or
            "mixed_float16"; the outputs (logits, every head) are float32 under each.
        **backbone_kwargs: family-specific backbone options.

    Returns:
        An `AuxModel` with outputs {"logits": (B, num_classes), <task>: ...}.
    """
    if num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2. Received: num_classes={num_classes}")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names) or "logits" in names:
        raise ValueError(f"Expected distinct aux-task names other than 'logits'. Received: {names}")
    std = np.broadcast_to(np.asarray(std, "float32"), (input_shape[-1],))
    if np.any(std <= 0):
        raise ValueError(f"Expected std > 0. Received: std={std.tolist()}")
    mean = np.broadcast_to(np.asarray(mean, "float32"), (input_shape[-1],))

    norm = norm or batch_norm()
    check_precision(precision)

    with dtype_policy(precision):  # the backbone builders take no dtype (tfaux.precision)
        # === Layers ===
        net = create_backbone(
            backbone, input_shape=input_shape, width=width, norm=norm, **backbone_kwargs
        )
        if random_sign is not None:  # seed 003's R-model: g(x) after the chosen hidden layers
            hidden = [name for name in random_sign.after if name != "input"]
            net = with_random_sign(
                net, hidden, eps=random_sign.eps, probability=random_sign.probability
            )
        stride = feature_stride(net)

        # === Functional Model ===
        images = keras.Input(shape=input_shape, name="images")
        x, fronts = images, {}
        for task in (t for t in tasks if t.front):  # front ends (the denoiser) see pixels first
            x = fronts[task.name] = task.front_end(x)
        x = keras.layers.Normalization(
            mean=mean.tolist(), variance=(std**2).tolist(), name="standardize"
        )(x)
        if random_sign is not None and "input" in random_sign.after:
            x = RandomSign(random_sign.eps, random_sign.probability, name="input_random_sign")(x)
        features = net(x)
        outputs = {"logits": heads.classifier(features, num_classes, dropout=dropout), **fronts}
        for task in (t for t in tasks if not t.front):
            outputs[task.name] = task.head(features, images=images, stride=stride, norm=norm)
        # Imported here: AuxModel's module imports the aux tasks, whose decoders import this
        # package, so a module-level import is a cycle for whichever of them is imported first.
        from tfaux.models.aux_model import AuxModel

        return AuxModel(inputs=images, outputs=outputs, tasks=tasks, name=name or backbone)


def primary_classifier(model: keras.Model) -> keras.Model:
    """The deployable sub-model: images → logits, every auxiliary head dropped."""
    return keras.Model(model.input, model.output["logits"], name=f"{model.name}_classifier")
