"""The "@random_sign" loop: seed 003's R-models, natural training through random-sign layers.

`RandomSign` layers act only in training, so the train step is the standard one; the loop's part
is to put them into the backbone (`tfaux.models.random_sign.with_random_sign`).
"""

from __future__ import annotations

from tfaux.config import RandomSignConfig
from tfaux.models.random_sign import with_random_sign
from tfaux.models.registry import create_backbone
from tfaux.training.loop import Loop, register_loop


@register_loop
class RandomSignLoop(Loop):
    """g(x) = x + ε·x⊙l(x) on the input and after the layers in `random_sign.after`."""

    name = "random_sign"

    def check_settings(self) -> None:
        if self.recipe.random_sign.eps <= 0:
            raise ValueError(
                "Expected random_sign.eps > 0 for '@random_sign' (ε = 0 leaves the layers "
                f"identities). Received: eps={self.recipe.random_sign.eps}"
            )

    def random_sign(self) -> RandomSignConfig:
        return self.recipe.random_sign

    def check(self, input_shape):
        """An unknown `random_sign.after` layer name fails with the closest names."""
        recipe = self.recipe
        hidden = [name for name in recipe.random_sign.after if name != "input"]
        backbone = create_backbone(
            recipe.model.backbone, input_shape=input_shape, width=recipe.model.width
        )
        with_random_sign(backbone, hidden, eps=recipe.random_sign.eps)
