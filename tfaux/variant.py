"""A variant, parsed once: "<tasks>[@<loop>[<settings>]][:<augmentation>][~<weighting>]".

The grammar only, without TensorFlow and without registries: whether a loop or a task exists,
and which combinations a loop accepts, is checked where they live (`tfaux.experiment.check_recipe`
and `Loop.check_variant`). `Recipe`'s docstring explains every part.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass

from tfaux.config import AdversarialConfig, Recipe
from tfaux.names import require, unknown_name
from tfaux.overrides import parse_value

STANDARD = "standard"  # the loop of a variant that names none


@dataclass(frozen=True)
class Variant:
    """One variant's parts.

    Attributes:
        text: the variant as written ("recon=0.5+fourier@pgd[eps=0.2]:geometric").
        tasks: aux-task names in order; () for "none".
        own_weights: the λ a task names itself ({"recon": 0.5}); the others take the recipe's
            `aux_weight`.
        loop: the training loop's name, "standard" when none is named.
        settings: `AdversarialConfig` overrides from the brackets after the loop, typed.
        augmentation: the in-graph augmentation, or None.
        weighting: "fixed" (λ), or another of `tfaux.weighting` (learned weights, a gradient
            combination).
    """

    text: str
    tasks: tuple[str, ...]
    own_weights: typing.Mapping[str, float]
    loop: str
    settings: typing.Mapping[str, typing.Any]
    augmentation: str | None
    weighting: str

    @staticmethod
    def parse(text: str) -> Variant:
        """The parts of `text`; a malformed one fails in one line saying how to write it."""
        return _parse(text)

    def weights(self, default: float) -> dict[str, float]:
        """Every task's λ: its own, else `default` ("projection=0.5+coarse", 0.01 →
        {projection: 0.5, coarse: 0.01}); {} for "none"."""
        return {task: self.own_weights.get(task, default) for task in self.tasks}

    def recipe(self, recipe: Recipe) -> Recipe:
        """`recipe` with the bracketed settings applied to `adversarial` (validated there): what
        every loop of the variant is built from. "none@fgsm[eps=0.3]" trains at 0.3 whatever
        `adversarial.eps` is; a variant without brackets gets `recipe` itself."""
        if not self.settings:
            return recipe
        return dataclasses.replace(
            recipe, adversarial=dataclasses.replace(recipe.adversarial, **self.settings)
        )


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> Variant:
    body, inside = _split_settings(text)
    head, _, weighting = body.partition("~")
    head, _, augmentation = head.partition(":")
    tasks_text, _, loop = head.partition("@")
    own_weights, tasks = {}, []
    if tasks_text != "none":
        for part in tasks_text.split("+"):
            name, sep, value = part.partition("=")
            if sep:
                try:
                    own_weights[name] = float(value)
                except ValueError:
                    raise ValueError(
                        f"Expected a number λ after '{name}=' in variant {text!r}, e.g. "
                        f"'{name}=0.1'. Received: {value!r}"
                    ) from None
                require(own_weights[name] >= 0, "task weights λ >= 0", **{name: own_weights[name]})
            tasks.append(name)
    require(len(set(tasks)) == len(tasks), "distinct tasks", variant=text)
    weighting = weighting or "fixed"
    settings = _settings(text, inside)
    AdversarialConfig(**settings)  # known keys, valid values
    return Variant(
        text=text,
        tasks=tuple(tasks),
        own_weights=types.MappingProxyType(own_weights),  # cached: nobody may change it
        loop=loop or STANDARD,
        settings=types.MappingProxyType(settings),
        augmentation=augmentation or None,
        weighting=weighting,
    )


def _split_settings(variant: str) -> tuple[str, str]:
    """(the variant without its "[...]", the text inside it or "")."""
    if "[" not in variant and "]" not in variant:
        return variant, ""
    before, open_, rest = variant.partition("[")
    inside, close, after = rest.partition("]")
    require(
        bool(open_ and close)
        and "@" in before
        and not any(c in before for c in ":~")
        and not any(c in inside + after for c in "[]")
        and after[:1] in ("", ":", "~"),
        "one [key=value;...] right after the variant's loop, e.g. 'fourier@fgsm[eps=0.3]'",
        variant=variant,
    )
    return before + after, inside


def _settings(variant: str, text: str) -> dict:
    """The bracketed settings, each parsed by its `AdversarialConfig` field's type; separated by
    ";" ("none@pgd[eps=0.2;pgd_steps=3]"), "," being `--set variants=...`'s separator."""
    if not text:
        return {}
    hints = typing.get_type_hints(AdversarialConfig)
    settings = {}
    for item in text.split(";"):
        key, sep, value = (part.strip() for part in item.partition("="))
        require(
            bool(sep and key and value),
            "key=value loop settings in brackets, e.g. 'fourier@fgsm[eps=0.3]'",
            variant=variant,
        )
        if key not in hints:
            raise unknown_name(f"adversarial setting (in variant {variant!r})", key, hints)
        require(key not in settings, "each loop setting once", variant=variant)
        settings[key] = parse_value(value, hints[key], f"adversarial.{key}")
    return settings
