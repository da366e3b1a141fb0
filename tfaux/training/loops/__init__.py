"""Training loops, one file each: `tfaux.training.loop.LOOPS` imports them all on its first
lookup, so a new loop is one new file here (or a `@register_loop` class anywhere a recipe
imports)."""
